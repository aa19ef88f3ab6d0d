//! `cognitive-operator plan`: what `apply` would do, without writing anything.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::OutputFormat;
use super::inputs::Inputs;
use super::manifests::Loaded;
use crate::api::ReconcilePolicy;
use crate::arm::deployments::Deployment;
use crate::engine::{AccountContext, Engine, Preview};
use crate::planner::deployment::{AccountState, DeploymentAction};
use crate::planner::{Action, FieldDiff, Verdict};

/// Exit codes of `plan`.
pub const NO_CHANGES: i32 = 0;
pub const FAILED: i32 = 1;
pub const CHANGES: i32 = 2;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// One planned write, as shown.
struct Step {
    /// `+` creates, `~` changes, `-` deletes.
    mark: &'static str,
    kind: String,
    description: String,
    fields: Vec<String>,
    /// What a create sends, field by field (`path`, value), so the preview shows it.
    sends: Vec<(String, Value)>,
}

/// One resource's plan, whatever its kind.
struct Shown {
    kind: &'static str,
    arm_id: String,
    steps: Vec<Step>,
    drift: Vec<FieldDiff>,
    verdict: Verdict,
}

/// One resource's preview, or why there is none.
struct Entry {
    source: String,
    namespace: String,
    name: String,
    result: Result<Shown, String>,
}

impl Entry {
    fn failed(&self) -> bool {
        match &self.result {
            Err(_) => true,
            Ok(shown) => matches!(shown.verdict, Verdict::Stalled { .. }),
        }
    }

    fn changes(&self) -> bool {
        self.result.as_ref().is_ok_and(|s| !s.steps.is_empty())
    }
}

pub async fn run(args: PlanArgs) -> i32 {
    let Some((manifests, connection)) = args.inputs.open_or_report().await else {
        return FAILED;
    };
    let (engine, client) = (args.inputs.engine(&connection), &connection.client);
    let mut entries = Vec::new();
    let mut previews = Vec::new();
    for loaded in &manifests.accounts {
        let result = engine.preview(client, &loaded.resource, false).await;
        entries.push(entry(
            &loaded.source,
            &loaded.resource,
            result
                .as_ref()
                .map(account_shown)
                .map_err(|e| e.to_string()),
        ));
        previews.push((loaded, result.map_err(|e| e.to_string())));
    }
    for loaded in &manifests.deployments {
        let resource = &loaded.resource;
        let account = previews.iter().find(|(a, _)| {
            a.resource.namespace() == resource.namespace()
                && a.resource.name_any() == resource.spec.account_ref.name
        });
        if let Some((account, Err(error))) = account {
            let why = account_error(account, error);
            entries.push(entry(&loaded.source, resource, Err(why)));
            continue;
        }
        let context = planned_account(
            &engine,
            account.and_then(|(a, p)| p.as_ref().ok().map(|p| (&a.resource, p))),
        );
        let result = engine
            .preview_deployment(client, resource, &context, false)
            .await
            .map(|preview| Shown {
                kind: "deployment",
                steps: preview
                    .plan
                    .actions
                    .iter()
                    .map(|a| deployment_step(a, preview.target.as_ref().map(|t| t.name.as_str())))
                    .collect(),
                arm_id: preview.target.map(|t| t.id()).unwrap_or_default(),
                drift: preview.plan.drift,
                verdict: preview.plan.verdict,
            })
            .map_err(|e| e.to_string());
        entries.push(entry(&loaded.source, resource, result));
    }
    match args.output {
        OutputFormat::Text => entries.iter().for_each(print_text),
        OutputFormat::Json => {
            let report: Vec<Value> = entries.iter().map(to_json).collect();
            println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        }
        OutputFormat::Yaml => {
            let report: Vec<Value> = entries.iter().map(to_json).collect();
            print!("{}", serde_saphyr::to_string(&report).expect("yaml"));
        }
    }
    if entries.iter().any(Entry::failed) {
        FAILED
    } else if entries.iter().any(Entry::changes) {
        CHANGES
    } else {
        NO_CHANGES
    }
}

/// Why a deployment cannot be planned when its account, in the input, cannot be (as `apply`
/// says it): what stopped the account (an invalid spec, an ARM error), named with it.
fn account_error(account: &Loaded, error: &str) -> String {
    format!(
        "spec.accountRef.name: CognitiveServicesAccount {} ({}) cannot be planned, so neither can its deployments: {error}",
        account.resource.name_any(),
        account.source
    )
}

