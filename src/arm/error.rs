//! The ARM client's one error type. Each error knows whether trying again can help, so callers
//! decide without matching on strings.

use std::time::Duration;

use serde::Deserialize;

/// ARM error codes the reconcile engine reacts to by name.
pub mod codes {
    pub const RESOURCE_NOT_FOUND: &str = "ResourceNotFound";
    pub const RESOURCE_GROUP_NOT_FOUND: &str = "ResourceGroupNotFound";
    pub const REQUEST_CONFLICT: &str = "RequestConflict";
    pub const FLAG_MUST_BE_SET_FOR_RESTORE: &str = "FlagMustBeSetForRestore";
    pub const CAN_NOT_RESTORE_NON_EXISTING: &str = "CanNotRestoreANonExistingResource";
    pub const CUSTOM_DOMAIN_IN_USE: &str = "CustomDomainInUse";
    pub const AUTHORIZATION_FAILED: &str = "AuthorizationFailed";
    pub const THROTTLED: &str = "SubscriptionRequestsThrottled";
}

/// An error answered by ARM (or by a long-running operation that ended badly).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status; `None` for an operation that ended `Failed`/`Canceled`.
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    /// `x-ms-request-id` of the response, for support tickets and log correlation.
    pub request_id: Option<String>,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    fn is_retryable(&self) -> bool {
        match self.status {
            Some(429) | Some(408) => true,
            Some(s) if s >= 500 => true,
            _ => self.code == codes::REQUEST_CONFLICT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArmError {
    /// ARM answered with an error document.
    #[error("{}", describe_api(.0))]
    Api(Box<ApiError>),
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("operation {status}: {}: {}", .error.code, .error.message)]
    OperationFailed {
        status: String,
        error: Box<ApiError>,
    },
    /// The request never got an answer: connection refused or dropped, timeout.
    #[error("ARM unreachable: {0}")]
    Transport(String),
    /// A token could not be obtained: the identity was refused or is misconfigured. The
    /// message never contains a token.
    #[error("credential error: {0}")]
    Credential(String),
    /// A token could not be obtained for now: the token endpoint (Entra ID, IMDS) was
    /// unreachable, throttled or failing. Retried with backoff.
    #[error("token endpoint unavailable: {0}")]
    CredentialUnavailable(String),
    /// ARM answered something this client cannot read.
    #[error("unexpected response from ARM: {0}")]
    InvalidResponse(String),
    /// The client was configured or called wrongly (bad endpoint, foreign polling URL).
    #[error("invalid ARM client configuration: {0}")]
    Config(String),
}

fn describe_api(e: &ApiError) -> String {
    let status = e.status.map(|s| s.to_string()).unwrap_or_default();
    let target = e
        .target
        .as_deref()
        .map(|t| format!(" (target {t})"))
        .unwrap_or_default();
    format!("ARM {status} {}: {}{target}", e.code, e.message)
}

impl ArmError {
    /// True when the same request may succeed later: throttling, server errors, conflicts with
    /// an operation in flight, timeouts, connection errors, and failed operations (Azure's own
    /// provisioning failures are often transient, and the planner re-plans from fresh state).
    pub fn is_retryable(&self) -> bool {
        match self {
            ArmError::Api(e) => e.is_retryable(),
            ArmError::OperationFailed { .. }
            | ArmError::Transport(_)
            | ArmError::CredentialUnavailable(_) => true,
            ArmError::Credential(_) | ArmError::InvalidResponse(_) | ArmError::Config(_) => false,
        }
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ArmError::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// The ARM error code, or a stable name for errors that have none.
    pub fn code(&self) -> &str {
        match self {
            ArmError::Api(e) | ArmError::OperationFailed { error: e, .. } => &e.code,
            ArmError::Transport(_) => "ArmUnavailable",
            ArmError::Credential(_) => "CredentialsInvalid",
            ArmError::CredentialUnavailable(_) => "CredentialsUnavailable",
            ArmError::InvalidResponse(_) => "InvalidArmResponse",
            ArmError::Config(_) => "InvalidConfiguration",
        }
    }

    /// The human-readable message without the code.
    pub fn message(&self) -> String {
        match self {
            ArmError::Api(e) | ArmError::OperationFailed { error: e, .. } => e.message.clone(),
            other => other.to_string(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Api(e) => e.status,
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ArmError::Api(e) | ArmError::OperationFailed { error: e, .. } => {
                e.request_id.as_deref()
            }
            _ => None,
        }
    }

    /// The request field ARM's error names (`target`), e.g. `sku.capacity`.
    pub fn target(&self) -> Option<&str> {
        match self {
            ArmError::Api(e) | ArmError::OperationFailed { error: e, .. } => e.target.as_deref(),
            _ => None,
        }
    }

    pub fn is_throttled(&self) -> bool {
        self.status() == Some(429)
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.code().eq_ignore_ascii_case(code)
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<ErrorDocument>,
}

#[derive(Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

/// Builds an [`ApiError`] from an ARM error response; tolerates bodies that are not ARM-shaped.
pub fn api_error_from_response(
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    retry_after: Option<Duration>,
) -> ApiError {
    let document = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error);
    let (code, message, target) = match document {
        Some(d) => (d.code, d.message, d.target),
        None => (None, None, None),
    };
    ApiError {
        status: Some(status),
        code: code.unwrap_or_else(|| default_code(status).to_string()),
        message: message.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {status}")
            } else {
                truncate(text, 300)
            }
        }),
        target,
        request_id,
        retry_after,
    }
}

