//! The command line: `run`, `crd`, `plan`, `apply`, and with the `emulator` feature `demo` and
//! `emulator`.

pub mod apply;
pub mod converge;
#[cfg(feature = "emulator")]
pub mod demo;
#[cfg(feature = "emulator")]
pub mod embedded;
pub mod inputs;
pub mod manifests;
pub mod plan;

use crate::api::crd_yaml;
use clap::{Parser, Subcommand};

/// Kubernetes operator for Azure Cognitive Services (Azure AI services) accounts: restores or
/// purges soft-deleted accounts, patches only what differs, and previews changes without a cluster.
#[derive(Parser, Debug)]
#[command(name = "cognitive-operator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller against the current Kubernetes cluster.
    Run(crate::controller::RunArgs),
    /// Print the CustomResourceDefinition (the source of crds/).
    Crd,
    /// Show what apply would do to the accounts in the manifests, writing nothing. Exit 0: no
    /// changes; 2: changes; 1: error or a resource that cannot progress.
    Plan(plan::PlanArgs),
    /// Bring the accounts in the manifests to their spec, waiting for ARM, and print the
    /// resulting resources. Exit 0: all Ready; 3: some not Ready; 1: invalid input or error.
    Apply(apply::ApplyArgs),
    /// Run the whole job on an embedded ARM emulator: create, restore, purge, steady state, delete.
    #[cfg(feature = "emulator")]
    Demo(demo::DemoArgs),
    /// Serve a stateful Microsoft.CognitiveServices ARM emulator on loopback.
    #[cfg(feature = "emulator")]
    Emulator(arm_emulator::EmulatorArgs),
}

/// Output formats of `plan` and `apply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Yaml,
    Json,
}

/// Runs the command and returns the process exit code.
pub async fn main(cli: Cli) -> i32 {
    match cli.command {
        Command::Run(args) => crate::controller::run(args).await,
        Command::Crd => {
            print!("{}", crd_yaml());
            0
        }
        Command::Plan(args) => plan::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        #[cfg(feature = "emulator")]
        Command::Demo(args) => demo::run(args).await,
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => match arm_emulator::run(args).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        },
    }
}
