//! The command line's words: the subcommands, their shared flags, and running one.

use clap::{Parser, Subcommand};

#[cfg(feature = "emulator")]
use super::demo;
use super::{apply, delete, import, plan};
use crate::api::all_crds_yaml;

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
    /// Print the CustomResourceDefinitions (the source of crds/): all of them, or with
    /// `--out-dir` write each to its file there.
    Crd(CrdArgs),
    /// Show what apply would do to the accounts and deployments in the manifests, writing
    /// nothing. Exit 0: no changes; 2: changes; 1: error or a resource that cannot progress.
    Plan(plan::PlanArgs),
    /// Bring the accounts, then the deployments, in the manifests to their spec, waiting for
    /// ARM, and print the resulting resources. Exit 0: all Ready; 3: some not Ready; 1: invalid
    /// input or error.
    Apply(apply::ApplyArgs),
    /// Run the deletion policy of every resource in the manifests, deployments before their
    /// account, as the controller does when they are deleted; print every ARM write. Exit 0:
    /// all done; 3: some could not be (e.g. PurgeForbidden); 1: invalid input or error.
    Delete(delete::DeleteArgs),
    /// Write the manifests of the accounts and deployments already in Azure (a subscription,
    /// resource groups or account ids), read-only; `plan` of them shows only the adoption.
    Import(import::ImportArgs),
    /// Run the whole job on an embedded ARM emulator: create, restore, purge, steady state, delete.
    #[cfg(feature = "emulator")]
    Demo(demo::DemoArgs),
    /// Serve a stateful Microsoft.CognitiveServices ARM emulator on loopback.
    #[cfg(feature = "emulator")]
    Emulator(arm_emulator::EmulatorArgs),
}

#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// Write each CRD to its own file in this directory (as in crds/) instead of printing them.
    #[arg(long)]
    pub out_dir: Option<std::path::PathBuf>,
}

fn write_crds(args: &CrdArgs) -> i32 {
    let Some(dir) = &args.out_dir else {
        print!("{}", all_crds_yaml());
        return 0;
    };
    for (file, crd) in crate::api::crds() {
        let path = dir.join(file);
        if let Err(e) = std::fs::write(&path, crate::api::crd_to_yaml(&crd)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    0
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
        Command::Crd(args) => write_crds(&args),
        Command::Plan(args) => plan::run(args).await,
        Command::Apply(args) => apply::run(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::Import(args) => import::run(args).await,
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
