//! Leader election: the controller runs only while this replica holds the Lease, and stops
//! reconciling (in-flight reconciles get a short grace) when it loses it.

use std::sync::Arc;
use std::time::Duration;

use kube::Api;
use tokio::sync::watch;

use super::RunArgs;
use super::http::Health;
use super::leader::{LeaseElector, LeaseState, LeaseTiming, SystemClock};
use super::reconciler::Reconciler;
use super::run::run_controller;
use super::stop::{StopFuture, after, first_of, when_true, when_true_map};

/// How long a replica that lost the Lease lets in-flight reconciles finish: well inside the
/// gap between its renew deadline and the moment another replica may take over.
const LOST_LEASE_GRACE: Duration = Duration::from_secs(2);

/// Reconciles only while holding the Lease; on SIGTERM stops the controller, then releases it.
pub(super) async fn run_elected(
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
