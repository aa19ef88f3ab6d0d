//! The state of one account reconcile as it goes, and the status it ends with.

use jiff::Timestamp;

use super::observe::Observation;
use super::outcome::Outcome;
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesAccountStatus, DeploymentSeen, SoftDeletedCopy,
};
use crate::arm::ArmError;
use crate::arm::deployments::Deployment;
use crate::arm::error::codes;
use crate::arm::lro::{OperationKind, PendingOperation};
use crate::arm::models::{Account, AccountRef};
use crate::engine::common::{Next, PROVISIONING_POLL, Write, last_error, retrying};
use crate::engine::write_turns::Turn;
use crate::planner::status::{self, Summary};
use crate::planner::{self, Action, Plan, Verdict};

/// The state of one reconcile as it goes.
pub(super) struct Pass<'a> {
    pub(super) resource: &'a CognitiveServicesAccount,
    pub(super) now: Timestamp,
    pub(super) status: CognitiveServicesAccountStatus,
    pub(super) writes: Vec<Write>,
    pub(super) account: Option<Account>,
    pub(super) deletion_finished: bool,
    /// This reconcile's turn in the write budget, once asked for.
    pub(super) turn: Option<Turn>,
    /// The last plan stopped because the account is someone else's.
    pub(super) foreign: bool,
    /// The deletion ended under DeleteAndPurge with no purge.
    pub(super) purge_skipped: bool,
}

impl<'a> Pass<'a> {
    pub(super) fn new(resource: &'a CognitiveServicesAccount, now: Timestamp) -> Self {
        Pass {
            resource,
            now,
            status: resource.status.clone().unwrap_or_default(),
            writes: Vec::new(),
            account: None,
            deletion_finished: false,
            turn: None,
            foreign: false,
            purge_skipped: false,
        }
    }

    pub(super) fn operation_succeeded(&mut self, operation: &PendingOperation) {
        self.status.pending_operation = None;
        if matches!(
            operation.kind,
            OperationKind::Restore | OperationKind::Purge
        ) {
            self.copy_gone(operation.kind);
        }
    }

    /// A restore or purge finished: note when, and forget the copy (nothing left to search for).
    pub(super) fn copy_gone(&mut self, kind: OperationKind) {
        let when = Some(self.now.to_string());
        match kind {
            OperationKind::Restore => self.status.last_restore_time = when,
            _ => self.status.last_purge_time = when,
        }
        self.status.soft_deleted_copy = None;
    }

    pub(super) fn record_observation(&mut self, observed: &Observation) {
        let status = &mut self.status;
        match &observed.account {
            Some(account) => {
                status.endpoint = account.endpoint().map(str::to_string);
                status.endpoints = account
                    .properties
                    .as_ref()
                    .and_then(|p| p.endpoints.clone())
                    .map(crate::api::StringMap::from);
                status.provisioning_state = account.provisioning_state().map(str::to_string);
                if observed.listed {
                    status.deployments = observed.deployments.iter().map(deployment_seen).collect();
                    status.deployments.sort_by(|a, b| a.name.cmp(&b.name));
                }
            }
            None => {
                status.endpoint = None;
                status.endpoints = None;
                status.provisioning_state = None;
                status.deployments = Vec::new();
            }
        }
        status.soft_deleted_copy = observed.soft_deleted.as_ref().map(|copy| {
            let properties = copy.account.properties.as_ref();
            Box::new(SoftDeletedCopy {
                location: copy.at.location.clone(),
                resource_group: copy.at.resource_group.clone(),
                deletion_date: properties.and_then(|p| p.deletion_date.clone()),
                scheduled_purge_date: properties.and_then(|p| p.scheduled_purge_date.clone()),
            })
        });
        self.account = observed.account.clone();
    }

