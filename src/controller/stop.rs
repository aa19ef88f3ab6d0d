//! When to stop: SIGTERM or Ctrl-C, a lost Lease, a grace period, as futures to race.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::watch;

pub(super) type StopFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Turns true on SIGTERM or Ctrl-C.
pub(super) fn shutdown_signal() -> watch::Receiver<bool> {
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
pub(super) fn when_true(rx: watch::Receiver<bool>) -> StopFuture {
    when_true_map(rx, |v| *v)
}

pub(super) fn when_true_map<T: Send + Sync + 'static>(
    mut rx: watch::Receiver<T>,
    condition: fn(&T) -> bool,
) -> StopFuture {
    Box::pin(async move {
        let _ = rx.wait_for(condition).await;
    })
}

pub(super) fn after(start: StopFuture, delay: Duration) -> StopFuture {
    Box::pin(async move {
        start.await;
        tokio::time::sleep(delay).await;
    })
}

pub(super) fn first_of(a: StopFuture, b: StopFuture) -> StopFuture {
    Box::pin(async move {
        futures::future::select(a, b).await;
    })
}
