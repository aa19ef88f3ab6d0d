//! `cognitive-operator run`: the Kubernetes controller (in progress).

use std::net::SocketAddr;

use crate::cli::arm_args::ArmArgs;

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
}

pub async fn run(_args: RunArgs) -> i32 {
    eprintln!("error: the controller is not built yet");
    1
}