fn entry(source: &str, resource: &impl ResourceExt, result: Result<Shown, String>) -> Entry {
    Entry {
        source: source.to_string(),
        namespace: resource.namespace().unwrap_or_else(|| "default".into()),
        name: resource.name_any(),
        result,
    }
}

/// A deployment's account as the plan leaves it: Ready only when it has nothing to change
/// (otherwise apply changes the account first, and the deployment waits for it).
fn planned_account(
    engine: &Engine,
    account: Option<(&crate::api::CognitiveServicesAccount, &Preview)>,
) -> AccountContext {
    let Some((resource, preview)) = account else {
        return engine.account_context(None);
    };
    let observe_only = resource.spec.reconcile_policy == ReconcilePolicy::Observe;
    let state = match &preview.plan.verdict {
        Verdict::Ready if observe_only => AccountState::Observed,
        Verdict::Ready => AccountState::Ready,
        Verdict::Observed { .. } => AccountState::Observed,
        // apply creates or patches the account first, then its deployments: plan them as
        // they will be planned then, so one plan previews the whole stack.
        Verdict::Progressing { .. } if writes_then_ready(&preview.plan.actions) => {
            AccountState::Ready
        }
        Verdict::Progressing { .. } if restores(&preview.plan.actions) => AccountState::NotReady(
            "apply restores the account first; its deployments come back with it and are planned then"
                .into(),
        ),
        Verdict::Stalled { reason, message } => {
            AccountState::NotReady(format!("the account cannot progress ({reason}: {message})"))
        }
        _ => AccountState::NotReady("apply brings the account to its spec first".into()),
    };
    AccountContext {
        target: engine.target(resource).ok(),
        state,
        observe_only,
    }
}

/// The account's writes are a create or patches (possibly after purging a copy): once done, the
/// account is Ready for its deployments.
fn writes_then_ready(actions: &[Action]) -> bool {
    !actions.is_empty()
        && actions.iter().all(|a| {
            matches!(
                a,
                Action::Create(_) | Action::Patch { .. } | Action::Purge(_)
            )
        })
}

fn restores(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::Restore { .. }))
}

fn account_shown(preview: &Preview) -> Shown {
    Shown {
        kind: "account",
        arm_id: preview.target.id(),
        steps: preview.plan.actions.iter().map(account_step).collect(),
        drift: preview.plan.drift.clone(),
        verdict: preview.plan.verdict.clone(),
    }
}

fn account_step(action: &Action) -> Step {
    let (mark, fields) = match action {
        Action::Create(_) | Action::Restore { .. } => ("+", Vec::new()),
        Action::Patch { fields, .. } => ("~", fields.clone()),
        Action::Purge(_) | Action::Delete | Action::DeleteDeployment(_) => ("-", Vec::new()),
    };
    let sends = match action {
        Action::Create(body) => sent_fields(&serde_json::to_value(body).expect("json")),
        _ => Vec::new(),
    };
    Step {
        mark,
        kind: format!("{:?}", action.kind()),
        description: action.describe(),
        fields: if sends.is_empty() {
            fields
        } else {
            sends.iter().map(|(path, _)| path.clone()).collect()
        },
        sends,
    }
}

/// A create body's fields, as `plan` shows a PATCH's: `kind`, `sku`, `location`, `tags` and
/// each of `properties`' and `identity`'s, in that order (the name is in the ARM id above).
fn sent_fields(body: &Value) -> Vec<(String, Value)> {
    let mut sent = Vec::new();
    for top in ["kind", "sku", "location", "tags", "identity"] {
        if let Some(value) = body.get(top) {
            sent.push((top.to_string(), value.clone()));
        }
    }
    if let Some(Value::Object(properties)) = body.get("properties") {
        for (name, value) in properties {
            sent.push((format!("properties.{name}"), value.clone()));
        }
    }
    sent
}

