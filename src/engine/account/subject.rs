//! The account resource being reconciled: where its account is, whose it is, and the plan for
//! an observation of it.

use jiff::Timestamp;

use super::observe::Observation;
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesAccountStatus, FieldError, ReconcilePolicy,
};
use crate::arm::ArmClient;
use crate::arm::lro::PendingOperation;
use crate::arm::models::{Account, AccountRef};
use crate::engine::Engine;
use crate::engine::common::owner_id;
use crate::engine::group_listings::GroupListings;
use crate::engine::listings::Listings;
use crate::engine::write_gate::WriteGate;
use crate::engine::write_turns::WriteTurns;
use crate::planner::{self, Plan, PlanInput};

impl Engine {
    /// Whether `resource` manages `account` (at `target`): its owner tag, or its status.
    pub fn manages(
        &self,
        resource: &CognitiveServicesAccount,
        target: &AccountRef,
        account: &Account,
    ) -> bool {
        planner::is_managed_by(
            account,
            &self.owner(resource),
            managed_before(resource, target),
        )
    }

    /// Validates the spec and says where the account lives.
    pub fn target(&self, resource: &CognitiveServicesAccount) -> Result<AccountRef, FieldError> {
        let name = resource.metadata.name.as_deref().unwrap_or_default();
        resource.spec.validate(name)?;
        let subscription = resource
            .spec
            .subscription_id
            .clone()
            .or_else(|| self.default_subscription.clone())
            .ok_or_else(|| FieldError {
                field: "spec.subscriptionId".into(),
                message:
                    "is not set, and the operator has no default subscription (--subscription-id)"
                        .into(),
            })?;
        Ok(AccountRef {
            subscription_id: subscription,
            resource_group: resource.spec.resource_group.clone(),
            name: resource.spec.azure_name(name).to_string(),
        })
    }

    pub(super) fn subject<'a>(
        &'a self,
        resource: &'a CognitiveServicesAccount,
        target: AccountRef,
        deleting: bool,
    ) -> Subject<'a> {
        Subject {
            resource,
            target,
            owner: self.owner(resource),
            deleting,
            gate: &self.gate,
            listings: &self.listings,
            group_listings: &self.group_listings,
            turns: &self.turns,
            writer: format!("CognitiveServicesAccount {}", owner_id(resource)),
            deployments_due: true,
        }
    }

    /// Whether this reconcile lists the account's deployments (see [`lists_deployments`]):
    /// when the status shows some (the list serves their resyncs, one read for all), and
    /// otherwise at most every [`DEPLOYMENT_DISCOVERY`], to find ones made outside.
    pub(super) fn deployments_due(
        &self,
        arm: &ArmClient,
        subject: &Subject<'_>,
        now: Timestamp,
    ) -> bool {
        let shown = subject
            .resource
            .status
            .as_ref()
            .is_some_and(|s| !s.deployments.is_empty());
        shown
            || !self
                .listings
                .listed_within(arm, &subject.target.id(), now, DEPLOYMENT_DISCOVERY)
    }
}

/// The status says this resource managed the account at `target` (`status.armId`).
pub(super) fn managed_before(resource: &CognitiveServicesAccount, target: &AccountRef) -> bool {
    let status = resource.status.as_ref();
    status
        .and_then(|s| s.arm_id.as_deref())
        .is_some_and(|id| id.eq_ignore_ascii_case(&target.id()))
}

/// How often an account without deployments is listed for new ones made outside the operator.
pub const DEPLOYMENT_DISCOVERY: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// The resource being reconciled, with what every planning call needs.
pub(super) struct Subject<'a> {
    pub(super) resource: &'a CognitiveServicesAccount,
    pub(super) target: AccountRef,
    pub(super) owner: String,
    pub(super) deleting: bool,
    pub(super) gate: &'a WriteGate,
    pub(super) listings: &'a Listings,
    pub(super) group_listings: &'a GroupListings,
    pub(super) turns: &'a WriteTurns,
    /// Who this reconcile is at the account's write gate.
    pub(super) writer: String,
    /// Whether its deployments are to be listed unless deleting (which always lists them).
    pub(super) deployments_due: bool,
}

impl<'a> Subject<'a> {
    pub(super) fn plan(&self, observed: &Observation, pending: Option<&PendingOperation>) -> Plan {
        let status = self.resource.status.clone().unwrap_or_default();
        self.plan_in(observed, pending, &status)
    }

    /// The plan for `observed`, in a pass whose status so far is `status`.
    pub(super) fn plan_in(
        &self,
        observed: &Observation,
        pending: Option<&PendingOperation>,
        status: &CognitiveServicesAccountStatus,
    ) -> Plan {
        let managed_before = managed_before(self.resource, &self.target);
        planner::plan(&PlanInput {
            spec: &self.resource.spec,
            target: &self.target,
            owner: &self.owner,
            account: observed.account.as_ref(),
            soft_deleted: observed.soft_deleted.as_ref(),
            pending,
            deleting: self.deleting,
            // A deletion is planned only from a list made in this pass (see `lists_deployments`).
            deployments: observed.listed.then_some(observed.deployments.as_slice()),
            managed_before,
            purged: self.deleting && purged_in_this_deletion(self.resource, status),
        })
    }
}

/// A purge of the account's copy finished since the deletion began: `status.lastPurgeTime` is
/// not older than the deletion timestamp (without one, as in a direct engine call, any purge
/// recorded counts).
pub(super) fn purged_in_this_deletion(
    resource: &CognitiveServicesAccount,
    status: &CognitiveServicesAccountStatus,
) -> bool {
    let Some(purged_at) = status.last_purge_time.as_deref() else {
        return false;
    };
    match &resource.metadata.deletion_timestamp {
        Some(since) => purged_at
            .parse::<Timestamp>()
            .is_ok_and(|purged_at| purged_at >= since.0),
        None => true,
    }
}

/// Deleting the resource leaves the account in Azure: Orphan, or a read-only Observe resource.
pub(super) fn leaves_account_alone(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.deletion_policy == crate::api::DeletionPolicy::Orphan
        || resource.spec.reconcile_policy == ReconcilePolicy::Observe
}
