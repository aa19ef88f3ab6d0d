//! `cognitive-operator run`: the reconcile engine as a Kubernetes operator.
//!
//! Wiring only: logging, the HTTP endpoints, waiting for the CRD, leader election, and a
//! kube-runtime `Controller` that hands each resource to the [`Reconciler`]. The reconcile
//! itself lives in [`reconciler`]; everything that decides (finalizer, status, Secret, requeue)
//! is tested there against a fake API server.

pub mod credentials;
mod error;
pub mod grants;
pub mod http;
pub mod key_rotation;
pub mod leader;
pub mod metrics;
pub mod reconciler;
pub mod requeue;
mod resilient_watch;
pub mod secrets;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DynamicObject, ObjectMeta};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, CustomResourceExt};
use tokio::sync::{oneshot, watch};

use crate::api::CognitiveServicesAccount;
use crate::arm::{ArmClientConfig, CredentialMode};
use crate::cli::arm_args::ArmArgs;
use crate::engine::Engine;
use crate::tenancy::Grant;

pub use error::Error;
pub use reconciler::{INVALID_RESOURCE_ANNOTATION, Reconciler};
pub use requeue::Requeue;

use http::Health;
use leader::{LeaseElector, LeaseState, LeaseTiming, SystemClock};
use metrics::Metrics;

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

/// How long a replica that lost the Lease lets in-flight reconciles finish: well inside the
/// gap between its renew deadline and the moment another replica may take over.
const LOST_LEASE_GRACE: Duration = Duration::from_secs(2);

/// How often to look for the CRD while it is missing.
const CRD_POLL: Duration = Duration::from_secs(5);

/// `(namespace, name)` of a watched object.
type ObjectKey = (Option<String>, Option<String>);

type StopFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs the operator until SIGTERM (or Ctrl-C); returns the process exit code.
pub async fn run(args: RunArgs) -> i32 {
    init_logging(args.log_format, &args.log_level);
    match serve(args).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "cognitive-operator stopped");
            1
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: bad log filter {filter:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Span fields (namespace, name of the reconcile; request_id of the ARM call) go on each line.
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if result.is_err() {
        eprintln!("warning: a logger was already installed");
    }
}

async fn serve(args: RunArgs) -> Result<(), Error> {
    let leader_election = args.leader_election();
    let client = kube::Client::try_default()
        .await
        .map_err(|e| Error::Config(format!("cannot configure the Kubernetes client: {e}")))?;
    let metrics = Arc::new(Metrics::default());
    let identity = leader::holder_identity();
    let cluster_id = match &args.cluster_id {
        Some(id) => id.clone(),
        None => kube_system_uid(&client).await?,
    };
    let (namespaces, namespace_writer) = reflector::store();
    // Built first, so a credential misconfiguration stops the process at once.
    let reconciler = Arc::new(build_reconciler(
        &args,
        client.clone(),
        metrics.clone(),
        &identity,
        namespaces.clone(),
        cluster_id.clone(),
    )?);
    tokio::spawn(cache_namespaces(
        client.clone(),
        namespace_writer,
        reconciler.grants().clone(),
    ));
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        label_selector = args.label_selector.as_deref().unwrap_or(""),
        concurrency = args.concurrency,
        leader_election,
        cluster_id = %cluster_id,
        "starting cognitive-operator"
    );
    let health = Arc::new(Health::new(leader_election));
    let stop = shutdown_signal();
    let http = http::serve(
        args.http_addr,
        metrics.clone(),
        health.clone(),
        when_true(stop.clone()),
    )
    .await
    .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", args.http_addr)))?;
    if wait_for_namespaces(&namespaces, stop.clone()).await
        && wait_for_crd(&client, stop.clone()).await
    {
        if leader_election {
            run_elected(&args, client, reconciler, health, stop, identity).await;
        } else {
            let hard_stop = after(when_true(stop.clone()), args.shutdown_timeout);
            run_controller(
                &args,
                client,
                reconciler,
                &health,
                when_true(stop),
                hard_stop,
            )
            .await;
        }
    }
    let _ = http.await;
    tracing::info!("stopped");
    Ok(())
}

