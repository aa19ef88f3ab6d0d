//! `POST /{tenant}/oauth2/v2.0/token`: Entra ID's client-credentials grant, with a client secret
//! or a client assertion (a federated token, as workload identity sends). Errors are Entra's
//! JSON, with its AADSTS codes; clients read `error` and `error_description`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::token::{Claims, LIFETIME_SECS, unverified_claims};
use super::{Application, Identities, TokenRequest};
use crate::shared::Shared;

/// The audience a federated token must carry for Entra to exchange it.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The resources of Azure Resource Manager a token may be asked for (with or without `/`).
const ARM_RESOURCES: [&str; 2] = [
    "https://management.azure.com",
    "https://management.core.windows.net",
];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum EntraError {
    #[error("AADSTS900144: The request body must contain the following parameter: '{0}'.")]
    MissingParameter(&'static str),
    #[error("AADSTS70003: The app requested an unsupported grant type '{0}'.")]
    UnsupportedGrantType(String),
    #[error(
        "AADSTS90002: Tenant '{0}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
    )]
    TenantNotFound(String),
    #[error(
        "AADSTS700016: Application with identifier '{client}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
    )]
    UnknownClient { client: String, tenant: String },
    #[error(
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{0}'."
    )]
    InvalidSecret(String),
    #[error(
        "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
    )]
    MissingCredential,
    #[error("AADSTS50027: JWT token is invalid or malformed.")]
    MalformedAssertion,
    #[error(
        "AADSTS700211: No matching federated identity record found for presented assertion issuer '{0}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
    )]
    AssertionIssuer(String),
    #[error(
        "AADSTS700212: No matching federated identity record found for presented assertion audience '{0}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
    )]
    AssertionAudience(String),
    #[error(
        "AADSTS700213: No matching federated identity record found for presented assertion subject '{0}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
    )]
    AssertionSubject(String),
    #[error("AADSTS700024: Client assertion is not within its valid time range.")]
    AssertionExpired,
    #[error(
        "AADSTS1002012: The provided value for scope {0} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
    )]
    InvalidScope(String),
    #[error(
        "AADSTS500011: The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
    )]
    UnknownResource { resource: String, tenant: String },
}

impl EntraError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidSecret(_) | Self::MissingCredential => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The OAuth error code.
    fn error(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) | Self::TenantNotFound(_) | Self::MalformedAssertion => {
                "invalid_request"
            }
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnknownClient { .. } => "unauthorized_client",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnknownResource { .. } => "invalid_resource",
            _ => "invalid_client",
        }
    }

    /// The AADSTS number, which every message starts with.
    fn number(&self) -> u64 {
        let message = self.to_string();
        message
            .trim_start_matches("AADSTS")
            .split(':')
            .next()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0)
    }

    /// Entra's error document; the description ends with the ids and time, as Entra's do.
    fn body(&self) -> Value {
        let (trace, correlation) = (
            uuid::Uuid::new_v4().to_string(),
            uuid::Uuid::new_v4().to_string(),
        );
        let timestamp = jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M:%SZ")
            .to_string();
        json!({
            "error": self.error(),
            "error_description": format!(
                "{self} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
            ),
            "error_codes": [self.number()],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.number()),
        })
    }
}

/// The form fields of the request (the last of a repeated one wins).
struct Form(HashMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, EntraError> {
        self.get(name).ok_or(EntraError::MissingParameter(name))
    }
}

/// A token issued.
struct Issued {
    access_token: String,
    grant: &'static str,
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let identities = &shared.identities;
    let form = Form::parse(&body);
    let now = jiff::Timestamp::now().as_second();
    let outcome = issue(identities, &tenant, &form, now);
    let (status, grant, error) = match &outcome {
        Ok(issued) => (StatusCode::OK, Some(issued.grant.to_string()), None),
        Err(error) => (error.status(), None, Some(error.error().to_string())),
    };
    identities.record(TokenRequest {
        endpoint: "entra".to_string(),
        tenant_id: Some(tenant),
        client_id: form.get("client_id").map(str::to_string),
        grant,
        status: status.as_u16(),
        error,
    });
    match outcome {
        Ok(issued) => Json(json!({
            "token_type": "Bearer",
            "expires_in": LIFETIME_SECS,
            "ext_expires_in": LIFETIME_SECS,
            "access_token": issued.access_token,
        }))
        .into_response(),
        Err(error) => (error.status(), Json(error.body())).into_response(),
    }
}

fn issue(
    identities: &Identities,
    tenant: &str,
    form: &Form,
    now: i64,
) -> Result<Issued, EntraError> {
    let grant_type = form.required("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(EntraError::UnsupportedGrantType(grant_type.to_string()));
    }
    let client = form.required("client_id")?;
    let scope = form.required("scope")?;
    let registry = identities.read();
    if !registry.knows_tenant(tenant) {
        return Err(EntraError::TenantNotFound(tenant.to_string()));
    }
    let application =
        registry
            .application(tenant, client)
            .ok_or_else(|| EntraError::UnknownClient {
                client: client.to_string(),
                tenant: tenant.to_string(),
            })?;
    let grant = authenticate(application, form, now)?;
    let audience = arm_audience(scope, tenant)?;
    let claims = Claims::service_principal(
        &audience,
        &application.tenant_id,
        &application.client_id,
        &application.object_id,
        grant,
        now,
        now + LIFETIME_SECS,
    );
    Ok(Issued {
        access_token: identities.mint(&claims),
        grant,
    })
}

