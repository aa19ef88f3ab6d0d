//! The accept loops, plain and TLS. Each connection is served by hyper with the axum router; a
//! per-connection kill switch (in a request extension) lets a `drop` fault close the socket
//! without answering, and a per-connection [`Scheme`] makes the links it is sent use https when
//! it came over TLS.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// How long a client may take over its TLS handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheme the request's connection speaks, for the links answered on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Closes the connection it belongs to when `kill` is called.
#[derive(Clone, Default)]
pub(crate) struct ConnectionHandle(Arc<Notify>);

impl ConnectionHandle {
    pub(crate) fn kill(&self) {
        // notify_one keeps a permit if the connection task is not waiting yet.
        self.0.notify_one();
    }

    async fn killed(&self) {
        self.0.notified().await;
    }
}

/// Accepts connections until `shutdown` changes or its sender is dropped; with `tls`, each
/// connection does its TLS handshake first (in its own task, so a slow client blocks no other).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let (router, shutdown) = (router.clone(), shutdown.clone());
                match tls.clone() {
                    None => {
                        tokio::spawn(serve_connection(stream, Scheme::Http, router, shutdown));
                    }
                    Some(acceptor) => {
                        tokio::spawn(serve_tls_connection(acceptor, stream, router, shutdown));
                    }
                }
            }
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "emulator failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_tls_connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, Scheme::Https, router, shutdown).await,
        Ok(Err(error)) => tracing::debug!(%error, "emulator TLS handshake failed"),
        Err(_) => tracing::debug!("emulator TLS handshake timed out"),
    }
}

async fn serve_connection<S>(
    stream: S,
    scheme: Scheme,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handle = ConnectionHandle::default();
    let service = {
        let handle = handle.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(handle.clone());
            request.extensions_mut().insert(scheme);
            router.clone().call(request)
        })
    };
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Returning drops the connection and with it the socket.
    tokio::select! {
        _ = connection => {}
        _ = handle.killed() => {}
        _ = shutdown.changed() => {}
    }
}
