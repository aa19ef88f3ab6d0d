//! The pure planner: desired spec + observed ARM state + soft-deleted copy + policies →
//! ordered actions and the verdict the status reports. No I/O, no clock, no randomness.
//!
//! The decision table it implements is in docs/reconcile.md; each row has a test below.

mod absent;
mod decide;
mod deleting;
pub mod deployment;
mod desired;
pub mod diff;
mod existing;
mod model;
mod observed;
mod ownership;
pub mod status;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{
    AdoptionPolicy, CognitiveServicesAccountSpec, DeletionPolicy, OWNER_TAG, ReconcilePolicy,
    SoftDeletePolicy,
};
use crate::arm::deployments::Deployment;
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::arm::models::{
    Account, AccountProperties, AccountRef, DeletedAccountRef, same_location,
};
pub use diff::FieldDiff;

pub use decide::plan;
pub use desired::desired_account;
pub use existing::is_openai_family;
pub use model::{Action, Plan, PlanInput, SoftDeleted, Verdict};
pub use ownership::{is_foreign, is_managed_by, owner_of};

// The situations share their helpers (ownership, the desired account, the owned-account plan).
use absent::*;
use deleting::*;
use desired::*;
use existing::*;
use observed::*;
use ownership::*;

#[cfg(test)]
mod tests;
