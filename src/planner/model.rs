//! What the planner takes and gives: the observation, the actions, the verdict, the plan.

use super::*;

/// A soft-deleted copy of the account, as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct SoftDeleted {
    pub at: DeletedAccountRef,
    pub account: Account,
}

impl SoftDeleted {
    pub(super) fn owner(&self) -> Option<&str> {
        owner_of(&self.account)
    }

    pub(super) fn deletion_date(&self) -> &str {
        self.account
            .properties
            .as_ref()
            .and_then(|p| p.deletion_date.as_deref())
            .unwrap_or("unknown")
    }

    pub fn scheduled_purge_date(&self) -> &str {
        self.account
            .properties
            .as_ref()
            .and_then(|p| p.scheduled_purge_date.as_deref())
            .unwrap_or("unknown")
    }
}

/// Everything the planner looks at.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    pub spec: &'a CognitiveServicesAccountSpec,
    /// Where the account is meant to be (spec subscription or the default, resource group, name).
    pub target: &'a AccountRef,
    /// This resource's identity as written in the owner tag: `{cluster}/{namespace}/{name}`
    /// (`{namespace}/{name}` where no cluster id is configured).
    pub owner: &'a str,
    /// The active account, if it exists.
    pub account: Option<&'a Account>,
    /// A soft-deleted copy with this name, if one was found.
    pub soft_deleted: Option<&'a SoftDeleted>,
    /// A long-running operation still in flight.
    pub pending: Option<&'a PendingOperation>,
    /// The resource is being deleted: run the deletion policy.
    pub deleting: bool,
    /// The account's deployments as listed in this pass; `None`: not listed in this pass (a
    /// confirmation of an operation, or a reconcile that did not list them). A deletion deletes
    /// them first, so that nothing provisioned bills while the account sits soft-deleted, and is
    /// planned only from such a list, never from an older one.
    pub deployments: Option<&'a [Deployment]>,
    /// The status says this resource managed the account before (`status.armId` is its id):
    /// ownership survives someone dropping the owner tag in the portal.
    pub managed_before: bool,
    /// A purge of this account's soft-deleted copy finished during this deletion: the final
    /// verdict may say it was purged.
    pub purged: bool,
}

/// One ARM write.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// PUT the full desired account (create, or re-provision one that failed).
    Create(Box<Account>),
    /// PUT `{"properties":{"restore":true}}` at the copy's location.
    Restore { location: String },
    /// DELETE the soft-deleted copy at exactly this place.
    Purge(DeletedAccountRef),
    /// PATCH exactly these top-level units.
    Patch { fields: Vec<String>, body: Value },
    /// DELETE (soft-delete) the account.
    Delete,
    /// DELETE one of the account's deployments (before deleting the account).
    DeleteDeployment(String),
}

impl Action {
    pub fn kind(&self) -> OperationKind {
        match self {
            Action::Create(_) => OperationKind::Create,
            Action::Restore { .. } => OperationKind::Restore,
            Action::Purge(_) => OperationKind::Purge,
            Action::Patch { .. } => OperationKind::Update,
            Action::Delete | Action::DeleteDeployment(_) => OperationKind::Delete,
        }
    }

    /// A short human description, for `plan` output and events.
    pub fn describe(&self) -> String {
        match self {
            Action::Create(_) => "create the account".to_string(),
            Action::Restore { location } => {
                format!("restore the soft-deleted account in {location}")
            }
            Action::Purge(at) => format!(
                "purge the soft-deleted copy in {} (resource group {})",
                at.location, at.resource_group
            ),
            Action::Patch { fields, .. } => format!("patch {}", fields.join(", ")),
            Action::Delete => "delete the account (soft-delete)".to_string(),
            Action::DeleteDeployment(name) => {
                format!("delete deployment {name} (before the account, so it stops billing)")
            }
        }
    }
}

/// What the status says about the plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The account matches the spec.
    Ready,
    /// Work is under way or about to start.
    Progressing {
        reason: &'static str,
        message: String,
    },
    /// Nothing will change until someone changes something.
    Stalled {
        reason: &'static str,
        message: String,
    },
    /// Observe mode: the account differs from the spec or is missing; nothing is written.
    Observed {
        reason: &'static str,
        message: String,
    },
    /// Pause: no ARM calls.
    Paused,
    /// The deletion policy has run to the end: the finalizer can go.
    Deleted { message: String },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Writes in order. Only the first runs before the next observation.
    pub actions: Vec<Action>,
    pub verdict: Verdict,
    /// Differences between spec and account (filled whenever an account was compared).
    pub drift: Vec<FieldDiff>,
    /// This resource manages the observed account (created, restored or adopted it): the
    /// status records its id.
    pub claims_account: bool,
    /// The plan stops because the account (or its soft-deleted copy) is someone else's
    /// (AlreadyManaged, AlreadyExists): the status shows the verdict and nothing of it.
    pub foreign: bool,
}

impl Plan {
    pub(super) fn verdict(verdict: Verdict) -> Self {
        Plan {
            actions: Vec::new(),
            verdict,
            drift: Vec::new(),
            claims_account: false,
            foreign: false,
        }
    }

    pub(super) fn act(actions: Vec<Action>, reason: &'static str, message: String) -> Self {
        Plan {
            actions,
            verdict: Verdict::Progressing { reason, message },
            drift: Vec::new(),
            claims_account: false,
            foreign: false,
        }
    }

    pub(super) fn stalled(reason: &'static str, message: String) -> Self {
        Plan::verdict(Verdict::Stalled { reason, message })
    }

    /// Stalled on an account (or copy) that is someone else's: nothing of it is shown.
    pub(super) fn foreign(reason: &'static str, message: String) -> Self {
        Plan {
            foreign: true,
            ..Plan::stalled(reason, message)
        }
    }

    /// This plan is for an account this resource manages: the status keeps naming it.
    pub(super) fn claimed(self) -> Self {
        Plan {
            claims_account: true,
            ..self
        }
    }

    /// Whether the plan purges anything.
    pub fn purges(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Purge(_)))
    }

    pub fn writes(&self) -> bool {
        !self.actions.is_empty()
    }
}
