//! `cognitive-operator apply`: executes the plans to completion and prints the resources.
//! Accounts first, then their deployments (which wait for their account to be Ready).

use std::io::IsTerminal;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use serde::Serialize;

use super::OutputFormat;
use super::converge::{converge, converge_deployment};
use super::inputs::Inputs;
use super::manifests::Manifests;
use crate::api::Condition;
use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::engine::{DeploymentOutcome, Engine, Outcome};
use crate::planner::status;

/// Exit codes of `apply`.
pub const ALL_READY: i32 = 0;
pub const FAILED: i32 = 1;
pub const NOT_READY: i32 = 3;

/// Resources applied at once.
const PARALLEL: usize = 8;

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub inputs: Inputs,

    /// Give up on a resource that is not settled after this long (e.g. 10m, 90s).
    #[arg(long, default_value = "10m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Output format for the resulting resources.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    pub output: OutputFormat,
}

pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::api::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 10m or 90s"))
}

pub async fn run(args: ApplyArgs) -> i32 {
    let Some((manifests, connection)) = args.inputs.open_or_report().await else {
        return FAILED;
    };
    let (engine, client) = (args.inputs.engine(&connection), connection.client.clone());
    let applied = apply_all(&engine, &client, &manifests, args.timeout).await;
    print_resources(&applied, args.output);
    let not_ready = applied.not_ready();
    if not_ready.is_empty() {
        return ALL_READY;
    }
    for (name, line) in not_ready {
        eprintln!("{name} is not Ready: {line}");
    }
    NOT_READY
}

/// The resources as applied, with their last outcomes.
pub struct Applied {
    pub accounts: Vec<(CognitiveServicesAccount, Outcome)>,
    pub deployments: Vec<(CognitiveServicesDeployment, DeploymentOutcome)>,
}

impl Applied {
    fn not_ready(&self) -> Vec<(String, String)> {
        let accounts = self
            .accounts
            .iter()
            .filter(|(_, o)| !o.ready())
            .map(|(r, o)| (r.name_any(), progress_line(&o.status.conditions)));
        let deployments = self
            .deployments
            .iter()
            .filter(|(_, o)| !o.ready())
            .map(|(r, o)| (r.name_any(), progress_line(&o.status.conditions)));
        accounts.chain(deployments).collect()
    }
}

/// Brings the accounts, then the deployments, to their specs, `PARALLEL` at a time.
pub async fn apply_all(
    engine: &Engine,
    client: &crate::arm::ArmClient,
    manifests: &Manifests,
    timeout: Duration,
) -> Applied {
    let interactive = std::io::stderr().is_terminal();
    let accounts: Vec<(CognitiveServicesAccount, Outcome)> =
        futures::stream::iter(manifests.accounts.iter().map(|l| l.resource.clone()))
            .map(|mut resource| async move {
                let name = resource.name_any();
                let outcome = converge(engine, client, &mut resource, false, timeout, |o| {
                    if interactive {
                        eprintln!("{name}: {}", progress_line(&o.status.conditions));
                    }
                })
                .await;
                (resource, outcome)
            })
            .buffered(PARALLEL)
            .collect()
            .await;
    let deployments =
        futures::stream::iter(manifests.deployments.iter().map(|l| l.resource.clone()))
            .map(|mut resource| {
                let account = accounts.iter().map(|(a, _)| a).find(|a| {
                    a.namespace() == resource.namespace()
                        && a.name_any() == resource.spec.account_ref.name
                });
                let context = engine.account_context(account);
                async move {
                    let name = resource.name_any();
                    let outcome = converge_deployment(
                        engine,
                        client,
                        &mut resource,
                        &context,
                        false,
                        timeout,
                        |o| {
                            if interactive {
                                eprintln!("{name}: {}", progress_line(&o.status.conditions));
                            }
                        },
                    )
                    .await;
                    (resource, outcome)
                }
            })
            .buffered(PARALLEL)
            .collect()
            .await;
    Applied {
        accounts,
        deployments,
    }
}

/// `Reason: message` of the Ready condition.
pub fn progress_line(conditions: &[Condition]) -> String {
    status::find(conditions, status::READY)
        .map(|c| {
            format!(
                "{} {}: {}",
                if c.status == "True" {
                    "Ready"
                } else {
                    "not ready"
                },
                c.reason,
                c.message
            )
        })
        .unwrap_or_default()
}

fn print_resources(applied: &Applied, output: OutputFormat) {
    let mut documents: Vec<serde_json::Value> =
        applied.accounts.iter().map(|(r, _)| to_json(r)).collect();
    documents.extend(applied.deployments.iter().map(|(r, _)| to_json(r)));
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&documents).expect("json")
        ),
        OutputFormat::Yaml | OutputFormat::Text => {
            for document in &documents {
                print!("---\n{}", serde_saphyr::to_string(document).expect("yaml"));
            }
        }
    }
}

fn to_json(resource: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(resource).expect("resources serialize")
}
