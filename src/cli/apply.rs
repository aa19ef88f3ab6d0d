//! `cognitive-operator apply`: executes the plans to completion and prints the resources.

use std::io::IsTerminal;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;

use super::OutputFormat;
use super::converge::converge;
use super::inputs::Inputs;
use crate::api::CognitiveServicesAccount;
use crate::engine::Outcome;

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

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::api::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 10m or 90s"))
}

pub async fn run(args: ApplyArgs) -> i32 {
    let (loaded, connection) = match args.inputs.open().await {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("error: {message}");
            return FAILED;
        }
    };
    let resources: Vec<CognitiveServicesAccount> = loaded.into_iter().map(|l| l.resource).collect();
    let (engine, client) = (args.inputs.engine(&connection), connection.client.clone());
    let interactive = std::io::stderr().is_terminal();
    let results: Vec<(CognitiveServicesAccount, Outcome)> = futures::stream::iter(resources)
        .map(|mut resource| {
            let (engine, client) = (&engine, &client);
            async move {
                let name = resource.name_any();
                let outcome = converge(engine, client, &mut resource, false, args.timeout, |o| {
                    if interactive {
                        eprintln!("{name}: {}", progress_line(o));
                    }
                })
                .await;
                (resource, outcome)
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    print_resources(results.iter().map(|(r, _)| r), args.output);
    if results.iter().all(|(_, outcome)| outcome.ready()) {
        ALL_READY
    } else {
        for (resource, outcome) in results.iter().filter(|(_, o)| !o.ready()) {
            eprintln!(
                "{} is not Ready: {}",
                resource.name_any(),
                progress_line(outcome)
            );
        }
        NOT_READY
    }
}

/// `Reason: message` of the Ready condition.
pub fn progress_line(outcome: &Outcome) -> String {
    crate::planner::status::find(&outcome.status.conditions, crate::planner::status::READY)
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

fn print_resources<'a>(
    resources: impl Iterator<Item = &'a CognitiveServicesAccount>,
    output: OutputFormat,
) {
    let documents: Vec<serde_json::Value> = resources
        .map(|r| serde_json::to_value(r).expect("resources serialize"))
        .collect();
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
