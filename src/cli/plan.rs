//! `cognitive-operator plan`: what `apply` would do, without writing anything.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::inputs::Inputs;
use super::{OutputFormat, manifests};
use crate::engine::{EngineError, Preview};
use crate::planner::Verdict;

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

/// One resource's preview, or why there is none.
struct Entry {
    loaded: manifests::Loaded,
    result: Result<Preview, EngineError>,
}

impl Entry {
    fn failed(&self) -> bool {
        match &self.result {
            Err(_) => true,
            Ok(preview) => matches!(preview.plan.verdict, Verdict::Stalled { .. }),
        }
    }

    fn changes(&self) -> bool {
        self.result.as_ref().is_ok_and(|p| p.plan.writes())
    }
}

pub async fn run(args: PlanArgs) -> i32 {
    let (loaded, connection) = match args.inputs.open().await {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("error: {message}");
            return FAILED;
        }
    };
    let (engine, client) = (args.inputs.engine(&connection), &connection.client);
    let mut entries = Vec::new();
    for loaded in loaded {
        let result = engine.preview(client, &loaded.resource, false).await;
        entries.push(Entry { loaded, result });
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

fn print_text(entry: &Entry) {
    let resource = &entry.loaded.resource;
    println!(
        "{}/{} ({})",
        resource.namespace().unwrap_or_else(|| "default".into()),
        resource.name_any(),
        entry.loaded.source
    );
    let preview = match &entry.result {
        Ok(preview) => preview,
        Err(e) => {
            println!("  ✗ error: {e}\n");
            return;
        }
    };
    println!("  account: {}", preview.target.id());
    for action in &preview.plan.actions {
        let mark = match action {
            crate::planner::Action::Create(_) | crate::planner::Action::Restore { .. } => "+",
            crate::planner::Action::Patch { .. } => "~",
            crate::planner::Action::Purge(_) | crate::planner::Action::Delete => "-",
        };
        println!("  {mark} {}", action.describe());
    }
    for drift in &preview.plan.drift {
        println!(
            "      {}: {} → {}",
            drift.path, drift.observed, drift.desired
        );
    }
    match &preview.plan.verdict {
        Verdict::Ready => println!("  = no changes"),
        Verdict::Stalled { reason, message } => println!("  ✗ stalled, {reason}: {message}"),
        Verdict::Observed { reason, message } => println!("  ? {reason} (observe only): {message}"),
        Verdict::Paused => println!("  = paused: no ARM calls"),
        Verdict::Progressing { reason, message } if preview.plan.actions.is_empty() => {
            println!("  … {reason}: {message}")
        }
        _ => {}
    }
    println!();
}

fn to_json(entry: &Entry) -> Value {
    let resource = &entry.loaded.resource;
    let mut report = json!({
        "source": entry.loaded.source,
        "namespace": resource.namespace().unwrap_or_else(|| "default".into()),
        "name": resource.name_any(),
    });
    match &entry.result {
        Err(e) => {
            report["error"] = json!(e.to_string());
            report["changes"] = json!(false);
        }
        Ok(preview) => {
            let actions: Vec<Value> = preview
                .plan
                .actions
                .iter()
                .map(|a| {
                    let fields = match a {
                        crate::planner::Action::Patch { fields, .. } => fields.clone(),
                        _ => Vec::new(),
                    };
                    json!({"action": format!("{:?}", a.kind()), "description": a.describe(), "fields": fields})
                })
                .collect();
            let drift: Vec<Value> = preview
                .plan
                .drift
                .iter()
                .map(|d| json!({"field": d.path, "desired": d.desired, "observed": d.observed}))
                .collect();
            report["armId"] = json!(preview.target.id());
            report["actions"] = json!(actions);
            report["drift"] = json!(drift);
            report["verdict"] = verdict_json(&preview.plan.verdict);
            report["changes"] = json!(preview.plan.writes());
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
