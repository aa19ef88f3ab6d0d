//! The flags of `cognitive-operator run`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::arm::ArmArgs;
use crate::tenancy::Grant;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub arm: ArmArgs,

    /// Resources reconciled at once.
    #[arg(long, env = "COGNITIVE_OPERATOR_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Watch only resources matching this label selector (to shard resources over several
    /// operator deployments), e.g. `shard=a`.
    #[arg(long, env = "WATCH_LABEL_SELECTOR")]
    pub label_selector: Option<String>,

    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,

    /// Elect a leader through a coordination.k8s.io Lease, so that only one replica writes to ARM.
    #[arg(
        long,
        env = "LEADER_ELECTION",
        default_value_t = true,
        overrides_with = "no_leader_election"
    )]
    pub leader_election: bool,

    /// Disable leader election (a single replica).
    #[arg(long = "no-leader-election", overrides_with = "leader_election")]
    pub no_leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "cognitive-operator")]
    pub lease_name: String,

    /// Namespace of the Lease (default: the pod's namespace from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter, in RUST_LOG syntax (e.g. `info`, `cognitive_operator=debug`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,

    /// Azure scopes a namespace may manage when a cluster admin has not annotated it with
    /// cognitive-operator.dev/azure-scopes: comma-separated SUBSCRIPTION_ID/RESOURCE_GROUP, either
    /// part may be `*`. Empty (the default): a namespace reaches nothing until it is granted.
    /// `*` lets every namespace reach everything the operator's identity can: one tenant only.
    #[arg(long, env = "DEFAULT_AZURE_SCOPES", default_value = "", value_parser = parse_grant)]
    pub default_scopes: Grant,

    /// Client ids a credentials Secret without clientSecret may name for workload identity
    /// (comma-separated). Others are refused: the pod's federated token must not act for any
    /// identity a namespace user names. Empty (the default): none.
    #[arg(long, env = "ALLOWED_FEDERATED_CLIENT_IDS", value_delimiter = ',')]
    pub allowed_federated_client_ids: Vec<String>,

    /// Names this cluster in the owner tags it writes (`{cluster}/{namespace}/{name}`), so
    /// that clusters sharing a subscription never take each other's accounts. Default: the UID
    /// of the kube-system namespace, stable for the cluster's life. Give each cluster its own.
    #[arg(long, env = "CLUSTER_ID")]
    pub cluster_id: Option<String>,

    /// On SIGTERM, how long in-flight reconciles may run before they are abandoned (their
    /// long-running operations are already recorded in status and resume on the next leader).
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration_flag)]
    pub shutdown_timeout: Duration,
}

fn parse_grant(text: &str) -> Result<Grant, String> {
    Grant::parse(text).map_err(|e| e.to_string())
}

fn parse_duration_flag(text: &str) -> Result<Duration, String> {
    crate::api::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 20s or 1m"))
}

impl RunArgs {
    pub fn leader_election(&self) -> bool {
        self.leader_election && !self.no_leader_election
    }
}