fn deployment_step(action: &DeploymentAction, name: Option<&str>) -> Step {
    let mark = match action {
        DeploymentAction::Create(_) => "+",
        DeploymentAction::Update { .. } | DeploymentAction::Patch { .. } => "~",
        DeploymentAction::Delete => "-",
    };
    let (description, sends) = match action {
        DeploymentAction::Create(body) => (
            describe_create(name.unwrap_or_default(), body),
            sent_fields(&serde_json::to_value(body).expect("json")),
        ),
        _ => (action.describe(), Vec::new()),
    };
    Step {
        mark,
        kind: format!("{:?}", action.kind()),
        description,
        fields: if sends.is_empty() {
            action.fields()
        } else {
            sends.iter().map(|(path, _)| path.clone()).collect()
        },
        sends,
    }
}

/// `create deployment chat: gpt-4o 2024-11-20, GlobalStandard × 10`.
fn describe_create(name: &str, body: &Deployment) -> String {
    let model = body.model();
    let mut text = format!(
        "create deployment {name}: {}",
        model
            .and_then(|m| m.name.as_deref())
            .unwrap_or("(no model)")
    );
    if let Some(version) = model.and_then(|m| m.version.as_deref()) {
        text.push_str(&format!(" {version}"));
    }
    if let Some(sku) = &body.sku {
        text.push_str(&format!(", {}", sku.name));
        if let Some(capacity) = sku.capacity {
            text.push_str(&format!(" × {capacity}"));
        }
    }
    text
}

fn print_text(entry: &Entry) {
    println!("{}/{} ({})", entry.namespace, entry.name, entry.source);
    let shown = match &entry.result {
        Ok(shown) => shown,
        Err(e) => {
            println!("  ✗ error: {e}\n");
            return;
        }
    };
    // A resource stalled before it has a place in Azure has no id to show.
    if !shown.arm_id.is_empty() {
        println!("  {}: {}", shown.kind, shown.arm_id);
    }
    for step in &shown.steps {
        println!("  {} {}", step.mark, step.description);
        for (path, value) in &step.sends {
            println!("      {path} = {value}");
        }
    }
    for drift in &shown.drift {
        println!(
            "      {}: {} → {}",
            drift.path, drift.observed, drift.desired
        );
    }
    match &shown.verdict {
        Verdict::Ready => println!("  = no changes"),
        Verdict::Stalled { reason, message } => println!("  ✗ stalled, {reason}: {message}"),
        Verdict::Observed { reason, message } => println!("  ? {reason} (observe only): {message}"),
        Verdict::Paused => println!("  = paused: no ARM calls"),
        Verdict::Progressing { reason, message } if shown.steps.is_empty() => {
            println!("  … {reason}: {message}")
        }
        _ => {}
    }
    println!();
}

fn to_json(entry: &Entry) -> Value {
    let mut report = json!({
        "source": entry.source,
        "namespace": entry.namespace,
        "name": entry.name,
    });
    match &entry.result {
        Err(e) => {
            report["error"] = json!(e);
            report["changes"] = json!(false);
        }
        Ok(shown) => {
            let actions: Vec<Value> = shown
                .steps
                .iter()
                .map(|s| {
                    let mut step =
                        json!({"action": s.kind, "description": s.description, "fields": s.fields});
                    if !s.sends.is_empty() {
                        let sends: serde_json::Map<String, Value> =
                            s.sends.iter().cloned().collect();
                        step["sends"] = Value::Object(sends);
                    }
                    step
                })
                .collect();
            let drift: Vec<Value> = shown
                .drift
                .iter()
                .map(|d| json!({"field": d.path, "desired": d.desired, "observed": d.observed}))
                .collect();
            report["kind"] = json!(shown.kind);
            report["armId"] = json!(shown.arm_id);
            report["actions"] = json!(actions);
            report["drift"] = json!(drift);
            report["verdict"] = verdict_json(&shown.verdict);
            report["changes"] = json!(!shown.steps.is_empty());
        }
    }
    report
}

fn verdict_json(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Ready => json!({"state": "Ready"}),
        Verdict::Progressing { reason, message } => {
            json!({"state": "Changes", "reason": reason, "message": message})
        }
        Verdict::Stalled { reason, message } => {
            json!({"state": "Stalled", "reason": reason, "message": message})
        }
        Verdict::Observed { reason, message } => {
            json!({"state": "Observed", "reason": reason, "message": message})
        }
        Verdict::Paused => json!({"state": "Paused"}),
        Verdict::Deleted { message } => json!({"state": "Deleted", "message": message}),
    }
}