/// The grant the client proved itself with: a secret it was given, or an assertion from an
/// issuer (and subject) it trusts.
fn authenticate(
    application: &Application,
    form: &Form,
    now: i64,
) -> Result<&'static str, EntraError> {
    if let Some(secret) = form.get("client_secret") {
        return match application.secrets.iter().any(|known| known == secret) {
            true => Ok("client_secret"),
            false => Err(EntraError::InvalidSecret(application.client_id.clone())),
        };
    }
    let Some(assertion) = form.get("client_assertion") else {
        return Err(EntraError::MissingCredential);
    };
    if form.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(EntraError::MalformedAssertion);
    }
    check_assertion(application, assertion, now)?;
    Ok("client_assertion")
}

/// The checks of a federated token, but its signature: JWT form, audience, issuer and subject
/// of a federated credential of the application, expiry.
fn check_assertion(application: &Application, jwt: &str, now: i64) -> Result<(), EntraError> {
    let claims = unverified_claims(jwt).ok_or(EntraError::MalformedAssertion)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(audience)) => vec![audience],
        Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let (issuer, subject) = (text("iss"), text("sub"));
    let trusted: Vec<_> = application
        .federations
        .iter()
        .filter(|federation| federation.issuer == issuer)
        .collect();
    if trusted.is_empty() {
        return Err(EntraError::AssertionIssuer(issuer.to_string()));
    }
    if !trusted.iter().any(|federation| {
        federation
            .subject
            .as_deref()
            .is_none_or(|known| known == subject)
    }) {
        return Err(EntraError::AssertionSubject(subject.to_string()));
    }
    if !audiences.contains(&TOKEN_EXCHANGE_AUDIENCE) {
        return Err(EntraError::AssertionAudience(audiences.join(",")));
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp > now => Ok(()),
        Some(_) => Err(EntraError::AssertionExpired),
        None => Err(EntraError::MalformedAssertion),
    }
}

/// The audience of a token for `scope`, which must be `{ARM}/.default`.
fn arm_audience(scope: &str, tenant: &str) -> Result<String, EntraError> {
    let invalid = || EntraError::InvalidScope(scope.to_string());
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let [only] = scopes.as_slice() else {
        return Err(invalid());
    };
    let resource = only.strip_suffix("/.default").ok_or_else(invalid)?;
    let bare = resource.trim_end_matches('/');
    match ARM_RESOURCES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(bare))
    {
        Some(known) => Ok(format!("{known}/")),
        None => Err(EntraError::UnknownResource {
            resource: resource.to_string(),
            tenant: tenant.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::token::unsigned;
    use super::*;

    const NOW: i64 = 1_000_000;

    fn federated() -> Application {
        Application {
            tenant_id: "t".into(),
            client_id: "c".into(),
            object_id: "o".into(),
            secrets: Vec::new(),
            federations: vec![super::super::Federation {
                issuer: "https://issuer".into(),
                subject: Some("system:serviceaccount:ns:sa".into()),
            }],
        }
    }

    fn assertion(changes: Value) -> String {
        let mut claims = json!({
            "aud": ["api://AzureADTokenExchange"],
            "iss": "https://issuer",
            "sub": "system:serviceaccount:ns:sa",
            "exp": NOW + 60,
        });
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        unsigned(&claims)
    }

    #[test]
    fn an_assertion_must_match_a_federated_credential_and_be_current() {
        let app = federated();
        assert_eq!(check_assertion(&app, &assertion(json!({})), NOW), Ok(()));
        let single = assertion(json!({"aud": "api://AzureADTokenExchange"}));
        assert_eq!(check_assertion(&app, &single, NOW), Ok(()));
        let cases = [
            (
                json!({"iss": "https://other"}),
                EntraError::AssertionIssuer("https://other".into()),
            ),
            (
                json!({"sub": "system:serviceaccount:ns:x"}),
                EntraError::AssertionSubject("system:serviceaccount:ns:x".into()),
            ),
            (
                json!({"aud": "https://management.azure.com"}),
                EntraError::AssertionAudience("https://management.azure.com".into()),
            ),
            (json!({"exp": NOW}), EntraError::AssertionExpired),
            (json!({"exp": "soon"}), EntraError::MalformedAssertion),
        ];
        for (changes, expected) in cases {
            assert_eq!(
                check_assertion(&app, &assertion(changes.clone()), NOW),
                Err(expected),
                "{changes}"
            );
        }
        assert_eq!(
            check_assertion(&app, "a.b.c", NOW),
            Err(EntraError::MalformedAssertion)
        );
    }

    #[test]
    fn the_scope_must_be_arm_dot_default() {
        for (scope, audience) in [
            (
                "https://management.azure.com/.default",
                "https://management.azure.com/",
            ),
            (
                "https://management.azure.com//.default",
                "https://management.azure.com/",
            ),
            (
                "https://management.core.windows.net//.default",
                "https://management.core.windows.net/",
            ),
        ] {
            assert_eq!(
                arm_audience(scope, "t"),
                Ok(audience.to_string()),
                "{scope}"
            );
        }
        assert!(matches!(
            arm_audience("https://management.azure.com", "t"),
            Err(EntraError::InvalidScope(_))
        ));
        assert!(matches!(
            arm_audience("a/.default b/.default", "t"),
            Err(EntraError::InvalidScope(_))
        ));
        assert!(matches!(
            arm_audience("https://vault.azure.net/.default", "t"),
            Err(EntraError::UnknownResource { .. })
        ));
    }

    #[test]
    fn errors_carry_their_aadsts_number_and_entra_status() {
        let error = EntraError::InvalidSecret("c".into());
        assert_eq!(error.number(), 7000215);
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        let body = error.body();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"], json!([7000215]));
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS7000215: ")
        );
        assert_eq!(
            EntraError::AssertionExpired.status(),
            StatusCode::BAD_REQUEST
        );
    }
}
