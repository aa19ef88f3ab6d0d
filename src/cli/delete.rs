//! `cognitive-operator delete`: runs each resource's deletion policy as the controller does
//! when the resource is deleted — deployments before their account — and says what is gone.

use std::io::IsTerminal;
use std::time::Duration;

use kube::ResourceExt;
use serde_json::{Value, json};

use super::OutputFormat;
use super::apply::{parse_timeout, progress_line};
use super::converge::{converge, converge_deployment};
use super::inputs::Inputs;
use crate::api::Condition;
use crate::engine::Write;

/// Exit codes of `delete`.
pub const ALL_GONE: i32 = 0;
pub const FAILED: i32 = 1;
pub const NOT_GONE: i32 = 3;

#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Give up on a resource whose deletion policy has not run to the end after this long.
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Output format: the ARM calls as they happen (text), or a JSON report at the end.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// What deleting one resource came to.
struct Deleted {
    kind: &'static str,
    name: String,
    gone: bool,
    writes: Vec<Write>,
    conditions: Vec<Condition>,
}

pub async fn run(args: DeleteArgs) -> i32 {
    let Some((manifests, connection)) = args.inputs.open_or_report().await else {
        return FAILED;
    };
    let (engine, client) = (args.inputs.engine(&connection), &connection.client);
    let text = args.output == OutputFormat::Text;
    let show = |kind: &str, name: &str, writes: &[Write]| {
        if text {
            for write in writes {
                println!("{kind} {name}: {}", write.description);
            }
        }
    };
    let interactive = std::io::stderr().is_terminal();
    let mut results = Vec::new();
    for loaded in &manifests.deployments {
        let mut resource = loaded.resource.clone();
        let account = manifests.account_of(&resource).map(|a| &a.resource);
        let context = engine.account_context(account);
        let name = resource.name_any();
        let mut writes = Vec::new();
        let outcome = converge_deployment(
            &engine,
            client,
            &mut resource,
            &context,
            true,
            args.timeout,
            |o| {
                show("deployment", &name, &o.writes);
                writes.extend(o.writes.iter().cloned());
                if interactive && !text {
                    eprintln!("{name}: {}", progress_line(&o.status.conditions));
                }
            },
        )
        .await;
        results.push(Deleted {
            kind: "CognitiveServicesDeployment",
            name,
            gone: outcome.deletion_finished,
            writes,
            conditions: outcome.status.conditions,
        });
    }
    for loaded in &manifests.accounts {
        let mut resource = loaded.resource.clone();
        let name = resource.name_any();
        let mut writes = Vec::new();
        let outcome = converge(&engine, client, &mut resource, true, args.timeout, |o| {
            show("account", &name, &o.writes);
            writes.extend(o.writes.iter().cloned());
            if interactive && !text {
                eprintln!("{name}: {}", progress_line(&o.status.conditions));
            }
        })
        .await;
        results.push(Deleted {
            kind: "CognitiveServicesAccount",
            name,
            gone: outcome.deletion_finished,
            writes,
            conditions: outcome.status.conditions,
        });
    }
    report(&results, args.output);
    if results.iter().all(|r| r.gone) {
        ALL_GONE
    } else {
        NOT_GONE
    }
}

fn report(results: &[Deleted], output: OutputFormat) {
    if output == OutputFormat::Text {
        for r in results {
            let state = if r.gone { "done" } else { "NOT done" };
            println!(
                "{} {}: deletion policy {state}: {}",
                r.kind,
                r.name,
                progress_line(&r.conditions)
            );
        }
        return;
    }
    let report: Vec<Value> = results
        .iter()
        .map(|r| {
            let ready = crate::planner::status::find(&r.conditions, crate::planner::status::READY);
            json!({
                "kind": r.kind,
                "name": r.name,
                "deleted": r.gone,
                "armCalls": r.writes.iter().map(|w| json!({"kind": format!("{:?}", w.kind), "description": w.description})).collect::<Vec<_>>(),
                "reason": ready.map(|c| c.reason.clone()),
                "message": ready.map(|c| c.message.clone()),
            })
        })
        .collect();
    match output {
        OutputFormat::Yaml => print!("{}", serde_saphyr::to_string(&report).expect("yaml")),
        _ => println!("{}", serde_json::to_string_pretty(&report).expect("json")),
    }
}
