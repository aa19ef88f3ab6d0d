//! The reconciler: one per process, holding what all reconciles share (the client, the engine,
//! credentials, grants, the event recorder, metrics, backoffs).

use std::sync::Arc;
use std::time::Instant;

use kube::runtime::events::{Recorder, Reporter};

use crate::controller::credentials::Credentials;
use crate::controller::error::Error;
use crate::controller::grants::Grants;
use crate::controller::metrics::{Metrics, ReconcileResult};
use crate::controller::requeue::{Backoffs, Requeue};
use crate::engine::Engine;

/// The field manager of every server-side apply (and the events' reporting controller).
pub const FIELD_MANAGER: &str = "cognitive-operator";

/// Reconciles resources. One per process, shared by all reconciles.
pub struct Reconciler {
    pub(super) client: kube::Client,
    pub(super) engine: Engine,
    pub(super) credentials: Credentials,
    pub(super) grants: Grants,
    pub(super) recorder: Recorder,
    pub(super) metrics: Arc<Metrics>,
    pub(super) backoffs: Backoffs,
}

/// A reconcile's result before requeue bookkeeping.
pub(super) struct Reconciled {
    pub(super) requeue: Requeue,
    pub(super) result: ReconcileResult,
}

impl Reconciler {
    /// `instance` names this replica in events (`reportingInstance`).
    pub fn new(
        client: kube::Client,
        engine: Engine,
        credentials: Credentials,
        grants: Grants,
        metrics: Arc<Metrics>,
        instance: &str,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance.into()),
        };
        Reconciler {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            engine,
            credentials,
            grants,
            metrics,
            backoffs: Backoffs::default(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The resource is gone from the cluster: drop what is kept for it (its backoff, its
    /// credentials Secret's client when no other resource uses that Secret).
    pub fn forget(&self, namespace: Option<&str>, name: Option<&str>) {
        let key = format!(
            "{}/{}",
            namespace.unwrap_or("default"),
            name.unwrap_or_default()
        );
        self.backoffs.reset(&key);
        self.credentials.release(&key);
    }

    pub(super) async fn timed(
        &self,
        work: impl Future<Output = Result<Reconciled, Error>>,
    ) -> Result<Requeue, Error> {
        let started = Instant::now();
        let result = work.await;
        let label = match &result {
            Ok(done) => done.result,
            Err(_) => ReconcileResult::Error,
        };
        self.metrics.record_reconcile(label, started.elapsed());
        result.map(|done| done.requeue)
    }
}

pub(super) fn done(requeue: Requeue, result: ReconcileResult) -> Reconciled {
    Reconciled { requeue, result }
}

/// `namespace/name`, the key of per-resource state.
pub(super) fn key_of(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default()
    )
}
