//! The executor for deployments: observe the deployment, ask the deployment planner, run the
//! first write through the account's write gate, report the status ([`pass`]).

mod pass;

use pass::DeploymentPass;

use std::time::Duration;

use jiff::Timestamp;

use super::{Engine, Next, Write, outlived, owner_id_of};
use crate::api::{
    CognitiveServicesAccount, CognitiveServicesDeployment, CognitiveServicesDeploymentStatus,
    DeploymentDeletionPolicy, ReconcilePolicy,
};
use crate::arm::ArmClient;
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::error::ArmError;
use crate::arm::lro::{PendingOperation, PollStatus};
use crate::arm::models::AccountRef;
use crate::planner::Verdict;
use crate::planner::deployment::{
    AccountState, DeploymentAction, DeploymentPlan, DeploymentPlanInput, plan_deployment,
    waiting_for,
};
use crate::planner::status::{self, Summary};

/// Observe-plan-act rounds per reconcile.
const MAX_ROUNDS: usize = 4;

/// How soon to look again while a deployment provisions without an operation handle.
const PROVISIONING_POLL: Duration = Duration::from_secs(10);

/// How soon to check again after `InsufficientQuota`: quota frees up when other deployments
/// shrink or go, which this operator cannot see.
pub const QUOTA_RECHECK: Duration = Duration::from_secs(300);

/// How soon a write waiting for another on the same account looks again, at the latest.
const GATE_WAIT: Duration = Duration::from_secs(5);

/// Where the deployment's account is, and whether it is ready for deployments.
#[derive(Clone, Debug)]
pub struct AccountContext {
    /// The Azure account (`None` when neither the account resource nor the status says).
    pub target: Option<AccountRef>,
    pub state: AccountState,
}

/// What one deployment reconcile did and found.
#[derive(Clone, Debug)]
pub struct DeploymentOutcome {
    pub status: CognitiveServicesDeploymentStatus,
    pub next: Next,
    pub writes: Vec<Write>,
    pub deployment: Option<Deployment>,
    pub deletion_finished: bool,
    pub error: Option<String>,
}

impl DeploymentOutcome {
    pub fn ready(&self) -> bool {
        status::find(&self.status.conditions, status::READY).is_some_and(|c| c.status == "True")
    }
}

/// What `plan` shows for a deployment.
#[derive(Clone, Debug)]
pub struct DeploymentPreview {
    pub target: Option<DeploymentRef>,
    pub deployment: Option<Deployment>,
    pub plan: DeploymentPlan,
}

impl Engine {
    /// Where a deployment's account is and whether it is ready, from its
    /// `CognitiveServicesAccount`. Without one there is no grant to check the scope against,
    /// nor credentials: no ARM call at all.
    pub fn account_context(&self, account: Option<&CognitiveServicesAccount>) -> AccountContext {
        let Some(account) = account else {
            return AccountContext {
                target: None,
                state: AccountState::ResourceMissing,
            };
        };
        let target = self.target(account).ok();
        let ready = account.status.as_ref().and_then(|s| {
            status::find(&s.conditions, status::READY).map(|c| (c.clone(), s.observed_generation))
        });
        let state = match ready {
            Some((c, generation))
                if c.status == "True" && generation == account.metadata.generation =>
            {
                AccountState::Ready
            }
            Some((c, _)) if c.status == "True" => {
                AccountState::NotReady("its latest spec is not reconciled yet".into())
            }
            Some((c, _)) => AccountState::NotReady(format!("{}: {}", c.reason, c.message)),
            None => AccountState::NotReady("it has no status yet".into()),
        };
        AccountContext { target, state }
    }

    /// Where the deployment lives in Azure.
    pub fn deployment_target(
        &self,
        deployment: &CognitiveServicesDeployment,
        account: &AccountContext,
    ) -> Option<DeploymentRef> {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let account = account.target.as_ref()?;
        Some(DeploymentRef::new(
            account,
            deployment.spec.azure_name(name),
        ))
    }

    /// Reads ARM and plans, writing nothing.
    pub async fn preview_deployment(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
    ) -> Result<DeploymentPreview, ArmError> {
        let target = self.deployment_target(resource, account);
        let observed = match &target {
            Some(t) if resource.spec.reconcile_policy != ReconcilePolicy::Pause => {
                arm.get_deployment(t).await?
            }
            _ => None,
        };
        let pending = resource
            .status
            .as_ref()
            .and_then(|s| s.pending_operation.as_ref());
        let plan = self.plan_for(
            resource,
            account,
            target.as_ref(),
            observed.as_ref(),
            pending,
            deleting,
        );
        Ok(DeploymentPreview {
            target,
            deployment: observed,
            plan,
        })
    }

