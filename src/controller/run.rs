//! `cognitive-operator run`: the process — logging, the HTTP endpoints, the Namespace cache the
//! grants are read from, waiting for the CRD, and the kube-runtime `Controller` that hands each
//! resource to the [`Reconciler`], with or without leader election.

use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::DynamicObject;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Predicate, WatchStreamExt, predicates, watcher};
use tokio::sync::{oneshot, watch};

use super::cache::cache_event;
use super::change_filter::{ObjectKey, relevant_objects};
use super::crd_wait::wait_for_crd;
use super::election::run_elected;
use super::error::Error;
use super::http::{self, Health};
use super::metrics::Metrics;
use super::reconciler::{self, Reconciler};
use super::requeue::Requeue;
use super::stop::{after, shutdown_signal, when_true};
use super::{LogFormat, RunArgs, credentials, grants, leader, resilient_watch, secrets};
use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::arm::{ArmClientConfig, CredentialMode};
use crate::engine::Engine;

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
        ..args.arm.config()
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
            args.arm.identity_settings().authority_host,
        ),
        args.allowed_federated_client_ids.clone(),
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

/// Runs the accounts' and the deployments' Controllers until `graceful` (finish in-flight
/// reconciles) or `hard_stop` (abandon them: they resume from status on the next run).
pub(super) async fn run_controller(
    args: &RunArgs,
    client: kube::Client,
    reconciler: Arc<Reconciler>,
    health: &Arc<Health>,
    graceful: impl Future<Output = ()> + Send + 'static,
    hard_stop: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = graceful.shared();
    let hard_stop = hard_stop.shared();
    tokio::join!(
        run_account_controller(
            args,
            client.clone(),
            reconciler.clone(),
            health,
            graceful.clone(),
            hard_stop.clone(),
        ),
        run_deployment_controller(args, client, reconciler, graceful, hard_stop),
    );
}

async fn run_account_controller(
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
    let changes = account_changes(accounts, scope, writer, reconciler.clone(), health.clone());
    reconciler.metrics().set_store(Some(store.clone()));
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
        .for_each(|result| async move { log_controller_result(result) });
    tokio::select! {
        _ = results => tracing::info!("controller stopped"),
        _ = hard_stop => tracing::warn!("in-flight reconciles did not finish in time; abandoning them (they resume from status)"),
    }
    relay.abort();
    health.set_synced(false);
    reconciler.metrics().set_store(None);
}

/// The deployments' Controller. A deployment is reconciled when its spec, finalizers or
/// deletion change (not on our own status writes), when its account resource changes (it
/// may have turned Ready), and when its account's write gate frees.
async fn run_deployment_controller(
    args: &RunArgs,
    client: kube::Client,
    reconciler: Arc<Reconciler>,
    graceful: impl Future<Output = ()> + Send + 'static,
    hard_stop: impl Future<Output = ()> + Send + 'static,
) {
    // Accounts are watched by their metadata only: enough to map a change to its deployments.
    let (deployments, accounts): (
        Api<CognitiveServicesDeployment>,
        Api<PartialObjectMeta<CognitiveServicesAccount>>,
    ) = match &args.namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let mut scope = watcher::Config::default();
    if let Some(selector) = &args.label_selector {
        scope = scope.labels(selector);
    }
    let writer = Writer::<CognitiveServicesDeployment>::default();
    let store = writer.as_reader();
    let forget = reconciler.clone();
    let changes = resilient_watch::fresh_after_error(deployments, scope.clone())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(gone) = event {
                forget.forget_deployment(
                    gone.metadata.namespace.as_deref(),
                    gone.metadata.name.as_deref(),
                );
            }
        })
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::finalizers),
            Default::default(),
        );
    let account_changes = resilient_watch::fresh_after_error(accounts, scope)
        .default_backoff()
        .touched_objects();
    let by_account = store.clone();
    let by_gate = store.clone();
    let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
    let relay = tokio::spawn(async move {
        graceful.await;
        let _ = graceful_tx.send(());
    });
    let results = Controller::for_stream(changes, store.clone())
        .watches_stream(account_changes, move |account| {
            deployments_of_account(&by_account, &account)
        })
        .reconcile_on(waiting_for_freed_gates(
            reconciler.engine().write_gate().subscribe(),
            by_gate,
        ))
        .with_config(controller::Config::default().concurrency(args.concurrency))
        .graceful_shutdown_on(async move {
            let _ = graceful_rx.await;
        })
        .run(
            |object, reconciler: Arc<Reconciler>| async move {
                reconciler
                    .reconcile_deployment(&object)
                    .await
                    .map(Requeue::action)
            },
            |object, error, reconciler| {
                reconciler.deployment_error_requeue(&object, error).action()
            },
            reconciler.clone(),
        )
        .for_each(|result| async move { log_controller_result(result) });
    tokio::select! {
        _ = results => tracing::info!("deployment controller stopped"),
        _ = hard_stop => tracing::warn!("in-flight deployment reconciles did not finish in time; abandoning them (they resume from status)"),
    }
    relay.abort();
}