/// The default cluster id: the kube-system namespace's UID (it lives as long as the cluster).
async fn kube_system_uid(client: &kube::Client) -> Result<String, Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let unreadable = |why: String| {
        Error::Config(format!(
            "cannot name this cluster from the kube-system namespace's UID ({why}); set --cluster-id"
        ))
    };
    let meta = namespaces
        .get_metadata("kube-system")
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    meta.metadata
        .uid
        .ok_or_else(|| unreadable("it has no UID".into()))
}

/// Keeps the Namespace metadata cache that grants are read from, and announces each
/// namespace whose grant changed.
async fn cache_namespaces(
    client: kube::Client,
    writer: Writer<PartialObjectMeta<Namespace>>,
    grants: grants::Grants,
) {
    // An Api of PartialObjectMeta asks for metadata only.
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(client);
    let mut changes = grants::GrantChanges::default();
    resilient_watch::fresh_after_error(namespaces, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|event| {
            match event {
                Ok(event) => {
                    if let Some(namespace) = changes.changed(&event) {
                        grants.announce(namespace);
                    }
                }
                Err(error) => tracing::warn!(%error, "namespace watch failed; retrying"),
            }
            std::future::ready(())
        })
        .await;
}

/// Grants are read from the Namespace cache: no reconcile may run before it is filled, or a
/// namespace would get the default grant instead of its own. False when stopped first.
async fn wait_for_namespaces(
    namespaces: &Store<PartialObjectMeta<Namespace>>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        ready = namespaces.wait_until_ready() => ready.is_ok(),
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

/// The engine, the default ARM client (the operator's own identity) and per-Secret clients,
/// all counting into the same ARM metrics.
fn build_reconciler(
    args: &RunArgs,
    client: kube::Client,
    metrics: Arc<Metrics>,
    identity: &str,
    namespaces: Store<PartialObjectMeta<Namespace>>,
    cluster_id: String,
) -> Result<Reconciler, Error> {
    let template = ArmClientConfig {
        metrics: metrics.arm().clone(),
        ..ArmClientConfig::new(args.arm.endpoint())
    };
    // The operator's own identity: workload identity unless --credential says otherwise.
    let default = args
        .arm
        .client_with(CredentialMode::WorkloadIdentity, template.clone())?;
    let credentials = credentials::Credentials::new(
        default,
        template,
        credentials::azure_credential_factory(
            args.arm.cloud,
            args.arm.token_scope.clone(),
            args.allowed_federated_client_ids.clone(),
        ),
    );
    let engine = Engine::new(args.arm.subscription_id.clone()).for_cluster(Some(cluster_id));
    let grants = grants::Grants::new(args.default_scopes.clone(), namespaces);
    Ok(Reconciler::new(
        client,
        engine,
        credentials,
        grants,
        metrics,
        identity,
    ))
}

/// The only annotations the controller reads are its own.
const OWN_ANNOTATION_PREFIX: &str = "cognitive-operator.dev/";

/// Drops what the controller never reads before an object enters the cache: managedFields,
/// labels and every annotation but its own `cognitive-operator.dev/*` (kubectl's last-applied
/// copy of the spec, Argo CD's tracking id...). They are most of a small object's size (see
/// docs/performance.md). The reconciler writes with server-side apply and merge patches that
/// depend on none of them. An [`INVALID_RESOURCE_ANNOTATION`] set from outside is dropped too:
/// only [`cache_object`] sets it.
pub fn trim_for_cache(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.labels = None;
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|key, _| {
            key.starts_with(OWN_ANNOTATION_PREFIX) && key != INVALID_RESOURCE_ANNOTATION
        });
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// What the controller caches for a watched object: its metadata trimmed by
/// [`trim_for_cache`], deserialized as a typed `CognitiveServicesAccount`. An object that does
/// not deserialize becomes a placeholder (its metadata, a default spec, its status when that
/// still parses) carrying the parse error in [`INVALID_RESOURCE_ANNOTATION`], which the
/// reconciler reports as Stalled `InvalidResource` without calling ARM. So the watch stays
/// untyped (one malformed object never fails a list) while the cache holds compact typed objects.
pub fn cache_object(mut object: DynamicObject) -> CognitiveServicesAccount {
    trim_for_cache(&mut object.metadata);
    match reconciler::parse_account(&object) {
        Ok(resource) => resource,
        Err(message) => {
            let status = object
                .data
                .get_mut("status")
                .map(serde_json::Value::take)
                .and_then(|s| serde_json::from_value(s).ok());
            let mut metadata = object.metadata;
            metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(INVALID_RESOURCE_ANNOTATION.into(), message);
            CognitiveServicesAccount {
                metadata,
                spec: Default::default(),
                status,
            }
        }
    }
}

/// [`cache_object`] applied to every object of a watcher event.
pub fn cache_event(
    event: watcher::Event<DynamicObject>,
) -> watcher::Event<CognitiveServicesAccount> {
    use watcher::Event;
    match event {
        Event::Apply(object) => Event::Apply(cache_object(object)),
        Event::Delete(object) => Event::Delete(cache_object(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(cache_object(object)),
        Event::InitDone => Event::InitDone,
    }
}

/// Reconciles only while holding the Lease; on SIGTERM stops the controller, then releases it.
async fn run_elected(
    args: &RunArgs,
    client: kube::Client,
    reconciler: Arc<Reconciler>,
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
    identity: String,
) {
    let leases = Api::namespaced(client.clone(), &args.lease_namespace);
    tracing::info!(lease = %args.lease_name, namespace = %args.lease_namespace, %identity, "leader election: standing by for the lease");
    let elector = LeaseElector::new(
        leases,
        &args.lease_name,
        identity,
        LeaseTiming::default(),
        Arc::new(SystemClock),
    );
    let (state_tx, state) = watch::channel(LeaseState::default());
    let (release_tx, release_rx) = watch::channel(false);
    let elector = tokio::spawn(elector.run(state_tx, release_rx));
    let mirror = tokio::spawn(mirror_lease_state(state.clone(), health.clone()));
    loop {
        let mut leading = state.clone();
        let mut stopping = stop.clone();
        tokio::select! {
            elected = leading.wait_for(|s| s.leading) => if elected.is_err() { break },
            _ = stopping.wait_for(|s| *s) => break,
        }
        tracing::info!("leading: starting the controller");
        let lost = when_true_map(state.clone(), |s| !s.leading);
        let graceful: StopFuture = Box::pin(first_of(lost, when_true(stop.clone())));
        let hard_stop = first_of(
            after(
                when_true_map(state.clone(), |s| !s.leading),
                LOST_LEASE_GRACE,
            ),
            after(when_true(stop.clone()), args.shutdown_timeout),
        );
        run_controller(
            args,
            client.clone(),
            reconciler.clone(),
            &health,
            graceful,
            hard_stop,
        )
        .await;
        if *stop.borrow() {
            break;
        }
        tracing::warn!("lost the lease: stopped reconciling");
    }
    let _ = release_tx.send(true);
    let _ = elector.await;
    mirror.abort();
}

async fn mirror_lease_state(mut state: watch::Receiver<LeaseState>, health: Arc<Health>) {
    loop {
        let now = *state.borrow_and_update();
        health.set_leading(now.leading);
        health.set_lease_reachable(now.reachable);
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// Runs a Controller until `graceful` (finish in-flight reconciles) or `hard_stop` (abandon
/// them: they resume from status on the next run).
async fn run_controller(
    args: &RunArgs,
    client: kube::Client,
    reconciler: Arc<Reconciler>,
    health: &Arc<Health>,
    graceful: impl Future<Output = ()> + Send + 'static,
    hard_stop: impl Future<Output = ()> + Send + 'static,
) {
    let resource = reconciler::account_api_resource();
    let (accounts, secrets): (Api<DynamicObject>, Api<Secret>) = match &args.namespace {
        Some(ns) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            Api::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all_with(client.clone(), &resource),
            Api::all(client.clone()),
        ),
    };
    let mut scope = watcher::Config::default();
    if let Some(selector) = &args.label_selector {
        scope = scope.labels(selector);
    }
    // Only the Secrets this operator writes: watching every Secret would cache them all.
    let own_secrets = watcher::Config::default().labels(&format!(
        "{}={}",
        secrets::MANAGED_BY_LABEL,
        secrets::MANAGED_BY
    ));
    let writer = Writer::<CognitiveServicesAccount>::default();
    let store = writer.as_reader();
    // The watch is untyped, so one malformed object never fails the list of the others; each
    // event is converted to the typed object the cache holds (a placeholder for a malformed
    // one). Our own status writes and finalizer edits change nothing `relevant_change` looks
    // at, so they do not trigger another reconcile.
    let changes = resilient_watch::fresh_after_error(accounts, scope)
        .default_backoff()
        .map_ok(cache_event)
        .reflect(writer)
        .filter_map(relevant_objects({
            let reconciler = reconciler.clone();
            move |key: &ObjectKey| reconciler.forget(key.0.as_deref(), key.1.as_deref())
        }));
    reconciler.metrics().set_store(Some(store.clone()));
    let synced = tokio::spawn({
        let (store, health) = (store.clone(), health.clone());
        async move {
            if store.wait_until_ready().await.is_ok() {
                tracing::info!("watch synced");
                health.set_synced(true);
            }
        }
    });
    let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
    let relay = tokio::spawn(async move {
        graceful.await;
        let _ = graceful_tx.send(());
    });
    let results = Controller::for_stream(changes, store.clone())
        .owns_stream(
            resilient_watch::fresh_after_error(secrets, own_secrets)
                .default_backoff()
                .touched_objects(),
        )
        .reconcile_on(accounts_under_changed_grants(
            reconciler.grants().subscribe(),
            store.clone(),
        ))
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(async move {
            let _ = graceful_rx.await;
        })
        .run(
            |object, reconciler: Arc<Reconciler>| async move {
                reconciler.reconcile(&object).await.map(Requeue::action)
            },
            |object, error, reconciler| reconciler.error_requeue(&object, error).action(),
            reconciler.clone(),
        )
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                // Logged with its resource by the error policy.
                Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(controller::Error::ObjectNotFound(object)) => {
                    tracing::debug!(%object, "scheduled object is gone")
                }
                // The watcher retries with backoff; a persistent error (RBAC, CRD removed) shows here.
                Err(e) => tracing::warn!(error = %e, "watch failed; retrying"),
            }
        });
    tokio::select! {
        _ = results => tracing::info!("controller stopped"),
        _ = hard_stop => tracing::warn!("in-flight reconciles did not finish in time; abandoning them (they resume from status)"),
    }
    relay.abort();
    synced.abort();
    health.set_synced(false);
    reconciler.metrics().set_store(None);
}

/// Every account in a namespace whose grant changed (all of them when changes were missed).
fn accounts_under_changed_grants(
    changes: impl futures::Stream<Item = grants::GrantChange> + Send + 'static,
    store: Store<CognitiveServicesAccount>,
) -> impl futures::Stream<Item = reflector::ObjectRef<CognitiveServicesAccount>> + Send + 'static {
    changes.flat_map(move |change| {
        let affected: Vec<_> = store
            .state()
            .iter()
            .filter(|account| match &change {
                grants::GrantChange::Namespace(namespace) => {
                    account.metadata.namespace.as_ref() == Some(namespace)
                }
                grants::GrantChange::Unknown => true,
            })
            .map(|account| reflector::ObjectRef::from_obj(account.as_ref()))
            .collect();
        futures::stream::iter(affected)
    })
}

