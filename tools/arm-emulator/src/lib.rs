//! A faithful, stateful Microsoft.CognitiveServices resource provider (api-version 2024-10-01
//! shapes) on loopback, with state in memory. Tests start it in-process ([`Emulator::start`]);
//! the operator's `emulator` subcommand ([`run`]) serves it until killed. See `docs/emulator.md`.
//!
//! A test double, not part of the operator: its own crate, which the operator's binary uses only
//! through its default `emulator` feature (for `demo` and `emulator`); the container image is
//! built without it. It shares no code with the operator, so its ARM contract is written down
//! twice — here from the spec, there from the client's side — and tests compare the two.
//!
//! Structure: [`shared`] runs the request pipeline (faults, auth, throttling, api-version,
//! routing) in front of [`provider`], which implements the endpoints over [`store`] under one
//! mutex, and of [`resource_groups`] (Microsoft.Resources); [`admin`] is the `/_emulator` API;
//! [`identity`] the offline Entra ID and the managed-identity endpoint; [`server`] owns the
//! accept loops, plain and [`tls`]. Accounts are [`model`]; their deployments [`deployment`],
//! drawing on the fixed [`catalogue`] of models and metered by [`billing`].

mod admin;
mod billing;
mod catalogue;
mod cli;
mod clock;
mod config;
mod deployment;
mod error;
mod faults;
mod identity;
mod kinds;
mod model;
mod operations;
mod provider;
mod render;
mod resource_groups;
mod routes;
mod schema;
mod server;
mod shared;
mod signature;
mod store;
mod tags;
mod throttle;
mod tls;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use cli::{EmulatorArgs, run};
pub use config::{
    BucketConfig, DEFAULT_RESOURCE_GROUP_LOCATION, EmulatorConfig, PROFILE_VARIABLE, Profile,
    ResourceGroupSeed, ThrottleConfig,
};
pub use identity::{Caller, MANAGED_IDENTITY_TENANT_ID, TokenRequest};
pub use kinds::KINDS as ACCOUNT_KINDS;
pub use tls::{TlsConfig, TlsError};

use shared::Shared;

/// A scripted fault for the next `times` requests (default 1, 0 = forever) whose method and
/// path-and-query match. See `docs/emulator.md` for how the fields combine.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// HTTP method to match (case-insensitive); `None` matches any.
    pub method: Option<String>,
    /// Substring of the path and query to match; `None` matches any.
    pub path_contains: Option<String>,
    /// Answer with this status and an ARM error body instead of handling the request.
    pub status: Option<u16>,
    /// Error code of that answer (default derived from the status).
    pub code: Option<String>,
    /// Error message of that answer.
    pub message: Option<String>,
    /// `Retry-After` seconds of that answer.
    pub retry_after: Option<u64>,
    pub times: Option<u32>,
    /// Answer this late (then normally, unless `status` is set).
    pub delay_ms: Option<u64>,
    /// Close the connection without answering.
    pub drop: Option<bool>,
    /// Handle the request (a write takes effect), then close the connection without
    /// answering: the client cannot tell whether it happened.
    pub drop_after_handling: Option<bool>,
    /// The long-running operation the request starts ends `Failed` with this error.
    pub operation_error: Option<ArmErrorBody>,
}

/// The `{code, message}` of an ARM error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmErrorBody {
    pub code: String,
    pub message: String,
}

/// One resource-provider request as the emulator answered it (status 0: connection dropped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub status: u16,
    /// The request body parsed as JSON; `None` when empty or not JSON.
    pub request_body: Option<serde_json::Value>,
    /// Who called, when the bearer token is one the emulator minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Caller>,
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops serving.
pub struct Emulator {
    shared: Arc<Shared>,
    shutdown: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<()>>,
    tls: Option<TlsListener>,
}