    /// A plan that stops on someone else's account leaves the verdict and nothing of it: no
    /// endpoint, state or deployments (with their owners). The account is still kept for the
    /// caller (see [`Outcome::foreign`]). A foreign soft-deleted copy's place and dates stay
    /// (the verdict names them too): they make the next reconcile look for the copy rather than
    /// send a create that ARM refuses because of it.
    pub(super) fn record_verdict_only(&mut self, observed: &Observation) {
        self.record_observation(&Observation {
            account: None,
            soft_deleted: observed.soft_deleted.clone(),
            ..Observation::default()
        });
        self.account = observed.account.clone();
    }

    /// The status names the account only while this resource manages it, so that a foreign
    /// account it merely looked at is never taken for its own later.
    pub(super) fn record_plan(&mut self, plan: &Plan, target: &AccountRef) {
        self.foreign = plan.foreign;
        self.status.drift = status::drift_entries(&plan.drift);
        if plan.claims_account {
            self.status.arm_id = Some(target.id());
        } else if self.account.is_some() {
            self.status.arm_id = None;
        }
    }

    pub(super) fn wrote(&mut self, action: &Action) {
        let fields = match action {
            Action::Patch { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        self.writes.push(Write {
            kind: action.kind(),
            fields,
            description: action.describe(),
        });
    }

    pub(super) fn finish_verdict(&mut self, verdict: &Verdict) -> Outcome {
        let next = match verdict {
            Verdict::Deleted { .. } => {
                self.deletion_finished = true;
                Next::Done
            }
            Verdict::Paused => Next::Done,
            Verdict::Progressing { .. } => Next::After(PROVISIONING_POLL),
            Verdict::Ready | Verdict::Observed { .. } | Verdict::Stalled { .. } => Next::Resync,
        };
        if !matches!(verdict, Verdict::Stalled { .. }) {
            self.status.last_error = None;
        }
        self.finish(Summary::from_verdict(verdict), next)
    }

    pub(super) fn finish_stalled(&mut self, reason: &str, message: &str) -> Outcome {
        self.finish(Summary::stalled(reason, message), Next::Resync)
    }

    pub(super) fn finish_error(
        &mut self,
        error: &ArmError,
        during: Option<OperationKind>,
    ) -> Outcome {
        self.status.last_error = Some(Box::new(last_error(error)));
        let purge_forbidden = during == Some(OperationKind::Purge)
            && (error.has_code(codes::AUTHORIZATION_FAILED) || error.status() == Some(403));
        let (summary, next) = if purge_forbidden {
            let message = format!(
                "purging the soft-deleted copy needs the subscription-scope permission Microsoft.CognitiveServices/locations/resourceGroups/deletedAccounts/delete for the operator's identity; grant it, or choose a policy that does not purge. ARM said: {}",
                error.message()
            );
            (Summary::stalled("PurgeForbidden", &message), Next::Resync)
        } else if error.is_retryable() {
            retrying(error)
        } else {
            (
                Summary::stalled(error.code(), &error.to_string()),
                Next::Resync,
            )
        };
        let mut outcome = self.finish(summary, next);
        outcome.error = Some(error.to_string());
        outcome
    }

    pub(super) fn finish(&mut self, summary: Summary, next: Next) -> Outcome {
        let generation = self.resource.metadata.generation;
        let now = self.now.to_string();
        self.status.conditions =
            status::conditions(&summary, generation, &self.status.conditions, &now);
        self.status.observed_generation = generation;
        Outcome {
            status: std::mem::take(&mut self.status),
            next,
            writes: std::mem::take(&mut self.writes),
            account: self.account.take(),
            deletion_finished: self.deletion_finished,
            foreign: self.foreign,
            purge_skipped: self.purge_skipped,
            error: None,
        }
    }
}

/// A deployment as the account's status lists it.
pub(super) fn deployment_seen(deployment: &Deployment) -> DeploymentSeen {
    let model = deployment.model();
    let sku = deployment.sku.as_ref();
    DeploymentSeen {
        name: deployment.name.clone().unwrap_or_default(),
        model: model.and_then(|m| m.name.clone()),
        version: model.and_then(|m| m.version.clone()),
        sku: sku.map(|s| s.name.clone()),
        capacity: sku.and_then(|s| s.capacity),
        managed_by: planner::deployment::owner_of(deployment).map(str::to_string),
    }
}
