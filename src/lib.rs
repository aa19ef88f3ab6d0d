//! cognitive-operator: a Kubernetes operator for Azure Cognitive Services accounts.
//!
//! The centre is a pure [`planner`]; around it sit thin shells: [`arm`] (the REST client),
//! [`engine`] (runs plans through the client), [`controller`] (Kubernetes wiring) and [`cli`].
//! The ARM emulator that tests and the demo run against is its own crate (`tools/arm-emulator`),
//! in the binary only with the default `emulator` feature. See docs/architecture.md.

pub mod api;
pub mod arm;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod planner;
pub mod tenancy;
#[cfg(test)]
mod test_fixtures;

/// The one ARM api-version this operator speaks.
pub const API_VERSION: &str = "2024-10-01";

/// Installs ring as the process-wide rustls crypto provider.
///
/// kube uses ring, while reqwest is built without a provider of its own; a dev-dependency can
/// also bring aws-lc-rs into test builds, and with two providers compiled in rustls refuses to
/// guess. Every entry point (binary, tests, benches) calls this before building an HTTP client.
/// Calling it more than once is harmless.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