/// Parses an error object as found inside an operation-status document.
pub fn api_error_from_value(value: &serde_json::Value) -> ApiError {
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
    ApiError {
        status: None,
        code: field("code").unwrap_or_else(|| "OperationFailed".to_string()),
        message: field("message").unwrap_or_else(|| "the operation failed".to_string()),
        target: field("target"),
        request_id: None,
        retry_after: None,
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "AuthenticationFailed",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        429 => codes::THROTTLED,
        500..=599 => "InternalServerError",
        _ => "UnexpectedStatus",
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ArmError {
        ArmError::Api(Box::new(ApiError {
            status: Some(status),
            code: code.into(),
            message: "m".into(),
            target: None,
            request_id: None,
            retry_after: None,
        }))
    }

    #[test]
    fn classification_follows_the_documented_codes() {
        let retryable = [
            (429, codes::THROTTLED),
            (500, "InternalServerError"),
            (503, "ServiceUnavailable"),
            (409, codes::REQUEST_CONFLICT),
        ];
        for (status, code) in retryable {
            assert!(api(status, code).is_retryable(), "{status} {code}");
        }
        let terminal = [
            (400, "InvalidRequestContent"),
            (401, "AuthenticationFailed"),
            (403, codes::AUTHORIZATION_FAILED),
            (409, codes::FLAG_MUST_BE_SET_FOR_RESTORE),
            (409, codes::CUSTOM_DOMAIN_IN_USE),
            (409, codes::CAN_NOT_RESTORE_NON_EXISTING),
            (404, codes::RESOURCE_GROUP_NOT_FOUND),
            (404, codes::RESOURCE_NOT_FOUND),
        ];
        for (status, code) in terminal {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        assert!(ArmError::Transport("reset".into()).is_retryable());
        assert!(!ArmError::Credential("no tenant".into()).is_retryable());
    }

    #[test]
    fn error_documents_are_parsed_and_odd_bodies_tolerated() {
        let body = br#"{"error":{"code":"CustomDomainInUse","message":"taken","target":"customSubDomainName"}}"#;
        let e = api_error_from_response(409, body, Some("rid".into()), None);
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("CustomDomainInUse", "taken")
        );
        assert_eq!(e.target.as_deref(), Some("customSubDomainName"));
        let e = api_error_from_response(502, b"<html>bad gateway</html>", None, None);
        assert_eq!(e.code, "InternalServerError");
        assert!(e.message.contains("bad gateway"));
    }
}
