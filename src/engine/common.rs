//! What the account and deployment halves share: the error, when to come back, the writes
//! reported, the owner key, and how old an operation handle may be.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::{CognitiveServicesAccount, FieldError, LastError};
use crate::arm::ArmError;
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::planner::status::Summary;

/// How many observe-plan-act rounds one reconcile may run (synchronous writes and operations
/// that finished since last time let the next round start at once).
pub(super) const MAX_ROUNDS: usize = 4;

/// How soon to look again while the account provisions without an operation handle.
pub(super) const PROVISIONING_POLL: Duration = Duration::from_secs(10);

/// How soon a write waiting for another on the same account looks again, at the latest (the
/// controller also wakes it when the gate frees).
pub(super) const GATE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid spec: {0}")]
    InvalidSpec(FieldError),
    #[error(transparent)]
    Arm(#[from] ArmError),
}

impl EngineError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::InvalidSpec(_) => false,
            EngineError::Arm(e) => e.is_retryable(),
        }
    }
}

/// When the caller should reconcile again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// After this delay (an operation's Retry-After, or provisioning in progress).
    After(Duration),
    /// After a backoff for a failure (at least the server's Retry-After, when it named one).
    Backoff { retry_after: Option<Duration> },
    /// At the resource's resync interval (steady state, or stalled until something changes).
    Resync,
    /// Never: the deletion policy has run to the end, or the resource is paused.
    Done,
}

/// An ARM write that this reconcile started or finished; the controller turns these into events.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub kind: OperationKind,
    /// For patches: the fields written.
    pub fields: Vec<String>,
    pub description: String,
}

/// `{namespace}/{name}`: a resource's key, and the owner tag's value without a cluster id.
pub fn owner_id(resource: &CognitiveServicesAccount) -> String {
    owner_id_of(&resource.metadata)
}

/// `{namespace}/{name}` of any resource.
pub fn owner_id_of(metadata: &kube::api::ObjectMeta) -> String {
    let namespace = metadata.namespace.as_deref().unwrap_or("default");
    let name = metadata.name.as_deref().unwrap_or_default();
    format!("{namespace}/{name}")
}

/// How long a stored operation handle is trusted. No Cognitive Services operation is known to
/// take this long; an older handle is stale (its URL long expired, or the status was restored
/// from a backup), and the account itself says where things stand.
pub const MAX_PENDING_AGE: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);

/// Too old to poll, or with a start time that does not parse (a hand-edited status).
pub(super) fn outlived(operation: &PendingOperation, now: Timestamp) -> bool {
    operation
        .started_at
        .parse::<Timestamp>()
        .map_or(true, |started| {
            now.duration_since(started) > MAX_PENDING_AGE
        })
}

/// The status form of an ARM error.
pub(super) fn last_error(error: &ArmError) -> LastError {
    LastError {
        code: error.code().to_string(),
        message: error.message(),
    }
}

/// A retryable ARM error: Reconciling, with backoff (at least the server's Retry-After).
pub(super) fn retrying(error: &ArmError) -> (Summary, Next) {
    let reason = if error.is_throttled() {
        "Throttled"
    } else {
        error.code()
    };
    (
        Summary::progressing(reason, &error.to_string()),
        Next::Backoff {
            retry_after: error.retry_after(),
        },
    )
}