type WatchedAccount = Result<CognitiveServicesAccount, watcher::Error>;
type WatchedEvent = Result<watcher::Event<CognitiveServicesAccount>, watcher::Error>;

/// The objects worth a reconcile (see [`relevant_change`]), from the reflected watch events. It
/// remembers what it let through per object, and forgets an object when it is deleted, or when
/// a relist does not bring it back (deleted while the watch was down), telling `forget` too:
/// memory follows the objects that exist.
fn relevant_objects(
    forget: impl Fn(&ObjectKey),
) -> impl FnMut(WatchedEvent) -> std::future::Ready<Option<WatchedAccount>> {
    type Seen = std::collections::HashMap<ObjectKey, (Option<String>, u64)>;
    // (namespace, name) -> (uid, relevant_change) of the last object let through.
    let mut seen = Seen::new();
    // What a relist in progress has brought back so far.
    let mut relisted: Option<Seen> = None;
    move |item| {
        use watcher::Event;
        let passed = match item {
            Err(error) => return std::future::ready(Some(Err(error))),
            Ok(Event::Init) => {
                relisted = Some(Seen::new());
                None
            }
            Ok(Event::InitApply(object)) => {
                let (key, value) = seen_entry(&object);
                let changed = seen.get(&key) != Some(&value);
                relisted.get_or_insert_with(Seen::new).insert(key, value);
                changed.then_some(object)
            }
            Ok(Event::InitDone) => {
                if let Some(fresh) = relisted.take() {
                    for gone in seen.keys().filter(|key| !fresh.contains_key(*key)) {
                        forget(gone);
                    }
                    seen = fresh;
                }
                None
            }
            Ok(Event::Apply(object)) => {
                let (key, value) = seen_entry(&object);
                let changed = seen.get(&key) != Some(&value);
                seen.insert(key, value);
                changed.then_some(object)
            }
            Ok(Event::Delete(object)) => {
                let key = seen_entry(&object).0;
                seen.remove(&key);
                forget(&key);
                None
            }
        };
        std::future::ready(passed.map(Ok))
    }
}

