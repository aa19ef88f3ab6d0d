//! Offline Entra ID: the identities the emulator knows (service principals with secrets or
//! federated credentials, managed identities), the tokens it mints for them, and who called
//! (decoded from such a token on every resource-provider request). The endpoints are
//! [`entra`] (client credentials) and [`msi`] (App Service managed identity); [`token`] mints and
//! reads JWTs. Neither endpoint is a resource-provider request: both are logged apart, in
//! `GET /_emulator/tokens`. Identity times are real time, not the injectable clock: clients
//! cache tokens by real time, and a test that moves the clock 48 hours must not expire them.

mod entra;
mod msi;
mod token;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ArmError;
use super::shared::Shared;
use token::{Claims, Signer, TokenProblem};

/// Tenant of the managed identities (they are registered without one).
pub const MANAGED_IDENTITY_TENANT_ID: &str = "00000000-0000-0000-0000-00000000e11d";

/// Token-endpoint requests kept in the log (oldest dropped first).
const MAX_LOGGED_TOKEN_REQUESTS: usize = 10_000;

/// The audiences Azure Resource Manager accepts in a token (ARM's own list, in its message).
const ARM_AUDIENCES: [&str; 4] = [
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
];

/// Who made a resource-provider request, from the emulator-minted token it carried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// The application (client) id.
    pub client_id: String,
    /// The service principal's or managed identity's object (principal) id.
    pub object_id: String,
    pub tenant_id: String,
    /// `servicePrincipal` or `managedIdentity`.
    pub kind: String,
    /// How the token was obtained: `client_secret`, `client_assertion` or `managed_identity`.
    pub grant: String,
}

/// One request to a token endpoint, as the emulator answered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// `entra` (`/{tenant}/oauth2/v2.0/token`) or `managedIdentity` (`/_emulator/msi/token`).
    pub endpoint: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// The grant of the token issued; `None` when refused.
    pub grant: Option<String>,
    pub status: u16,
    /// The error code (`invalid_client`, ...) of a refusal.
    pub error: Option<String>,
}

/// A service principal: an application registered in a tenant, with its secrets and federated
/// credentials.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Application {
    tenant_id: String,
    client_id: String,
    object_id: String,
    #[serde(skip)]
    secrets: Vec<String>,
    federations: Vec<Federation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Federation {
    issuer: String,
    subject: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ManagedIdentity {
    client_id: String,
    principal_id: String,
}

#[derive(Debug, Default)]
struct Registry {
    applications: Vec<Application>,
    /// The first is the system-assigned identity, used when no identity is asked for.
    managed: Vec<ManagedIdentity>,
    /// `X-IDENTITY-HEADER` the managed-identity endpoint requires; `None`: any non-empty one.
    identity_header: Option<String>,
    require_issued: bool,
}

/// The identity registry, the signing key and the token log of one emulator.
pub(crate) struct Identities {
    registry: RwLock<Registry>,
    signer: Signer,
    log: Mutex<VecDeque<TokenRequest>>,
}

/// Why a resource-provider request's token is refused when only minted tokens are accepted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotIssued,
    Expired { expired_at: i64, now: i64 },
    WrongAudience(String),
}

impl From<Refusal> for ArmError {
    fn from(refusal: Refusal) -> Self {
        let utc = |seconds: i64| {
            jiff::Timestamp::from_second(seconds)
                .map(|time| time.strftime("%m/%d/%Y %H:%M:%S").to_string())
                .unwrap_or_default()
        };
        match refusal {
            Refusal::NotIssued => ArmError::InvalidAuthenticationToken,
            Refusal::Expired { expired_at, now } => ArmError::ExpiredAuthenticationToken {
                expired_at: utc(expired_at),
                now: utc(now),
            },
            Refusal::WrongAudience(audience) => {
                ArmError::InvalidAuthenticationTokenAudience(audience)
            }
        }
    }
}

