//! What `plan` and `apply` share: the manifests to read and the ARM to talk to.

use std::path::PathBuf;

use super::manifests::{self, Manifests};
use crate::api::CognitiveServicesAccount;
use crate::arm::{ArmArgs, ArmClient, CredentialMode};
use crate::engine::Engine;

#[derive(clap::Args, Debug)]
pub struct Inputs {
    /// Manifest files or directories (multi-document YAML; `-` reads stdin). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub arm: ArmArgs,

    /// Start an embedded ARM emulator (seeded with the manifests' resource groups) instead of
    /// talking to Azure.
    #[cfg(feature = "emulator")]
    #[arg(long, conflicts_with = "arm_endpoint")]
    pub emulator: bool,

    /// The cluster id of the operator that manages these resources (its --cluster-id; by
    /// default the UID of that cluster's kube-system namespace), so that the owner tags read
    /// and written are the ones it uses. Without it: owner tags without a cluster.
    #[arg(long, env = "CLUSTER_ID")]
    pub cluster_id: Option<String>,
}

impl Inputs {
    /// The engine for these inputs: the connection's default subscription, this cluster id.
    pub fn engine(&self, connection: &Connection) -> Engine {
        Engine::new(connection.default_subscription.clone()).for_cluster(self.cluster_id.clone())
    }
}

/// A client ready for the resources, and what keeps it working.
pub struct Connection {
    pub client: ArmClient,
    /// The subscription of resources that name none.
    pub default_subscription: Option<String>,
    /// The embedded emulator, with `--emulator`; it serves until dropped.
    #[cfg(feature = "emulator")]
    pub emulator: Option<arm_emulator::Emulator>,
}

impl Inputs {
    /// [`Inputs::open`], saying on stderr why it failed.
    pub async fn open_or_report(&self) -> Option<(Manifests, Connection)> {
        self.open()
            .await
            .inspect_err(|message| eprintln!("error: {message}"))
            .ok()
    }

    /// Reads and validates the manifests, then connects. The error is ready to print.
    pub async fn open(&self) -> Result<(Manifests, Connection), String> {
        let loaded = manifests::load(&self.files).map_err(|e| e.to_string())?;
        let resources: Vec<_> = loaded.accounts.iter().map(|l| l.resource.clone()).collect();
        let connection = self.connect(&resources).await?;
        Ok((loaded, connection))
    }

    /// Connects to Azure (default credential: the Azure CLI, for a person at a terminal) or starts
    /// an embedded emulator seeded for `resources`.
    pub async fn connect(
        &self,
        resources: &[CognitiveServicesAccount],
    ) -> Result<Connection, String> {
        #[cfg(feature = "emulator")]
        if self.emulator {
            return self.connect_embedded(resources).await;
        }
        #[cfg(not(feature = "emulator"))]
        let _ = resources;
        let client = self
            .arm
            .client(CredentialMode::AzureCli)
            .map_err(|e| e.to_string())?;
        Ok(Connection {
            client,
            default_subscription: self.arm.subscription_id.clone(),
            #[cfg(feature = "emulator")]
            emulator: None,
        })
    }

    #[cfg(feature = "emulator")]
    async fn connect_embedded(
        &self,
        resources: &[CognitiveServicesAccount],
    ) -> Result<Connection, String> {
        use super::embedded;
        let subscription = self
            .arm
            .subscription_id
            .clone()
            .unwrap_or_else(|| embedded::EMULATOR_SUBSCRIPTION.to_string());
        let started = embedded::start(resources, &subscription)
            .await
            .map_err(|e| format!("cannot start the embedded emulator: {e}"))?;
        Ok(Connection {
            client: started.client,
            default_subscription: Some(subscription),
            emulator: Some(started.emulator),
        })
    }
}