fn seen_entry(object: &CognitiveServicesAccount) -> (ObjectKey, (Option<String>, u64)) {
    let meta = &object.metadata;
    let key = (meta.namespace.clone(), meta.name.clone());
    (key, (meta.uid.clone(), relevant_change(object)))
}

/// What makes a watched change worth a reconcile: a new generation (spec), the deletion
/// starting, a key annotation, or the object turning (in)valid. Status and finalizer edits are
/// not.
fn relevant_change(object: &CognitiveServicesAccount) -> u64 {
    use std::hash::{Hash, Hasher};
    let meta = &object.metadata;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    for annotation in [
        secrets::REFRESH_KEYS_ANNOTATION,
        secrets::ROTATE_KEY_ANNOTATION,
        INVALID_RESOURCE_ANNOTATION,
    ] {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(annotation))
            .hash(&mut hasher);
    }
    hasher.finish()
}

/// Waits until the CRD is established, saying so in the log while it is missing. False when
/// stopped first.
async fn wait_for_crd(client: &kube::Client, mut stop: watch::Receiver<bool>) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = CognitiveServicesAccount::crd_name();
    let mut last_report = String::new();
    loop {
        let report = match crds.get_opt(name).await {
            Ok(Some(crd)) if crd_established(&crd) => {
                tracing::info!(crd = name, "CRD established");
                return true;
            }
            Ok(Some(_)) => format!("CRD {name} exists but is not established yet; waiting"),
            Ok(None) => format!(
                "CRD {name} is not installed: apply it (kubectl apply -f crds/{}); waiting for it",
                crate::cli::CRD_FILE
            ),
            Err(e) => format!("cannot read CRD {name}: {e}; retrying"),
        };
        if report != last_report {
            tracing::warn!("{report}");
            last_report = report;
        }
        tokio::select! {
            _ = tokio::time::sleep(CRD_POLL) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
}

pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Turns true on SIGTERM or Ctrl-C.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        tracing::info!("shutdown requested: finishing in-flight reconciles");
        let _ = tx.send(true);
    });
    rx
}