impl Identities {
    pub(crate) fn new() -> Self {
        Self {
            registry: RwLock::new(Registry::default()),
            signer: Signer::generate(),
            log: Mutex::new(VecDeque::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.registry
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers (or finds) the application and adds a secret; returns its object id.
    pub(crate) fn add_service_principal(&self, tenant: &str, client: &str, secret: &str) -> String {
        let mut registry = self.write();
        let application = registry.application_mut(tenant, client);
        application.secrets.push(secret.to_string());
        application.object_id.clone()
    }

    /// Registers (or finds) the application and adds a federated credential; returns its
    /// object id.
    pub(crate) fn add_federated_identity(
        &self,
        tenant: &str,
        client: &str,
        issuer: &str,
        subject: Option<&str>,
    ) -> String {
        let mut registry = self.write();
        let application = registry.application_mut(tenant, client);
        let federation = Federation {
            issuer: issuer.to_string(),
            subject: subject.map(str::to_string),
        };
        if !application.federations.contains(&federation) {
            application.federations.push(federation);
        }
        application.object_id.clone()
    }

    /// Registers a managed identity (the first is the system-assigned one); returns its
    /// principal id (derived from the client id when not given).
    pub(crate) fn add_managed_identity(
        &self,
        client_id: &str,
        principal_id: Option<&str>,
    ) -> String {
        let principal_id =
            principal_id.map_or_else(|| derived_id("managedIdentity", client_id), str::to_string);
        let mut registry = self.write();
        registry
            .managed
            .retain(|known| !known.client_id.eq_ignore_ascii_case(client_id));
        registry.managed.push(ManagedIdentity {
            client_id: client_id.to_string(),
            principal_id: principal_id.clone(),
        });
        principal_id
    }

    pub(crate) fn set_identity_header(&self, secret: Option<String>) {
        self.write().identity_header = secret;
    }

    pub(crate) fn require_issued_tokens(&self, required: bool) {
        self.write().require_issued = required;
    }

    pub(crate) fn requires_issued_tokens(&self) -> bool {
        self.read().require_issued
    }

    /// The caller a bearer token names, if the emulator minted it (expired or not).
    pub(crate) fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let claims = self.signer.read(bearer(headers)?).ok()?;
        Some(claims.caller())
    }

    /// Whether ARM would take this token: minted here, unexpired, for ARM.
    pub(crate) fn check_arm_token(&self, token: &str) -> Result<(), Refusal> {
        let claims = self.signer.read(token).map_err(|problem| match problem {
            TokenProblem::Malformed | TokenProblem::BadSignature => Refusal::NotIssued,
        })?;
        let now = jiff::Timestamp::now().as_second();
        if claims.exp <= now {
            return Err(Refusal::Expired {
                expired_at: claims.exp,
                now,
            });
        }
        if !ARM_AUDIENCES.contains(&claims.aud.as_str()) {
            return Err(Refusal::WrongAudience(claims.aud));
        }
        Ok(())
    }

    fn mint(&self, claims: &Claims) -> String {
        self.signer.mint(claims)
    }

    fn record(&self, request: TokenRequest) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.len() >= MAX_LOGGED_TOKEN_REQUESTS {
            log.pop_front();
        }
        log.push_back(request);
    }

    pub(crate) fn token_requests(&self) -> Vec<TokenRequest> {
        let log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        log.iter().cloned().collect()
    }

    /// What `GET /_emulator/identities` shows (secrets left out).
    pub(crate) fn dump(&self) -> Value {
        let registry = self.read();
        json!({
            "servicePrincipals": registry.applications,
            "managedIdentities": registry.managed,
            "identityHeaderSet": registry.identity_header.is_some(),
            "requireIssuedTokens": registry.require_issued,
        })
    }
}

impl Registry {
    fn application(&self, tenant: &str, client: &str) -> Option<&Application> {
        self.applications.iter().find(|application| {
            application.tenant_id.eq_ignore_ascii_case(tenant)
                && application.client_id.eq_ignore_ascii_case(client)
        })
    }

    fn knows_tenant(&self, tenant: &str) -> bool {
        self.applications
            .iter()
            .any(|application| application.tenant_id.eq_ignore_ascii_case(tenant))
    }

    fn application_mut(&mut self, tenant: &str, client: &str) -> &mut Application {
        let index = match self.applications.iter().position(|application| {
            application.tenant_id.eq_ignore_ascii_case(tenant)
                && application.client_id.eq_ignore_ascii_case(client)
        }) {
            Some(index) => index,
            None => {
                self.applications.push(Application {
                    tenant_id: tenant.to_string(),
                    client_id: client.to_string(),
                    object_id: derived_id("servicePrincipal", &format!("{tenant}/{client}")),
                    secrets: Vec::new(),
                    federations: Vec::new(),
                });
                self.applications.len() - 1
            }
        };
        &mut self.applications[index]
    }
}

/// A GUID derived from a name, so an identity has the same object id in every run.
fn derived_id(kind: &str, name: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{kind}:{}", name.to_ascii_lowercase()).as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// The token endpoints and the admin routes of identities, on both listeners.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/_emulator/msi/token", get(msi::token))
        .route("/_emulator/identities", post(register).get(list_identities))
        .route("/_emulator/tokens", get(token_log))
}

