//! `/metrics`, `/healthz` and `/readyz`.
//!
//! Ready means: without leader election, the watch cache has synced; with it, either this
//! replica leads and its watch has synced, or it stands by with a working view of the Lease.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::metrics::Metrics;

/// Readiness inputs, set by the parts that know them.
#[derive(Debug, Default)]
pub struct Health {
    leader_election: bool,
    /// The watch cache of the running controller has its initial list.
    synced: AtomicBool,
    /// This replica holds the Lease.
    leading: AtomicBool,
    /// The last Lease round got an answer (a follower that can see the Lease stands by correctly).
    lease_reachable: AtomicBool,
}

impl Health {
    pub fn new(leader_election: bool) -> Self {
        Health {
            leader_election,
            ..Default::default()
        }
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    pub fn set_synced(&self, synced: bool) {
        self.synced.store(synced, Ordering::SeqCst);
    }

    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    pub fn set_lease_reachable(&self, reachable: bool) {
        self.lease_reachable.store(reachable, Ordering::SeqCst);
    }

    pub fn ready(&self) -> bool {
        let synced = self.synced.load(Ordering::SeqCst);
        if !self.leader_election {
            return synced;
        }
        if self.leading.load(Ordering::SeqCst) {
            synced
        } else {
            self.lease_reachable.load(Ordering::SeqCst)
        }
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Binds `addr` and serves until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    let app = router(metrics, health);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_replica_is_ready_once_synced() {
        let health = Health::new(false);
        assert!(!health.ready());
        health.set_synced(true);
        assert!(health.ready());
    }

    #[test]
    fn with_leader_election_the_leader_needs_a_synced_watch_and_a_follower_the_lease() {
        let health = Health::new(true);
        assert!(!health.ready());
        health.set_lease_reachable(true);
        assert!(
            health.ready(),
            "a follower that sees the lease stands by correctly"
        );
        health.set_leading(true);
        assert!(
            !health.ready(),
            "a new leader is not ready before its watch syncs"
        );
        health.set_synced(true);
        assert!(health.ready());
    }
}