/// Resolves when the flag turns true (or its sender is gone).
fn when_true(rx: watch::Receiver<bool>) -> StopFuture {
    when_true_map(rx, |v| *v)
}

fn when_true_map<T: Send + Sync + 'static>(
    mut rx: watch::Receiver<T>,
    condition: fn(&T) -> bool,
) -> StopFuture {
    Box::pin(async move {
        let _ = rx.wait_for(condition).await;
    })
}

fn after(start: StopFuture, delay: Duration) -> StopFuture {
    Box::pin(async move {
        start.await;
        tokio::time::sleep(delay).await;
    })
}

fn first_of(a: StopFuture, b: StopFuture) -> StopFuture {
    Box::pin(async move {
        futures::future::select(a, b).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;
    use serde_json::json;

    /// kubectl's copy of the last applied spec: large, and never read by the controller.
    const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

    fn watched(generation: i64, annotations: Value, status: &str) -> DynamicObject {
        let mut object = DynamicObject::new("docs", &reconciler::account_api_resource())
            .within("team")
            .data(json!({
                "spec": {"resourceGroup": "rg", "location": "westus", "kind": "OpenAI", "sku": {"name": "S0"}},
                "status": {"provisioningState": status},
            }));
        object.metadata.generation = Some(generation);
        object.metadata.annotations = serde_json::from_value(annotations).unwrap();
        object
    }

    /// The object as the controller caches it.
    fn object(generation: i64, annotations: Value, status: &str) -> CognitiveServicesAccount {
        cache_object(watched(generation, annotations, status))
    }

    use serde_json::Value;

    #[test]
    fn the_cache_keeps_what_the_controller_reads_and_drops_the_rest() {
        let mut watched = watched(
            3,
            json!({LAST_APPLIED: "{\"spec\":{}}", "cognitive-operator.dev/rotate-key": "Key1"}),
            "Succeeded",
        );
        watched.metadata.managed_fields = Some(vec![Default::default()]);
        watched.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
        let cached = cache_object(watched);
        assert_eq!(cached.metadata.managed_fields, None);
        assert_eq!(cached.metadata.labels, None);
        let annotations = cached.metadata.annotations.clone().unwrap();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert!(!annotations.contains_key(INVALID_RESOURCE_ANNOTATION));
        assert_eq!(annotations["cognitive-operator.dev/rotate-key"], "Key1");
        assert_eq!(cached.metadata.generation, Some(3));
        assert_eq!(cached.spec.resource_group, "rg");
        assert_eq!(
            cached.status.unwrap().provisioning_state.as_deref(),
            Some("Succeeded")
        );
    }

    #[test]
    fn a_malformed_object_is_cached_as_a_placeholder_carrying_the_error() {
        let mut watched = watched(2, json!({"unrelated": "x"}), "Succeeded");
        watched.data["spec"]["sku"]["name"] = json!(7);
        let cached = cache_object(watched);
        let annotations = cached.metadata.annotations.clone().unwrap();
        assert!(
            annotations[INVALID_RESOURCE_ANNOTATION].contains("spec.sku.name"),
            "{annotations:?}"
        );
        assert!(!annotations.contains_key("unrelated"));
        assert_eq!(cached.metadata.name.as_deref(), Some("docs"));
        assert_eq!(cached.metadata.generation, Some(2));
        assert_eq!(cached.spec, Default::default());
        assert_eq!(
            cached.status.unwrap().provisioning_state.as_deref(),
            Some("Succeeded"),
            "the status is kept when it parses"
        );
    }

    #[test]
    fn an_invalid_resource_annotation_from_outside_is_dropped() {
        let cached = object(
            1,
            json!({INVALID_RESOURCE_ANNOTATION: "forged"}),
            "Succeeded",
        );
        assert_eq!(cached.metadata.annotations, None);
    }

    #[test]
    fn every_watcher_event_is_converted() {
        use watcher::Event;
        let converted = [
            Event::Init,
            Event::InitApply(watched(1, json!(null), "Creating")),
            Event::InitDone,
            Event::Apply(watched(2, json!(null), "Succeeded")),
            Event::Delete(watched(2, json!(null), "Succeeded")),
        ]
        .map(cache_event);
        assert!(matches!(converted[0], Event::Init));
        assert!(matches!(&converted[1], Event::InitApply(o) if o.metadata.generation == Some(1)));
        assert!(matches!(converted[2], Event::InitDone));
        assert!(matches!(&converted[3], Event::Apply(o) if o.metadata.generation == Some(2)));
        assert!(matches!(&converted[4], Event::Delete(o) if o.spec.resource_group == "rg"));
    }

    async fn passed(objects: Vec<CognitiveServicesAccount>) -> Vec<CognitiveServicesAccount> {
        passed_events(objects.into_iter().map(watcher::Event::Apply).collect()).await
    }

    async fn passed_events(
        events: Vec<watcher::Event<CognitiveServicesAccount>>,
    ) -> Vec<CognitiveServicesAccount> {
        stream::iter(events.into_iter().map(Ok))
            .filter_map(relevant_objects(|_: &ObjectKey| {}))
            .map(|item| item.unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn deleted_objects_are_forgotten_also_when_a_relist_misses_them() {
        use kube::ResourceExt;
        use watcher::Event;
        let one = || object(1, json!(null), "Succeeded");
        // Deleted, then the same object again: let through as new.
        let again = passed_events(vec![
            Event::Apply(one()),
            Event::Delete(one()),
            Event::Apply(one()),
        ])
        .await;
        assert_eq!(again.len(), 2);
        // A relist that does not bring it back forgets it too.
        let mut other = one();
        other.metadata.name = Some("other".into());
        let after_relist = passed_events(vec![
            Event::Apply(one()),
            Event::Init,
            Event::InitApply(other.clone()),
            Event::InitDone,
            Event::Apply(one()),
            Event::Apply(other),
        ])
        .await;
        let names: Vec<_> = after_relist.iter().map(|o| o.name_any()).collect();
        assert_eq!(
            names,
            [one().name_any(), "other".to_string(), one().name_any()]
        );
    }

    #[tokio::test]
    async fn what_is_kept_per_resource_is_dropped_when_it_is_deleted_or_missed_by_a_relist() {
        use kube::ResourceExt;
        use std::sync::Mutex;
        use watcher::Event;
        let forgotten = Mutex::new(Vec::new());
        let one = object(1, json!(null), "Succeeded");
        let mut other = one.clone();
        other.metadata.name = Some("other".into());
        let events = vec![
            Event::Apply(one.clone()),
            Event::Apply(other.clone()),
            Event::Delete(other),
            Event::Init,
            Event::InitDone,
        ];
        let _: Vec<_> = stream::iter(events.into_iter().map(Ok))
            .filter_map(relevant_objects(|key: &ObjectKey| {
                forgotten.lock().unwrap().push(key.1.clone().unwrap())
            }))
            .collect()
            .await;
        assert_eq!(
            forgotten.into_inner().unwrap(),
            ["other".to_string(), one.name_any()]
        );
    }

    #[tokio::test]
    async fn status_only_changes_do_not_trigger_a_reconcile() {
        let none = json!(null);
        let passed = passed(vec![
            object(1, none.clone(), "Creating"),
            object(1, none.clone(), "Succeeded"),
            object(2, none.clone(), "Succeeded"),
            object(
                2,
                json!({secrets::ROTATE_KEY_ANNOTATION: "Key1"}),
                "Succeeded",
            ),
            object(2, json!({"unrelated": "x"}), "Succeeded"),
        ])
        .await;
        let generations: Vec<_> = passed.iter().map(|o| o.metadata.generation).collect();
        assert_eq!(generations, [Some(1), Some(2), Some(2), Some(2)]);
        assert!(
            passed[2].metadata.annotations.is_some(),
            "the rotate request passes"
        );
    }

    #[tokio::test]
    async fn the_start_of_a_deletion_triggers_a_reconcile() {
        let mut deleting = object(1, json!(null), "Succeeded");
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        let passed = passed(vec![object(1, json!(null), "Succeeded"), deleting]).await;
        assert_eq!(passed.len(), 2);
    }

    #[test]
    fn a_crd_is_usable_once_established() {
        let mut crd = CognitiveServicesAccount::crd();
        assert!(!crd_established(&crd));
        crd.status = serde_json::from_value(json!({
            "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
        }))
        .unwrap();
        assert!(crd_established(&crd));
    }
}
