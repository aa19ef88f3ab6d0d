//! A resync at rest, answered from the resource group's list of accounts; and what an
//! observation and its plan leave behind.

use super::observe::{Observation, observe_deployments};
use super::outcome::{Outcome, condition_is_true};
use super::pass::Pass;
use super::subject::{Subject, managed_before, purged_in_this_deletion};
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesAccountStatus, DeletionPolicy, ReconcilePolicy,
};
use crate::arm::ArmClient;
use crate::engine::Engine;
use crate::planner::status::{self};
use crate::planner::{Plan, Verdict};

impl Engine {
    /// A resync of an account at rest, answered from its resource group's list when that shows
    /// nothing to do. `None`: the list lacks the account, shows something to do or failed, or
    /// the resource is not at rest; the reconcile then reads the account itself.
    pub(super) async fn resync_from_listing(
        &self,
        arm: &ArmClient,
        pass: &mut Pass<'_>,
        subject: &Subject<'_>,
    ) -> Option<Outcome> {
        if !at_rest(subject, &pass.status) {
            return None;
        }
        let max_age = listing_freshness(subject.resource);
        let listed = self
            .group_listings
            .take(arm, &subject.target, pass.now, max_age)
            .await;
        let account = match listed {
            Ok(account) => account?,
            Err(error) => {
                tracing::debug!(%error, "listing the resource group failed: reading the account itself");
                return None;
            }
        };
        let observed = observe_deployments(arm, subject, account).await.ok()?;
        let plan = subject.plan(&observed, None);
        let nothing_to_do = plan.actions.is_empty()
            && plan.drift.is_empty()
            && matches!(plan.verdict, Verdict::Ready | Verdict::Observed { .. });
        if !nothing_to_do {
            return None;
        }
        self.record(arm, pass, subject, &observed, &plan);
        Some(pass.finish_verdict(&plan.verdict))
    }

    /// What an observation and its plan leave behind: the status they imply, and the
    /// account's list of deployments (remembered for their resyncs, forgotten with it).
    pub(super) fn record(
        &self,
        arm: &ArmClient,
        pass: &mut Pass<'_>,
        subject: &Subject<'_>,
        observed: &Observation,
        plan: &Plan,
    ) {
        let account_id = subject.target.id();
        if plan.foreign {
            pass.record_verdict_only(observed);
        } else {
            pass.record_observation(observed);
        }
        if observed.listed && !plan.foreign {
            self.listings
                .remember(arm, &account_id, &observed.deployments, pass.now);
        }
        pass.record_plan(plan, &subject.target);
        if matches!(plan.verdict, Verdict::Deleted { .. }) {
            self.listings.forget(&account_id);
            pass.purge_skipped = subject.resource.spec.deletion_policy
                == DeletionPolicy::DeleteAndPurge
                && !plan.foreign
                && !purged_in_this_deletion(subject.resource, &pass.status);
        }
    }
}

/// How old a resource group's list may be to answer a resync: half the resource's resync
/// interval (the default's when periodic checks are off), so that a change made in Azure is
/// seen within one and a half intervals, and each group is listed about twice per interval.
pub(super) fn listing_freshness(resource: &CognitiveServicesAccount) -> jiff::SignedDuration {
    let interval = resource.spec.resync().unwrap_or(crate::api::DEFAULT_RESYNC);
    jiff::SignedDuration::try_from(interval / 2).unwrap_or(jiff::SignedDuration::ZERO)
}

/// Nothing is expected to need doing: the status says the spec of this generation was met,
/// with no operation, copy, error or drift outstanding. Only such a reconcile (a resync) may be
/// answered from a list; every other one reads the account first.
pub(super) fn at_rest(subject: &Subject<'_>, status: &CognitiveServicesAccountStatus) -> bool {
    let resource = subject.resource;
    let ours = managed_before(resource, &subject.target)
        || resource.spec.reconcile_policy == ReconcilePolicy::Observe;
    !subject.deleting
        && ours
        && resource.metadata.generation.is_some()
        && status.observed_generation == resource.metadata.generation
        && status.pending_operation.is_none()
        && status.soft_deleted_copy.is_none()
        && status.last_error.is_none()
        && status.drift.is_empty()
        && condition_is_true(status, status::READY)
        && !asks_something(resource)
}

/// The resource carries one of the operator's own annotations (a key rotation or refresh asked
/// for, or under way): what follows is decided on the account itself, never on a list.
pub(super) fn asks_something(resource: &CognitiveServicesAccount) -> bool {
    resource
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.keys().any(|k| k.starts_with("cognitive-operator.dev/")))
}
