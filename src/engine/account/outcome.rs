//! What one account reconcile did and found, and what `plan` shows.

use crate::api::CognitiveServicesAccountStatus;
use crate::arm::models::{Account, AccountRef};
use crate::engine::common::{Next, Write};
use crate::planner::status::{self};
use crate::planner::{Plan, SoftDeleted};

/// What one reconcile did and found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: CognitiveServicesAccountStatus,
    pub next: Next,
    pub writes: Vec<Write>,
    /// The account as last observed.
    pub account: Option<Account>,
    /// The deletion policy is done: the finalizer can be removed.
    pub deletion_finished: bool,
    /// The account (or its soft-deleted copy) is someone else's (AlreadyManaged,
    /// AlreadyExists): the status shows the verdict only, and no right to its keys follows.
    pub foreign: bool,
    /// DeleteAndPurge finished without purging a copy (none was found at the spec's place, or
    /// it was not this resource's): the Ready message says which.
    pub purge_skipped: bool,
    /// The failure behind a Reconciling/Stalled status, if any.
    pub error: Option<String>,
}

impl Outcome {
    pub fn ready(&self) -> bool {
        condition_is_true(&self.status, status::READY)
    }

    pub fn stalled(&self) -> bool {
        condition_is_true(&self.status, status::STALLED)
    }
}

pub fn condition_is_true(status: &CognitiveServicesAccountStatus, type_: &str) -> bool {
    status::find(&status.conditions, type_).is_some_and(|c| c.status == "True")
}

/// What `plan` shows: the observation and the plan, without writing anything.
#[derive(Clone, Debug)]
pub struct Preview {
    pub target: AccountRef,
    pub account: Option<Account>,
    pub soft_deleted: Option<SoftDeleted>,
    pub plan: Plan,
}