/// The deployment resources naming `account` in their `spec.accountRef`.
fn deployments_of_account(
    store: &Store<CognitiveServicesDeployment>,
    account: &PartialObjectMeta<CognitiveServicesAccount>,
) -> Vec<reflector::ObjectRef<CognitiveServicesDeployment>> {
    store
        .state()
        .iter()
        .filter(|d| {
            d.metadata.namespace == account.metadata.namespace
                && Some(&d.spec.account_ref.name) == account.metadata.name.as_ref()
        })
        .map(|d| reflector::ObjectRef::from_obj(d.as_ref()))
        .collect()
}

/// Deployments waiting for the write gate of an account that just freed (those that wait
/// for any account, when notices were missed).
fn waiting_for_freed_gates(
    freed: tokio::sync::broadcast::Receiver<String>,
    store: Store<CognitiveServicesDeployment>,
) -> impl futures::Stream<Item = reflector::ObjectRef<CognitiveServicesDeployment>> + Send + 'static
{
    futures::stream::unfold(freed, |mut freed| async move {
        use tokio::sync::broadcast::error::RecvError;
        match freed.recv().await {
            Ok(account_id) => Some((Some(account_id), freed)),
            Err(RecvError::Lagged(_)) => Some((None, freed)),
            Err(RecvError::Closed) => None,
        }
    })
    .flat_map(move |account_id: Option<String>| {
        let waiting: Vec<_> = store
            .state()
            .iter()
            .filter(|d| is_waiting_for(d, account_id.as_deref()))
            .map(|d| reflector::ObjectRef::from_obj(d.as_ref()))
            .collect();
        futures::stream::iter(waiting)
    })
}

fn is_waiting_for(deployment: &CognitiveServicesDeployment, account_id: Option<&str>) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    let waiting = crate::planner::status::find(&status.conditions, crate::planner::status::READY)
        .is_some_and(|c| c.reason == "WaitingForAccountWrite");
    let on_account = match (account_id, &status.arm_id) {
        (None, _) => true,
        (Some(account), Some(id)) => id
            .to_ascii_lowercase()
            .starts_with(&format!("{account}/deployments/")),
        // Not created yet: its account is not recorded, so any freed gate may be its own.
        (Some(_), None) => true,
    };
    waiting && on_account
}

/// The accounts' watch as the controller consumes it. The watch is untyped, so one malformed
/// object never fails the list of the others; each event is converted to the typed object the
/// cache holds (a placeholder for a malformed one). Our own status writes and finalizer edits
/// change nothing `relevant_change` looks at, so they do not trigger another reconcile.
fn account_changes(
    accounts: Api<DynamicObject>,
    scope: watcher::Config,
    writer: Writer<CognitiveServicesAccount>,
    reconciler: Arc<Reconciler>,
    health: Arc<Health>,
) -> impl futures::Stream<Item = Result<CognitiveServicesAccount, watcher::Error>> + Send {
    resilient_watch::fresh_after_error(accounts, scope)
        .default_backoff()
        .map_ok(cache_event)
        .reflect(writer)
        .inspect_ok(move |event| report_synced(event, &health))
        .filter_map(relevant_objects(move |key: &ObjectKey| {
            reconciler.forget(key.0.as_deref(), key.1.as_deref())
        }))
}

/// `/readyz` turns ready once the first list is in the cache: told by the list's end as it
/// passes, not by `Store::wait_until_ready`, whose waiters all but the last go unwoken when
/// several wait at once (the Controller waits on the same store), so readiness never came.
fn report_synced(event: &watcher::Event<CognitiveServicesAccount>, health: &Health) {
    if matches!(event, watcher::Event::InitDone) && !health.synced() {
        tracing::info!("watch synced");
        health.set_synced(true);
    }
}

fn log_controller_result<T, E1: std::fmt::Display, E2: std::fmt::Display>(
    result: Result<T, controller::Error<E1, E2>>,
) {
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
