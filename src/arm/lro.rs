//! Long-running operations (the ARM async protocol) and the resumable handle the controller
//! stores in a resource's status.

use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ArmError;
use super::models::Account;

/// What a long-running operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum OperationKind {
    Create,
    Restore,
    Update,
    Delete,
    Purge,
}

impl OperationKind {
    /// Whether success leaves a resource to re-read (and to require `Succeeded` of).
    pub fn leaves_account(self) -> bool {
        matches!(
            self,
            OperationKind::Create | OperationKind::Restore | OperationKind::Update
        )
    }
}

/// How an operation is polled, in ARM's order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PollMethod {
    /// GET the `Azure-AsyncOperation` URL: a status document.
    AzureAsyncOperation,
    /// GET the `Location` URL: 202 while running, 200/204 when done.
    Location,
    /// No operation URL: GET the resource and watch `provisioningState`.
    ProvisioningState,
}

/// A long-running operation in flight: everything needed to resume polling it, even from a
/// fresh process after a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingOperation {
    /// What the operation does: Create, Restore, Update, Delete or Purge.
    pub kind: OperationKind,
    /// How the operation is polled.
    pub poll: PollMethod,
    /// The URL polled (on the ARM endpoint).
    pub url: String,
    /// ARM id of the account (or deployment) the operation acts on.
    pub resource_id: String,
    /// When the operation was started (RFC 3339).
    pub started_at: String,
    /// Seconds ARM asked to wait between polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl PendingOperation {
    /// Whether it acts on one of an account's deployments (an account's deletion deletes
    /// them first), rather than on the account.
    pub fn on_a_deployment(&self) -> bool {
        crate::arm::deployments::DeploymentRef::parse_id(&self.resource_id).is_some()
    }

    /// The wait ARM asked for, or a default when it named none.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.retry_after_seconds.unwrap_or(DEFAULT_POLL_SECONDS))
    }
}

/// Poll interval when ARM sends no `Retry-After`.
pub const DEFAULT_POLL_SECONDS: u64 = 5;

/// Where an operation stands after one poll; `T` is the resource it acts on.
#[derive(Debug)]
pub enum PollStatus<T = Account> {
    Running {
        retry_after: Duration,
    },
    /// Done. For creates, restores and updates: the account as re-read to confirm it (so the
    /// caller need not GET it again).
    Succeeded(Option<Box<T>>),
    Failed(ArmError),
    /// How it went cannot be read: the operation URL no longer answers and the account it
    /// should have left is not there (deleted meanwhile, or the write never took). The caller
    /// drops the handle and observes afresh.
    Unknown,
}

/// A resource with a provisioningState, which an operation's success is confirmed by.
pub trait Provisioned: DeserializeOwned {
    /// The metric label of its GET.
    const GET: &'static str;
    /// What it is, in messages.
    const WHAT: &'static str;
    fn provisioning_state(&self) -> Option<&str>;
}

impl Provisioned for Account {
    const GET: &'static str = "GetAccount";
    const WHAT: &'static str = "account";
    fn provisioning_state(&self) -> Option<&str> {
        Account::provisioning_state(self)
    }
}
