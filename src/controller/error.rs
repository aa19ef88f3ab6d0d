//! The controller's one error type. Each variant knows whether trying again can help, so the
//! requeue policy never matches on messages.

use crate::arm::ArmError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The resource's credentials Secret is missing or incomplete (named in the message).
    #[error("{0}")]
    CredentialsInvalid(String),
    /// A grant annotation of the resource's namespace that this reconcile needs does not
    /// parse (named in the message): nothing is decided until an admin fixes it.
    #[error("{0}")]
    GrantInvalid(String),
    /// The connection Secret exists and is not owned by this resource.
    #[error("{0}")]
    SecretConflict(String),
    /// The stored object does not deserialize as a CognitiveServicesAccount.
    #[error("{0}")]
    MalformedResource(String),
    /// An ARM call made by the controller itself (keys), not by the engine.
    #[error(transparent)]
    Arm(#[from] ArmError),
    /// Startup: configuration that cannot work (bad flags, no kubeconfig).
    #[error("{0}")]
    Config(String),
    /// The resource's Namespace is not in the operator's cache yet (it was just created): its
    /// grant is unknown, so nothing is done until it is.
    #[error(
        "namespace {0} is not in the operator's Namespace cache yet; its Azure scopes are unknown"
    )]
    NamespaceNotCached(String),
}

impl Error {
    /// Whether the same reconcile may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Kube(e) => kube_error_is_retryable(e),
            Error::Arm(e) => e.is_retryable(),
            Error::NamespaceNotCached(_) => true,
            Error::CredentialsInvalid(_)
            | Error::GrantInvalid(_)
            | Error::SecretConflict(_)
            | Error::MalformedResource(_)
            | Error::Config(_) => false,
        }
    }
}

/// Conflicts (stale resourceVersion), throttling, server errors and lost connections pass; a
/// 4xx such as 403 (missing RBAC) or 422 (invalid object) does not fix itself.
fn kube_error_is_retryable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => {
            matches!(status.code, 409 | 429) || status.code >= 500 || status.code == 0
        }
        kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) => false,
        _ => true,
    }
}

/// True for a 409 Conflict from the Kubernetes API (a stale resourceVersion or a name taken).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

/// True for a 404 from the Kubernetes API.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 404)
}
