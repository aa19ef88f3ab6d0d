//! Long-running operations (the ARM async protocol) and the resumable handle the controller
//! stores in a resource's status.

use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use url::Url;

use super::deployments::DeploymentRef;
use super::error::ArmError;
use super::models::{Account, AccountRef, DeletedAccountRef};

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

    /// Whether this handle is one the operator could have started for the account `target`:
    /// a write of the account itself, the deletion of one of its deployments (a deletion
    /// deletes them first) or the purge of its soft-deleted copy, polled at its own URL or at
    /// an operation URL of its subscription on the ARM endpoint ([`Self::polled_at`]). A handle
    /// read from a status is checked, since whoever may write `/status` could otherwise point
    /// the operator's identity at any resource or path it reaches.
    pub fn acts_on_account(&self, target: &AccountRef, endpoint: &Url) -> bool {
        let id = &self.resource_id;
        let on_target = match self.kind {
            OperationKind::Purge => DeletedAccountRef::parse_id(id).is_some_and(|copy| {
                copy.subscription_id
                    .eq_ignore_ascii_case(&target.subscription_id)
                    && copy
                        .resource_group
                        .eq_ignore_ascii_case(&target.resource_group)
                    && copy.name.eq_ignore_ascii_case(&target.name)
                    && plain_name(&copy.location)
            }),
            OperationKind::Delete if self.on_a_deployment() => DeploymentRef::parse_id(id)
                .is_some_and(|d| same_account(&d.account, target) && plain_name(&d.name)),
            _ => id.eq_ignore_ascii_case(&target.id()),
        };
        on_target && self.polled_at(&target.subscription_id, endpoint)
    }

    /// [`PendingOperation::acts_on_account`] for the deployment `target`: a write of the
    /// deployment itself, polled at its own URL or at an operation URL of its subscription.
    pub fn acts_on_deployment(&self, target: &DeploymentRef, endpoint: &Url) -> bool {
        let kinds = matches!(
            self.kind,
            OperationKind::Create | OperationKind::Update | OperationKind::Delete
        );
        kinds
            && self.resource_id.eq_ignore_ascii_case(&target.id())
            && self.polled_at(&target.account.subscription_id, endpoint)
    }

    /// The URL is on the ARM endpoint and names (after the URL parser has resolved any `..`)
    /// either the resource the handle acts on, or one of its operations: an
    /// `operationStatuses`/`operationResults` entry of a Cognitive Services location of
    /// `subscription`, or under the resource. Nothing else of the subscription is read.
    fn polled_at(&self, subscription: &str, endpoint: &Url) -> bool {
        let Ok(url) = Url::parse(&self.url) else {
            return false;
        };
        if url.origin() != endpoint.origin() {
            return false;
        }
        let path = url.path().to_ascii_lowercase();
        let resource = self.resource_id.to_ascii_lowercase();
        let operation = |rest: &str| match rest.split('/').collect::<Vec<_>>().as_slice() {
            [collection, id] => {
                matches!(*collection, "operationstatuses" | "operationresults") && plain_name(id)
            }
            _ => false,
        };
        let location_scoped = format!(
            "/subscriptions/{}/providers/microsoft.cognitiveservices/locations/",
            subscription.to_ascii_lowercase()
        );
        if path == resource {
            return true;
        }
        if let Some(rest) = path.strip_prefix(&format!("{resource}/")) {
            return operation(rest);
        }
        path.strip_prefix(&location_scoped)
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(location, rest)| plain_name(location) && operation(rest))
    }
}

fn same_account(a: &AccountRef, b: &AccountRef) -> bool {
    a.id().eq_ignore_ascii_case(&b.id())
}

/// A name ARM could have given a deployment or a location: no path tricks (`..`, `%2F`).
fn plain_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "11111111-1111-1111-1111-111111111111";

    fn endpoint() -> Url {
        Url::parse("https://management.azure.com/").unwrap()
    }

    fn handle(url: &str, resource_id: &str) -> PendingOperation {
        PendingOperation {
            kind: OperationKind::Update,
            poll: PollMethod::AzureAsyncOperation,
            url: format!("https://management.azure.com{url}"),
            resource_id: resource_id.to_string(),
            started_at: "2026-12-01T00:00:00Z".into(),
            retry_after_seconds: None,
        }
    }

    #[test]
    fn a_handle_belongs_to_its_account_its_deployments_and_its_copy_only() {
        let ours = AccountRef::new(SUB, "rg", "docs");
        let status = format!(
            "/subscriptions/{SUB}/providers/Microsoft.CognitiveServices/locations/westus/operationStatuses/1?api-version=x"
        );
        let id = ours.id();
        let upper = id.to_ascii_uppercase();
        let deployment = format!("{id}/deployments/chat");
        let copy = DeletedAccountRef {
            subscription_id: SUB.into(),
            location: "eastus".into(),
            resource_group: "rg".into(),
            name: "docs".into(),
        }
        .id();
        for (kind, resource_id) in [
            (OperationKind::Update, &id),
            (OperationKind::Create, &upper),
            (OperationKind::Delete, &deployment),
            (OperationKind::Purge, &copy),
        ] {
            let mut ours_handle = handle(&status, resource_id);
            ours_handle.kind = kind;
            assert!(
                ours_handle.acts_on_account(&ours, &endpoint()),
                "{resource_id}"
            );
        }
        // A deployment or a copy named by an account write: not one the operator starts.
        for resource_id in [&deployment, &copy] {
            assert!(
                !handle(&status, resource_id).acts_on_account(&ours, &endpoint()),
                "{resource_id}"
            );
        }
        let theirs = AccountRef::new(SUB, "rg", "theirs").id();
        let elsewhere = AccountRef::new(SUB, "rg-other", "docs").id();
        let walking = format!("{id}/deployments/..");
        for resource_id in [
            &theirs,
            &format!("{theirs}/deployments/chat"),
            &elsewhere,
            &walking,
        ] {
            assert!(
                !handle(&status, resource_id).acts_on_account(&ours, &endpoint()),
                "{resource_id}"
            );
        }
        let other_subscription =
            "/subscriptions/22222222-2222-2222-2222-222222222222/providers/x/operationStatuses/1";
        let walked_out = format!("/subscriptions/{SUB}/../22222222-2222-2222-2222-222222222222/x");
        for url in [other_subscription, &walked_out, "/providers/x"] {
            assert!(
                !handle(url, &id).acts_on_account(&ours, &endpoint()),
                "{url}"
            );
        }
        let mut off_host = handle(&status, &id);
        off_host.url = format!("https://attacker.example{status}");
        assert!(!off_host.acts_on_account(&ours, &endpoint()));
        // Any other path of the subscription, e.g. another resource group's account as the
        // "operation" URL, is not polled.
        let elsewhere_url = format!("{elsewhere}?api-version=x");
        let own_url = format!("{id}?api-version=x");
        assert!(!handle(&elsewhere_url, &id).acts_on_account(&ours, &endpoint()));
        assert!(handle(&own_url, &id).acts_on_account(&ours, &endpoint()));
    }

    #[test]
    fn a_deployment_handle_belongs_to_that_deployment_only() {
        let chat = DeploymentRef::new(&AccountRef::new(SUB, "rg", "docs"), "chat");
        let url = format!("{}?api-version=x", chat.id());
        assert!(handle(&url, &chat.id()).acts_on_deployment(&chat, &endpoint()));
        let sibling = DeploymentRef::new(&chat.account, "other").id();
        for resource_id in [sibling, chat.account.id()] {
            assert!(!handle(&url, &resource_id).acts_on_deployment(&chat, &endpoint()));
        }
    }
}