    fn plan_for(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        target: Option<&DeploymentRef>,
        observed: Option<&Deployment>,
        pending: Option<&PendingOperation>,
        deleting: bool,
    ) -> DeploymentPlan {
        let placeholder;
        let target = match target {
            Some(t) => t,
            None => {
                placeholder = DeploymentRef::new(&AccountRef::new("", "", ""), "");
                &placeholder
            }
        };
        let managed_before = resource
            .status
            .as_ref()
            .and_then(|s| s.arm_id.as_deref())
            .is_some_and(|id| id.eq_ignore_ascii_case(&target.id()));
        plan_deployment(&DeploymentPlanInput {
            spec: &resource.spec,
            target,
            owner: &self.owner_of_key(&owner_id_of(&resource.metadata)),
            account: &account.state,
            deployment: observed,
            pending,
            deleting,
            managed_before,
        })
    }

    /// One reconcile of a deployment: resume its operation, observe, plan, start the first write.
    pub async fn reconcile_deployment(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
        now: Timestamp,
    ) -> DeploymentOutcome {
        let mut pass = DeploymentPass::new(resource, now);
        let target = match self.before_arm(resource, account, deleting, &mut pass) {
            Ok(target) => target,
            Err(outcome) => return *outcome,
        };
        let gate = Gate {
            engine: self,
            account_id: target.account.id(),
            writer: format!(
                "CognitiveServicesDeployment {}",
                owner_id_of(&resource.metadata)
            ),
        };
        if pass.status.pending_operation.is_none() {
            // Started by a reconcile whose status write this (cached) object predates.
            pass.status.pending_operation = gate.operation();
        }
        let outcome = match self.queue_for_the_gate(resource, &gate, &mut pass) {
            Some(waiting) => waiting,
            None => {
                let job = Job {
                    resource,
                    account,
                    target: &target,
                    deleting,
                };
                self.rounds(arm, &job, &gate, pass).await
            }
        };
        // Whatever happened, an account whose write here is not in flight is free for others.
        if outcome.status.pending_operation.is_none() {
            gate.leave();
        }
        outcome
    }

    /// A deployment that is likely to write (not settled, nothing in flight) takes its place
    /// at the account's gate before reading anything: while another write runs, it waits
    /// without spending ARM reads on an observation it could not act on.
    fn queue_for_the_gate(
        &self,
        resource: &CognitiveServicesDeployment,
        gate: &Gate<'_>,
        pass: &mut DeploymentPass<'_>,
    ) -> Option<DeploymentOutcome> {
        if pass.status.pending_operation.is_some() || is_settled(resource) {
            return None;
        }
        let holder = gate.enter(pass.now).err()?;
        Some(waiting_for_the_gate(pass, &holder))
    }

    /// Observe-plan-act rounds with the gate's bookkeeping.
    async fn rounds(
        &self,
        arm: &ArmClient,
        job: &Job<'_>,
        gate: &Gate<'_>,
        mut pass: DeploymentPass<'_>,
    ) -> DeploymentOutcome {
        let Job {
            resource,
            account,
            target,
            deleting,
        } = *job;
        let mut known: Option<Option<Deployment>> = None;
        for _ in 0..MAX_ROUNDS {
            if let Some(operation) = pass.status.pending_operation.clone() {
                match self
                    .resume_deployment(arm, &mut pass, gate, &operation)
                    .await
                {
                    Ok(Some(confirmed)) => known = Some(Some(confirmed)),
                    Ok(None) => {}
                    Err(outcome) => return *outcome,
                }
            }
            if known.is_none()
                && let Some(settled) =
                    self.settled_by_listing(resource, account, target, deleting, &mut pass)
            {
                return settled;
            }
            let observed = match known.take() {
                Some(observed) => observed,
                None => match arm.get_deployment(target).await {
                    Ok(observed) => observed,
                    Err(error) => return pass.finish_error(&error),
                },
            };
            pass.record_observation(observed.as_ref());
            let plan = self.plan_for(
                resource,
                account,
                Some(target),
                observed.as_ref(),
                None,
                deleting,
            );
            pass.record_plan(&plan, target);
            let Some(action) = plan.actions.first() else {
                return pass.finish_verdict(&plan.verdict);
            };
            if let Err(holder) = gate.enter(pass.now) {
                return waiting_for_the_gate(&mut pass, &holder);
            }
            let executed = execute(arm, target, action).await;
            if executed.is_ok() {
                // The account's list no longer says what is there: its next reconcile lists
                // again rather than serve a resync from it.
                self.listings.forget(&target.account.id());
            }
            match executed {
                Ok(Some(operation)) => {
                    pass.wrote(action, target);
                    gate.started(&operation);
                    let next = Next::After(operation.poll_interval());
                    pass.status.pending_operation = Some(operation);
                    return pass.finish(Summary::from_verdict(&plan.verdict), next);
                }
                Ok(None) => pass.wrote(action, target),
                Err(error) => return pass.finish_error(&error),
            }
        }
        pass.finish(
            Summary::progressing("Reconciling", "more work to do"),
            Next::After(Duration::from_secs(1)),
        )
    }