/// The body of `POST /_emulator/identities`: what to add, each part optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Registration {
    #[serde(default)]
    service_principals: Vec<ServicePrincipalSpec>,
    #[serde(default)]
    federated_identities: Vec<FederatedIdentitySpec>,
    #[serde(default)]
    managed_identities: Vec<ManagedIdentitySpec>,
    identity_header: Option<String>,
    require_issued_tokens: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ServicePrincipalSpec {
    tenant_id: String,
    client_id: String,
    secret: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FederatedIdentitySpec {
    tenant_id: String,
    client_id: String,
    issuer: String,
    subject: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManagedIdentitySpec {
    client_id: String,
    principal_id: Option<String>,
}

async fn register(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let registration: Registration = match serde_json::from_slice(&body) {
        Ok(registration) => registration,
        Err(error) => {
            let body =
                json!({"error": {"code": "InvalidRequestContent", "message": error.to_string()}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let identities = &shared.identities;
    for sp in &registration.service_principals {
        identities.add_service_principal(&sp.tenant_id, &sp.client_id, &sp.secret);
    }
    for federated in &registration.federated_identities {
        identities.add_federated_identity(
            &federated.tenant_id,
            &federated.client_id,
            &federated.issuer,
            federated.subject.as_deref(),
        );
    }
    for managed in &registration.managed_identities {
        identities.add_managed_identity(&managed.client_id, managed.principal_id.as_deref());
    }
    if let Some(secret) = registration.identity_header {
        identities.set_identity_header(Some(secret));
    }
    if let Some(required) = registration.require_issued_tokens {
        identities.require_issued_tokens(required);
    }
    (StatusCode::OK, Json(identities.dump())).into_response()
}

async fn list_identities(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.identities.dump())
}

async fn token_log(State(shared): State<Arc<Shared>>) -> Json<Vec<TokenRequest>> {
    Json(shared.identities.token_requests())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_stable_guids_per_identity() {
        let identities = Identities::new();
        let first = identities.add_service_principal("t", "c", "s1");
        let again = identities.add_federated_identity("T", "C", "https://issuer", None);
        assert_eq!(first, again);
        assert_eq!(
            first,
            Identities::new().add_service_principal("t", "c", "s2")
        );
        assert!(uuid::Uuid::parse_str(&first).is_ok());
        assert_ne!(first, identities.add_service_principal("t", "other", "s"));
        let principal = identities.add_managed_identity("mi", None);
        assert_ne!(principal, first);
        assert_eq!(identities.add_managed_identity("mi", Some("p")), "p");
        assert_eq!(identities.read().managed.len(), 1);
    }

    #[test]
    fn only_minted_unexpired_arm_tokens_pass() {
        let identities = Identities::new();
        let now = jiff::Timestamp::now().as_second();
        let claims = |aud: &str, exp: i64| {
            Claims::service_principal(aud, "t", "c", "o", "client_secret", now - 10, exp)
        };
        let good = identities.mint(&claims("https://management.azure.com/", now + 60));
        assert_eq!(identities.check_arm_token(&good), Ok(()));
        let expired = identities.mint(&claims("https://management.azure.com/", now - 1));
        assert!(matches!(
            identities.check_arm_token(&expired),
            Err(Refusal::Expired { .. })
        ));
        let storage = identities.mint(&claims("https://storage.azure.com/", now + 60));
        assert_eq!(
            identities.check_arm_token(&storage),
            Err(Refusal::WrongAudience("https://storage.azure.com/".into()))
        );
        assert_eq!(
            identities.check_arm_token("test-token"),
            Err(Refusal::NotIssued)
        );
        let foreign = Identities::new().mint(&claims("https://management.azure.com/", now + 60));
        assert_eq!(
            identities.check_arm_token(&foreign),
            Err(Refusal::NotIssued)
        );
    }
}
