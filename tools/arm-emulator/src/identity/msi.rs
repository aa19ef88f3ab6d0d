//! `GET /_emulator/msi/token`: App Service's managed-identity endpoint (api-version 2019-08-01),
//! which azure_identity and MSAL-Go call when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::token::Claims;
use super::{Identities, MANAGED_IDENTITY_TENANT_ID, ManagedIdentity, TokenRequest};
use crate::shared::Shared;

const API_VERSION: &str = "2019-08-01";
const SECRET_HEADER: &str = "x-identity-header";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum MsiError {
    #[error("The X-IDENTITY-HEADER header is missing or does not match the identity header.")]
    Unauthorized,
    #[error("The api-version '{0}' is not supported: use 2019-08-01.")]
    UnsupportedApiVersion(String),
    #[error("The 'resource' query parameter is required.")]
    MissingResource,
    #[error("No managed identity found for the specified {0}.")]
    UnknownIdentity(String),
}

impl MsiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// The identity the query asks for, by the parameter names App Service accepts (and the IMDS
/// aliases azure_identity sends); none: the first registered, the system-assigned one.
enum Wanted<'a> {
    SystemAssigned,
    ClientId(&'a str),
    PrincipalId(&'a str),
    /// Registered identities have no resource ids, so none matches.
    ResourceId,
}

impl<'a> Wanted<'a> {
    fn of(query: &'a HashMap<String, String>) -> Self {
        let get = |names: &[&str]| names.iter().find_map(|name| query.get(*name));
        if let Some(id) = get(&["client_id"]) {
            Self::ClientId(id)
        } else if let Some(id) = get(&["principal_id", "object_id"]) {
            Self::PrincipalId(id)
        } else if get(&["mi_res_id", "msi_res_id"]).is_some() {
            Self::ResourceId
        } else {
            Self::SystemAssigned
        }
    }

    fn find(&self, managed: &[ManagedIdentity]) -> Result<ManagedIdentity, MsiError> {
        let found = match self {
            Self::SystemAssigned => managed.first(),
            Self::ClientId(id) => managed
                .iter()
                .find(|mi| mi.client_id.eq_ignore_ascii_case(id)),
            Self::PrincipalId(id) => managed
                .iter()
                .find(|mi| mi.principal_id.eq_ignore_ascii_case(id)),
            Self::ResourceId => None,
        };
        found.cloned().ok_or_else(|| {
            MsiError::UnknownIdentity(
                match self {
                    Self::SystemAssigned => "system-assigned identity",
                    Self::ClientId(_) => "client_id",
                    Self::PrincipalId(_) => "principal_id",
                    Self::ResourceId => "mi_res_id",
                }
                .to_string(),
            )
        })
    }
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let identities = &shared.identities;
    let now = jiff::Timestamp::now().as_second();
    let outcome = issue(identities, &query, &headers, now);
    identities.record(TokenRequest {
        endpoint: "managedIdentity".to_string(),
        tenant_id: Some(MANAGED_IDENTITY_TENANT_ID.to_string()),
        client_id: match &outcome {
            Ok((identity, _)) => Some(identity.client_id.clone()),
            Err(_) => query.get("client_id").cloned(),
        },
        grant: outcome.is_ok().then(|| "managed_identity".to_string()),
        status: outcome
            .as_ref()
            .map_or_else(|error| error.status(), |_| StatusCode::OK)
            .as_u16(),
        error: outcome.as_ref().err().map(|error| format!("{error:?}")),
    });
    match outcome {
        // expires_on is a string of unix seconds: azure_identity parses only that.
        Ok((identity, claims)) => Json(json!({
            "access_token": identities.mint(&claims),
            "expires_on": claims.exp.to_string(),
            "resource": claims.aud,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }))
        .into_response(),
        Err(error) => {
            let body = json!({
                "statusCode": error.status().as_u16(),
                "message": error.to_string(),
                "correlationId": uuid::Uuid::new_v4().to_string(),
            });
            (error.status(), Json(body)).into_response()
        }
    }
}

fn issue(
    identities: &Identities,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    now: i64,
) -> Result<(ManagedIdentity, Claims), MsiError> {
    let registry = identities.read();
    let sent = headers
        .get(SECRET_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty());
    match (sent, registry.identity_header.as_deref()) {
        (Some(sent), Some(expected)) if sent == expected => {}
        (Some(_), None) => {}
        _ => return Err(MsiError::Unauthorized),
    }
    let api_version = query.get("api-version").map_or("", String::as_str);
    if api_version != API_VERSION {
        return Err(MsiError::UnsupportedApiVersion(api_version.to_string()));
    }
    let resource = query
        .get("resource")
        .filter(|resource| !resource.is_empty())
        .ok_or(MsiError::MissingResource)?;
    let identity = Wanted::of(query).find(&registry.managed)?;
    let claims = Claims::managed_identity(
        resource,
        MANAGED_IDENTITY_TENANT_ID,
        &identity.client_id,
        &identity.principal_id,
        now,
    );
    Ok((identity, claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    fn header(secret: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SECRET_HEADER, secret.parse().unwrap());
        headers
    }

    #[test]
    fn the_identity_is_chosen_by_client_or_principal_id_and_defaults_to_the_first() {
        let identities = Identities::new();
        identities.add_managed_identity("system", Some("p-system"));
        identities.add_managed_identity("user", Some("p-user"));
        identities.set_identity_header(Some("s".into()));
        let base = [
            ("api-version", API_VERSION),
            ("resource", "https://management.azure.com"),
        ];
        let pick = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            issue(&identities, &query(&pairs), &header("s"), 1).map(|(mi, _)| mi.client_id)
        };
        assert_eq!(pick(&[]), Ok("system".into()));
        assert_eq!(pick(&[("client_id", "USER")]), Ok("user".into()));
        assert_eq!(pick(&[("object_id", "p-user")]), Ok("user".into()));
        assert_eq!(pick(&[("principal_id", "p-system")]), Ok("system".into()));
        assert!(matches!(
            pick(&[("client_id", "nobody")]),
            Err(MsiError::UnknownIdentity(_))
        ));
        assert!(matches!(
            pick(&[("mi_res_id", "/subscriptions/x")]),
            Err(MsiError::UnknownIdentity(_))
        ));
    }

    #[test]
    fn the_header_api_version_and_resource_are_required() {
        let identities = Identities::new();
        identities.add_managed_identity("system", None);
        let good = query(&[("api-version", API_VERSION), ("resource", "r")]);
        assert!(
            issue(&identities, &good, &header("any"), 1).is_ok(),
            "no header set: any is taken"
        );
        assert_eq!(
            issue(&identities, &good, &HeaderMap::new(), 1).err(),
            Some(MsiError::Unauthorized)
        );
        identities.set_identity_header(Some("s".into()));
        assert_eq!(
            issue(&identities, &good, &header("wrong"), 1).err(),
            Some(MsiError::Unauthorized)
        );
        let old = query(&[("api-version", "2017-09-01"), ("resource", "r")]);
        assert!(matches!(
            issue(&identities, &old, &header("s"), 1),
            Err(MsiError::UnsupportedApiVersion(_))
        ));
        let bare = query(&[("api-version", API_VERSION)]);
        assert_eq!(
            issue(&identities, &bare, &header("s"), 1).err(),
            Some(MsiError::MissingResource)
        );
    }
}