    /// Where the deployment is, or the answer that needs no ARM call: an invalid spec, Pause,
    /// a deletion that leaves Azure alone or whose account resource is gone, an account that
    /// is not Ready (or missing).
    fn before_arm(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        deleting: bool,
        pass: &mut DeploymentPass<'_>,
    ) -> Result<DeploymentRef, Box<DeploymentOutcome>> {
        let name = resource.metadata.name.as_deref().unwrap_or_default();
        if let Err(e) = resource.spec.validate(name) {
            pass.deletion_finished = deleting;
            let summary = Summary::stalled("InvalidSpec", &e.to_string());
            return Err(Box::new(pass.finish(summary, Next::Resync)));
        }
        if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            pass.deletion_finished = deleting;
            return Err(Box::new(pass.finish_verdict(&Verdict::Paused)));
        }
        if deleting && leaves_deployment_alone(resource) {
            let message = "the deployment is left in Azure (deletionPolicy Orphan or reconcilePolicy Observe)";
            return Err(Box::new(pass.finish_verdict(&Verdict::Deleted {
                message: message.into(),
            })));
        }
        let target = self.deployment_target(resource, account);
        let waiting = resource
            .status
            .as_ref()
            .is_none_or(|s| s.pending_operation.is_none());
        match target {
            // Deleting the account resource deleted its deployments first (or, with Orphan,
            // left them with the account): nothing is left that this may touch.
            None if deleting => Err(Box::new(pass.finish_verdict(&Verdict::Deleted {
                message: format!(
                    "CognitiveServicesAccount {} is gone: its deletion policy took care of its deployments; no ARM call",
                    resource.spec.account_ref.name
                ),
            }))),
            // Nothing to do in ARM until the account is Ready: no call at all.
            None => Err(Box::new(self.verdict_only(resource, account, None, pass))),
            Some(target) if !deleting && waiting && account.state != AccountState::Ready => Err(
                Box::new(self.verdict_only(resource, account, Some(&target), pass)),
            ),
            Some(target) => Ok(target),
        }
    }

    fn verdict_only(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        target: Option<&DeploymentRef>,
        pass: &mut DeploymentPass<'_>,
    ) -> DeploymentOutcome {
        let plan = self.plan_for(resource, account, target, None, None, false);
        pass.finish_verdict(&plan.verdict)
    }

    /// A resync of a settled deployment answered by its account's latest list of deployments
    /// (see [`super::listings`]): the outcome when the list shows nothing to do, else `None`
    /// (read the deployment itself).
    fn settled_by_listing(
        &self,
        resource: &CognitiveServicesDeployment,
        account: &AccountContext,
        target: &DeploymentRef,
        deleting: bool,
        pass: &mut DeploymentPass<'_>,
    ) -> Option<DeploymentOutcome> {
        if deleting || !is_settled(resource) {
            return None;
        }
        let max_age = jiff::SignedDuration::try_from(resource.spec.resync()?).ok()?;
        let listed = self
            .listings
            .lookup(&target.account.id(), &target.name, pass.now, max_age)?;
        let plan = self.plan_for(
            resource,
            account,
            Some(target),
            listed.as_ref(),
            None,
            deleting,
        );
        if !plan.actions.is_empty() || plan.verdict != Verdict::Ready {
            return None;
        }
        pass.record_observation(listed.as_ref());
        pass.record_plan(&plan, target);
        Some(pass.finish_verdict(&plan.verdict))
    }

    /// Polls the operation a previous reconcile started: the deployment it confirmed (when it
    /// succeeded and left one), nothing (observe afresh), or the reconcile's end.
    async fn resume_deployment(
        &self,
        arm: &ArmClient,
        pass: &mut DeploymentPass<'_>,
        gate: &Gate<'_>,
        operation: &PendingOperation,
    ) -> Result<Option<Deployment>, Box<DeploymentOutcome>> {
        if outlived(operation, pass.now) {
            tracing::warn!(kind = ?operation.kind, "pending deployment operation outlived its age limit: reading the deployment instead");
            pass.status.pending_operation = None;
            gate.leave();
            return Ok(None);
        }
        let polled = arm.poll_deployment(operation).await;
        match &polled {
            Ok(PollStatus::Running { .. }) => gate.hold(operation, pass.now),
            Err(_) => {}
            Ok(_) => gate.leave(),
        }
        match polled {
            Ok(PollStatus::Running { retry_after }) => {
                let verdict = waiting_for(operation).verdict;
                Err(Box::new(pass.finish(
                    Summary::from_verdict(&verdict),
                    Next::After(retry_after),
                )))
            }
            Ok(PollStatus::Succeeded(deployment)) => {
                pass.status.pending_operation = None;
                Ok(deployment.map(|d| *d))
            }
            Ok(PollStatus::Unknown) => {
                pass.status.pending_operation = None;
                Ok(None)
            }
            Ok(PollStatus::Failed(error)) => {
                pass.status.pending_operation = None;
                Err(Box::new(pass.finish_error(&error)))
            }
            Err(error) => Err(Box::new(pass.finish_error(&error))),
        }
    }
}