/// The additional https listener of an emulator.
struct TlsListener {
    addr: SocketAddr,
    ca_pem: String,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts on `addr`, and with `config.tls` on its listen address too (both listeners
    /// serve the same emulator).
    pub async fn start_on(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = TcpListener::bind(addr).await?;
        let tls = match &config.tls {
            Some(tls) => {
                let acceptor =
                    TlsAcceptor::from(tls.server_config().map_err(std::io::Error::other)?);
                let listener = TcpListener::bind(tls.listen).await?;
                Some((listener, acceptor, tls.ca_pem().to_string()))
            }
            None => None,
        };
        let shared = Arc::new(Shared::new(listener.local_addr()?, config));
        let router = admin::router()
            .merge(identity::router())
            .fallback(shared::resource_provider)
            .with_state(shared.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let tls = match tls {
            Some((listener, acceptor, ca_pem)) => Some(TlsListener {
                addr: listener.local_addr()?,
                ca_pem,
                server: Some(tokio::spawn(server::accept_loop(
                    listener,
                    router.clone(),
                    shutdown_rx.clone(),
                    Some(acceptor),
                ))),
            }),
            None => None,
        };
        let server = tokio::spawn(server::accept_loop(listener, router, shutdown_rx, None));
        Ok(Emulator {
            shared,
            shutdown: Some(shutdown),
            server: Some(server),
            tls,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `https://127.0.0.1:PORT` of the TLS listener, without a trailing slash; `None` without one.
    pub fn tls_base_url(&self) -> Option<String> {
        self.tls.as_ref().map(|tls| format!("https://{}", tls.addr))
    }

    /// The PEM a client trusts to reach the TLS listener (the generated CA, or the certificate
    /// given); `None` without one.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|tls| tls.ca_pem.clone())
    }

    /// Registers a service principal (an application of `tenant`) with a client secret, for the
    /// token endpoint `/{tenant}/oauth2/v2.0/token`. Returns its object id (stable per tenant
    /// and client). An application may have several secrets and federated credentials.
    pub fn add_service_principal(&self, tenant: &str, client: &str, secret: &str) -> String {
        self.shared
            .identities
            .add_service_principal(tenant, client, secret)
    }

    /// Registers a federated credential of a service principal: client assertions whose `iss`
    /// is `issuer` (and `sub` is `subject`, if given) are exchanged for tokens. Returns its
    /// object id.
    pub fn add_federated_identity(
        &self,
        tenant: &str,
        client: &str,
        issuer: &str,
        subject: Option<&str>,
    ) -> String {
        self.shared
            .identities
            .add_federated_identity(tenant, client, issuer, subject)
    }

    /// Registers a managed identity of `/_emulator/msi/token`; the first one registered is the
    /// system-assigned one (asked for without an id). Returns its principal id (derived from
    /// the client id when not given).
    pub fn add_managed_identity(&self, client_id: &str, principal_id: Option<&str>) -> String {
        self.shared
            .identities
            .add_managed_identity(client_id, principal_id)
    }

    /// The `X-IDENTITY-HEADER` the managed-identity endpoint requires (until set: any non-empty one).
    pub fn set_identity_header(&self, secret: &str) {
        self.shared
            .identities
            .set_identity_header(Some(secret.to_string()));
    }

    /// `true`: resource-provider requests must carry a token the emulator minted (unexpired,
    /// for ARM), else 401 `InvalidAuthenticationToken`.
    pub fn require_issued_tokens(&self, required: bool) {
        self.shared.identities.require_issued_tokens(required);
    }

    /// Every request to the token endpoints so far, oldest first (`GET /_emulator/tokens`).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.shared.identities.token_requests()
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn seed_resource_group(&self, subscription_id: &str, name: &str, location: &str) {
        self.shared.seed_resource_group(ResourceGroupSeed {
            subscription_id: subscription_id.to_string(),
            name: name.to_string(),
            location: location.to_string(),
        });
    }

    /// Moves the injectable clock forward (operation durations, soft-delete retention).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// The injectable clock's current time.
    pub fn now(&self) -> jiff::Timestamp {
        self.shared.clock.now()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.shared.faults.add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Every resource-provider request so far, oldest first (the last 100,000).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Live feed of recorded requests (lagging receivers lose the oldest entries).
    pub fn subscribe_requests(&self) -> broadcast::Receiver<RecordedRequest> {
        self.shared.subscribe_requests()
    }

    /// Grants or denies the subscription-scope permission purge needs.
    pub fn set_purge_permission(&self, allowed: bool) {
        self.shared.set_purge_permission(allowed);
    }

    /// `Some(token)`: only that bearer token is accepted; `None`: any well-formed one.
    pub fn require_token(&self, token: Option<String>) {
        self.shared.require_token(token);
    }

    /// The same document as `GET /_emulator/state`.
    pub fn state(&self) -> serde_json::Value {
        self.shared.dump_state()
    }

    /// 429 answers so far (throttled and injected).
    pub fn throttled_count(&self) -> u64 {
        self.shared.throttled_count()
    }

    /// Puts an active, `Succeeded` account straight into state (creating its resource group if
    /// needed). `account` is a body as a client would PUT it.
    ///
    /// # Panics
    /// If the name or body would be refused by a PUT, or the custom subdomain is taken.
    pub fn seed_account(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
        account: serde_json::Value,
    ) {
        if let Err(error) =
            self.shared
                .seed_account(subscription_id, resource_group, name, &account, false)
        {
            panic!("cannot seed account '{name}': {error}");
        }
    }

    /// Puts a soft-deleted account straight into state (for the demo and tests): `account` is an
    /// Account body as a client would PUT it (location, kind, sku, tags, properties); read-only
    /// fields are filled as on create; deletion date = now, scheduled purge = now + 48h.
    ///
    /// # Panics
    /// If the name or body would be refused by a PUT, or the custom subdomain is taken.
    pub fn seed_deleted_account(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
        account: serde_json::Value,
    ) {
        if let Err(error) =
            self.shared
                .seed_account(subscription_id, resource_group, name, &account, true)
        {
            panic!("cannot seed deleted account '{name}': {error}");
        }
    }

    /// Puts a `Succeeded` deployment straight into state under an active account (one no client
    /// created, e.g. an unmanaged one), replacing one of the same name. `deployment` is a body as
    /// a client would PUT it; server defaults are filled as on create. Quota and deprecation are
    /// not checked (the deployment already exists); its capacity counts in the quota from now on.
    ///
    /// # Panics
    /// If the account is not active, the name is invalid, or a PUT would refuse the body's
    /// model, SKU or capacity.
    pub fn seed_deployment(
        &self,
        subscription_id: &str,
        resource_group: &str,
        account: &str,
        name: &str,
        deployment: serde_json::Value,
    ) {
        let target = provider::SeedTarget {
            subscription_id,
            resource_group,
            account,
            name,
        };
        if let Err(error) = self.shared.seed_deployment(&target, &deployment) {
            panic!("cannot seed deployment '{account}/{name}': {error}");
        }
    }

    /// What Azure does to a deployment when a new default version of its model is released:
    /// moves it to `version`, unless its `versionUpgradeOption` is `NoAutoUpgrade`. Returns
    /// whether the version changed. No operation runs; the etag changes.
    ///
    /// # Panics
    /// If there is no such deployment, or `version` is not a non-deprecated version of its
    /// model in the catalogue.
    pub fn auto_upgrade(
        &self,
        subscription_id: &str,
        resource_group: &str,
        account: &str,
        deployment: &str,
        version: &str,
    ) -> bool {
        let target = provider::SeedTarget {
            subscription_id,
            resource_group,
            account,
            name: deployment,
        };
        self.shared
            .auto_upgrade(&target, version)
            .unwrap_or_else(|error| panic!("cannot upgrade '{account}/{deployment}': {error}"))
    }

    /// Sets the quota limit of `model` (e.g. `gpt-4o`) with SKU `sku` (e.g. `GlobalStandard`) in
    /// a subscription and location (names case-insensitive, location normalized).
    ///
    /// # Panics
    /// If the catalogue has no such model with that SKU.
    pub fn set_quota(
        &self,
        subscription_id: &str,
        location: &str,
        model: &str,
        sku: &str,
        limit: u32,
    ) {
        if let Err(error) = self
            .shared
            .set_quota(subscription_id, location, model, sku, limit)
        {
            panic!("cannot set quota: {error}");
        }
    }

    /// The billing meter, the same document as `GET /_emulator/billing`.
    pub fn billing(&self) -> serde_json::Value {
        self.shared.billing()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        self.shutdown.take();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(server) = self.tls.as_mut().and_then(|tls| tls.server.take()) {
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Dropping the sender tells the accept loop and every connection to stop.
        self.shutdown.take();
    }
}