fn waiting_for_the_gate(pass: &mut DeploymentPass<'_>, holder: &str) -> DeploymentOutcome {
    let message =
        format!("another write on the account is in flight ({holder}); this one follows it");
    pass.finish(
        Summary::progressing("WaitingForAccountWrite", &message),
        Next::After(GATE_WAIT),
    )
}

/// Ready for its current generation, with nothing in flight: a resync, not a change.
fn is_settled(resource: &CognitiveServicesDeployment) -> bool {
    resource.status.as_ref().is_some_and(|status| {
        status.pending_operation.is_none()
            && status.observed_generation == resource.metadata.generation
            && status::find(&status.conditions, status::READY).is_some_and(|c| c.status == "True")
    })
}

/// What one deployment reconcile works on.
#[derive(Clone, Copy)]
struct Job<'a> {
    resource: &'a CognitiveServicesDeployment,
    account: &'a AccountContext,
    target: &'a DeploymentRef,
    deleting: bool,
}

/// This reconcile at its account's write gate.
struct Gate<'a> {
    engine: &'a Engine,
    account_id: String,
    writer: String,
}

impl Gate<'_> {
    fn enter(&self, now: Timestamp) -> Result<(), String> {
        self.engine
            .gate
            .try_enter(&self.account_id, &self.writer, now)
    }

    fn hold(&self, operation: &PendingOperation, now: Timestamp) {
        self.engine
            .gate
            .hold(&self.account_id, &self.writer, operation, now)
    }

    fn started(&self, operation: &PendingOperation) {
        self.engine
            .gate
            .started(&self.account_id, &self.writer, operation)
    }

    fn operation(&self) -> Option<PendingOperation> {
        self.engine
            .gate
            .operation_of(&self.account_id, &self.writer)
    }

    fn leave(&self) {
        self.engine.gate.leave(&self.account_id, &self.writer)
    }
}

fn leaves_deployment_alone(resource: &CognitiveServicesDeployment) -> bool {
    resource.spec.deletion_policy == DeploymentDeletionPolicy::Orphan
        || resource.spec.reconcile_policy == ReconcilePolicy::Observe
}

async fn execute(
    arm: &ArmClient,
    target: &DeploymentRef,
    action: &DeploymentAction,
) -> Result<Option<PendingOperation>, ArmError> {
    match action {
        DeploymentAction::Create(body) => {
            arm.put_deployment(target, body, crate::arm::OperationKind::Create)
                .await
        }
        DeploymentAction::Update { body, .. } => {
            arm.put_deployment(target, body, crate::arm::OperationKind::Update)
                .await
        }
        DeploymentAction::Patch { body, .. } => arm.patch_deployment(target, body).await,
        DeploymentAction::Delete => arm.delete_deployment(target).await,
    }
}
