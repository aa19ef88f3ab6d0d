//! The executor: observes ARM, asks the planner, runs the first action in non-blocking mode and
//! says what the status is and when to come back. Used by the controller and by `plan`/`apply`.

use std::time::Duration;

use jiff::Timestamp;

use crate::api::{
    CognitiveServicesAccount, CognitiveServicesAccountStatus, DeploymentSeen, FieldError,
    LastError, ReconcilePolicy, SoftDeletedCopy,
};
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::error::codes;
use crate::arm::lro::{OperationKind, PendingOperation, PollStatus};
use crate::arm::models::{Account, AccountRef, DeletedAccountRef, location_slug, same_location};
use crate::arm::ratelimit::with_booked_token;
use crate::arm::{ArmClient, ArmError};
use crate::planner::status::{self, Summary};
use crate::planner::{self, Action, Plan, PlanInput, SoftDeleted, Verdict};

mod deployment;
mod group_listings;
mod listings;
mod write_gate;
mod write_turns;

use group_listings::GroupListings;
use listings::Listings;
use write_turns::{Turn, WriteTurns};

pub use deployment::{AccountContext, DeploymentOutcome, DeploymentPreview, QUOTA_RECHECK};
pub use write_gate::WriteGate;

/// How many observe-plan-act rounds one reconcile may run (synchronous writes and operations
/// that finished since last time let the next round start at once).
const MAX_ROUNDS: usize = 4;

/// How soon to look again while the account provisions without an operation handle.
const PROVISIONING_POLL: Duration = Duration::from_secs(10);

/// How soon a write waiting for another on the same account looks again, at the latest (the
/// controller also wakes it when the gate frees).
const GATE_WAIT: Duration = Duration::from_secs(5);

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

#[derive(Clone, Debug, Default)]
struct Observation {
    account: Option<Account>,
    soft_deleted: Option<SoftDeleted>,
    /// The account's deployments (for kinds that have them, once it is provisioned).
    deployments: Vec<Deployment>,
    /// `deployments` is a list just made (not merely empty because nothing was listed).
    listed: bool,
}

/// The reconcile engine. A resource's state lives in its status; in memory the engine keeps
/// only what serves several resources at once, and is safe to lose on a restart: the write gate
/// of each account, each account's latest list of deployments and each resource group's latest
/// list of accounts.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    default_subscription: Option<String>,
    /// Names this cluster in the owner tag, so that two clusters on one subscription never
    /// both own `team-a/docs`.
    cluster_id: Option<String>,
    /// One write at a time per account, shared by every clone of this engine.
    gate: WriteGate,
    /// Each account's latest list of deployments, which serves its deployments' resyncs.
    listings: Listings,
    /// Each resource group's latest list of accounts, which serves the resyncs of its accounts.
    group_listings: GroupListings,
    /// Write tokens booked by reconciles that came back later rather than wait in line.
    turns: WriteTurns,
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

/// The status says this resource managed the account at `target` (`status.armId`).
fn managed_before(resource: &CognitiveServicesAccount, target: &AccountRef) -> bool {
    let status = resource.status.as_ref();
    status
        .and_then(|s| s.arm_id.as_deref())
        .is_some_and(|id| id.eq_ignore_ascii_case(&target.id()))
}

impl Engine {
    pub fn new(default_subscription: Option<String>) -> Self {
        Engine {
            default_subscription: default_subscription.filter(|s| !s.is_empty()),
            cluster_id: None,
            gate: WriteGate::default(),
            listings: Listings::default(),
            group_listings: GroupListings::default(),
            turns: WriteTurns::default(),
        }
    }

    /// The owner tags this engine writes and recognises name `cluster_id`.
    pub fn for_cluster(self, cluster_id: Option<String>) -> Self {
        Engine {
            cluster_id: cluster_id.filter(|c| !c.is_empty()),
            ..self
        }
    }

    /// The owner tag's value for `resource`: `{cluster}/{namespace}/{name}`, or
    /// `{namespace}/{name}` without a cluster id (`plan`/`apply` without `--cluster-id`).
    pub fn owner(&self, resource: &CognitiveServicesAccount) -> String {
        self.owner_of_key(&owner_id(resource))
    }

    fn owner_of_key(&self, key: &str) -> String {
        match &self.cluster_id {
            Some(cluster) => format!("{cluster}/{key}"),
            None => key.to_string(),
        }
    }

    /// The gate every write on an account passes (see [`WriteGate`]).
    pub fn write_gate(&self) -> &WriteGate {
        &self.gate
    }

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

    /// Reads ARM and plans, writing nothing.
    pub async fn preview(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        deleting: bool,
    ) -> Result<Preview, EngineError> {
        let target = self.target(resource).map_err(EngineError::InvalidSpec)?;
        let subject = self.subject(resource, target, deleting);
        let observed = if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            Observation::default()
        } else {
            observe(arm, &subject, true).await?
        };
        let pending = resource
            .status
            .as_ref()
            .and_then(|s| s.pending_operation.as_deref());
        let plan = subject.plan(&observed, pending);
        Ok(Preview {
            target: subject.target,
            account: observed.account,
            soft_deleted: observed.soft_deleted,
            plan,
        })
    }

    /// One reconcile: resume a pending operation, observe, plan, start the first write.
    pub async fn reconcile(
        &self,
        arm: &ArmClient,
        resource: &CognitiveServicesAccount,
        deleting: bool,
        now: Timestamp,
    ) -> Outcome {
        let mut pass = Pass::new(resource, now);
        // Boxed: the rounds' state is large, and would otherwise sit in every caller's future.
        let outcome = Box::pin(self.reconcile_rounds(arm, &mut pass, deleting)).await;
        // A turn taken for a write that did not happen (the gate was busy, nothing to write,
        // an error first) goes back to the line.
        if let (Some(Turn::Booked(booking)), Ok(target)) = (pass.turn, self.target(resource)) {
            arm.release_write_booking(&target.subscription_id, booking);
        }
        outcome
    }

    async fn reconcile_rounds(
        &self,
        arm: &ArmClient,
        pass: &mut Pass<'_>,
        deleting: bool,
    ) -> Outcome {
        let resource = pass.resource;
        let target = match self.target(resource) {
            Ok(target) => target,
            Err(e) => {
                // Orphan (or Observe) needs no target to be done: an invalid spec must not hold
                // the finalizer of a resource whose deletion makes no ARM call anyway.
                pass.deletion_finished = deleting && leaves_account_alone(resource);
                return pass.finish_stalled("InvalidSpec", &e.to_string());
            }
        };
        if resource.spec.reconcile_policy == ReconcilePolicy::Pause {
            pass.deletion_finished = deleting;
            return pass.finish(Summary::from_verdict(&Verdict::Paused), Next::Done);
        }
        let mut subject = self.subject(resource, target, deleting);
        subject.deployments_due = self.deployments_due(&subject, pass.now);
        if deleting && leaves_account_alone(resource) {
            // The planner's answer needs no observation: no ARM call at all.
            let plan = subject.plan(&Observation::default(), None);
            return pass.finish_verdict(&plan.verdict);
        }
        // What the next round already knows (the account read back to confirm an operation, or
        // a copy found after a refused create), so that it need not read it again.
        if pass.status.pending_operation.is_none() {
            // Started by a reconcile whose status write this (cached) object predates.
            pass.status.pending_operation = self
                .gate
                .operation_of(&subject.target.id(), &subject.writer)
                .map(Box::new);
        }
        if let Some(outcome) = self.resync_from_listing(arm, pass, &subject).await {
            return outcome;
        }
        // A create waits for its turn before reading anything, so that coming back later
        // costs no second read.
        if likely_to_create(&subject, &pass.status)
            && let Some(outcome) = wait_for_turn(arm, pass, &subject)
        {
            return outcome;
        }
        let mut known: Option<Observation> = None;
        let mut searched_elsewhere = false;
        for _ in 0..MAX_ROUNDS {
            if let Some(operation) = pass.status.pending_operation.clone() {
                if outlived(&operation, pass.now) {
                    tracing::warn!(kind = ?operation.kind, started_at = %operation.started_at, "pending operation outlived its age limit: reading the account instead");
                    pass.status.pending_operation = None;
                    continue;
                }
                match resume(arm, pass, &subject, &operation).await {
                    Step::Continue(confirmed) => known = confirmed.map(|o| *o),
                    Step::Done(outcome) => return *outcome,
                }
            }
            let observed = match known.take() {
                Some(observed) => observed,
                // A copy the status remembers is searched for at once, not found by a refused write.
                None => match observe(arm, &subject, pass.status.soft_deleted_copy.is_some()).await
                {
                    Ok(observed) => observed,
                    Err(error) => return pass.finish_error(&error, None),
                },
            };
            let plan = subject.plan(&observed, None);
            self.record(pass, &subject, &observed, &plan);
            match act(arm, pass, &subject, &plan, &mut searched_elsewhere).await {
                Step::Continue(learned) => known = learned.map(|o| *o),
                Step::Done(outcome) => return *outcome,
            }
        }
        pass.finish(
            Summary::progressing("Reconciling", "more work to do"),
            Next::After(Duration::from_secs(1)),
        )
    }
}

impl Engine {
    fn subject<'a>(
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
    fn deployments_due(&self, subject: &Subject<'_>, now: Timestamp) -> bool {
        let shown = subject
            .resource
            .status
            .as_ref()
            .is_some_and(|s| !s.deployments.is_empty());
        shown
            || !self
                .listings
                .listed_within(&subject.target.id(), now, DEPLOYMENT_DISCOVERY)
    }
}

impl Engine {
    /// A resync of an account at rest, answered from its resource group's list when that shows
    /// nothing to do. `None`: the list lacks the account, shows something to do or failed, or
    /// the resource is not at rest; the reconcile then reads the account itself.
    async fn resync_from_listing(
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
        self.record(pass, subject, &observed, &plan);
        Some(pass.finish_verdict(&plan.verdict))
    }

    /// What an observation and its plan leave behind: the status they imply, and the
    /// account's list of deployments (remembered for their resyncs, forgotten with it).
    fn record(
        &self,
        pass: &mut Pass<'_>,
        subject: &Subject<'_>,
        observed: &Observation,
        plan: &Plan,
    ) {
        let account_id = subject.target.id();
        pass.record_observation(observed);
        if observed.listed {
            self.listings
                .remember(&account_id, &observed.deployments, pass.now);
        }
        pass.record_plan(plan, &subject.target);
        if matches!(plan.verdict, Verdict::Deleted { .. }) {
            self.listings.forget(&account_id);
        }
    }
}

/// How old a resource group's list may be to answer a resync: half the resource's resync
/// interval (the default's when periodic checks are off), so that a change made in Azure is
/// seen within one and a half intervals, and each group is listed about twice per interval.
fn listing_freshness(resource: &CognitiveServicesAccount) -> jiff::SignedDuration {
    let interval = resource.spec.resync().unwrap_or(crate::api::DEFAULT_RESYNC);
    jiff::SignedDuration::try_from(interval / 2).unwrap_or(jiff::SignedDuration::ZERO)
}

/// Nothing is expected to need doing: the status says the spec of this generation was met,
/// with no operation, copy, error or drift outstanding. Only such a reconcile (a resync) may be
/// answered from a list; every other one reads the account first.
fn at_rest(subject: &Subject<'_>, status: &CognitiveServicesAccountStatus) -> bool {
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
fn asks_something(resource: &CognitiveServicesAccount) -> bool {
    resource
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.keys().any(|k| k.starts_with("cognitive-operator.dev/")))
}

/// The status says nothing of an account in Azure yet: this reconcile will most likely create
/// it (or restore a copy), a write.
fn likely_to_create(subject: &Subject<'_>, status: &CognitiveServicesAccountStatus) -> bool {
    !subject.deleting
        && subject.resource.spec.reconcile_policy == ReconcilePolicy::Manage
        && status.arm_id.is_none()
        && status.pending_operation.is_none()
        // A stalled one (a name owned by another, a refused spec) waits for a change, not a turn.
        && !condition_is_true(status, status::STALLED)
}

/// Takes this reconcile's turn in ARM's write budget; when it is not yet due, the outcome that
/// says so and brings the reconcile back then (see `engine/write_turns.rs`).
fn wait_for_turn(arm: &ArmClient, pass: &mut Pass<'_>, subject: &Subject<'_>) -> Option<Outcome> {
    let subscription = &subject.target.subscription_id;
    match subject.turns.take(arm, subscription, &subject.writer) {
        Turn::Later(wait) => {
            // The same words every time it comes back, so that waiting writes no status.
            let message = format!(
                "many writes to subscription {subscription} wait for ARM's write budget (per principal and subscription); this one has booked its turn"
            );
            let summary = Summary::progressing("WaitingForWriteTurn", &message);
            Some(pass.finish(summary, Next::After(wait)))
        }
        turn => {
            pass.turn = Some(turn);
            None
        }
    }
}

/// How often an account without deployments is listed for new ones made outside the operator.
pub const DEPLOYMENT_DISCOVERY: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// The resource being reconciled, with what every planning call needs.
struct Subject<'a> {
    resource: &'a CognitiveServicesAccount,
    target: AccountRef,
    owner: String,
    deleting: bool,
    gate: &'a WriteGate,
    listings: &'a Listings,
    group_listings: &'a GroupListings,
    turns: &'a WriteTurns,
    /// Who this reconcile is at the account's write gate.
    writer: String,
    /// Whether its deployments are to be listed unless deleting (which always lists them).
    deployments_due: bool,
}

impl<'a> Subject<'a> {
    fn plan(&self, observed: &Observation, pending: Option<&PendingOperation>) -> Plan {
        let managed_before = managed_before(self.resource, &self.target);
        planner::plan(&PlanInput {
            spec: &self.resource.spec,
            target: &self.target,
            owner: &self.owner,
            account: observed.account.as_ref(),
            soft_deleted: observed.soft_deleted.as_ref(),
            pending,
            deleting: self.deleting,
            deployments: &observed.deployments,
            managed_before,
        })
    }
}

/// Where one step of a reconcile leaves it.
enum Step {
    /// On to the next round, which already knows this much.
    Continue(Option<Box<Observation>>),
    /// The reconcile is over.
    Done(Box<Outcome>),
}

impl Step {
    fn done(outcome: Outcome) -> Self {
        Step::Done(Box::new(outcome))
    }
}

/// How long a stored operation handle is trusted. No Cognitive Services operation is known to
/// take this long; an older handle is stale (its URL long expired, or the status was restored
/// from a backup), and the account itself says where things stand.
pub const MAX_PENDING_AGE: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);

/// Too old to poll, or with a start time that does not parse (a hand-edited status).
fn outlived(operation: &PendingOperation, now: Timestamp) -> bool {
    operation
        .started_at
        .parse::<Timestamp>()
        .map_or(true, |started| {
            now.duration_since(started) > MAX_PENDING_AGE
        })
}

/// Polls the operation a previous reconcile started.
async fn resume(
    arm: &ArmClient,
    pass: &mut Pass<'_>,
    subject: &Subject<'_>,
    operation: &PendingOperation,
) -> Step {
    let account_id = subject.target.id();
    let polled = arm.poll(operation).await;
    match &polled {
        Ok(PollStatus::Running { .. }) => {
            subject
                .gate
                .hold(&account_id, &subject.writer, operation, pass.now)
        }
        Err(_) => {}
        Ok(_) => subject.gate.leave(&account_id, &subject.writer),
    }
    match polled {
        Ok(PollStatus::Running { retry_after }) => {
            let plan = subject.plan(&Observation::default(), Some(operation));
            Step::done(pass.finish(
                Summary::from_verdict(&plan.verdict),
                Next::After(retry_after),
            ))
        }
        Ok(PollStatus::Succeeded(account)) => {
            pass.operation_succeeded(operation);
            if operation.kind == OperationKind::Create && !operation.on_a_deployment() {
                // A new account has no deployments: as good as a list, and no read.
                subject
                    .listings
                    .remember(&subject.target.id(), &[], pass.now);
            }
            // Confirming a deletion's step leaves nothing to go on: observe afresh.
            Step::Continue(account.map(|a| {
                Box::new(Observation {
                    account: Some(*a),
                    ..Observation::default()
                })
            }))
        }
        Ok(PollStatus::Unknown) => {
            tracing::warn!(kind = ?operation.kind, "the operation's outcome cannot be read and the account is absent: observing afresh");
            pass.status.pending_operation = None;
            Step::Continue(None)
        }
        Ok(PollStatus::Failed(error)) => {
            pass.status.pending_operation = None;
            Step::done(pass.finish_error(&error, Some(operation.kind)))
        }
        Err(error) => Step::done(pass.finish_error(&error, Some(operation.kind))),
    }
}

/// Starts the plan's first write, if any. A long-running write ends the reconcile (the next one
/// resumes it); a synchronous one lets the next round observe what it did.
async fn act(
    arm: &ArmClient,
    pass: &mut Pass<'_>,
    subject: &Subject<'_>,
    plan: &Plan,
    searched_elsewhere: &mut bool,
) -> Step {
    let Some(action) = plan.actions.first() else {
        return Step::done(pass.finish_verdict(&plan.verdict));
    };
    let account_id = subject.target.id();
    let a_write = matches!(
        action,
        Action::Create(_) | Action::Restore { .. } | Action::Patch { .. }
    );
    if a_write
        && pass.turn.is_none()
        && let Some(outcome) = wait_for_turn(arm, pass, subject)
    {
        return Step::done(outcome);
    }
    if let Err(holder) = subject
        .gate
        .try_enter(&account_id, &subject.writer, pass.now)
    {
        return Step::done(pass.finish(
            Summary::progressing(
                "WaitingForAccountWrite",
                &format!(
                    "another write on the account is in flight ({holder}); this one follows it"
                ),
            ),
            Next::After(GATE_WAIT),
        ));
    }
    // Only the first write uses a booked token; any later one in this reconcile queues.
    let booked = match pass.turn {
        Some(Turn::Booked(booking)) if a_write => {
            pass.turn = Some(Turn::Now);
            Some(booking)
        }
        _ => None,
    };
    let executed = match booked {
        Some(booking) => with_booked_token(booking, execute(arm, &subject.target, action)).await,
        None => execute(arm, &subject.target, action).await,
    };
    subject.group_listings.forget(arm, &subject.target);
    if !matches!(executed, Ok(Some(_))) {
        subject.gate.leave(&account_id, &subject.writer);
    }
    match executed {
        Ok(Some(operation)) => {
            subject
                .gate
                .started(&account_id, &subject.writer, &operation);
            pass.wrote_to(action, &subject.target);
            let next = Next::After(operation.poll_interval());
            pass.status.pending_operation = Some(Box::new(operation));
            Step::done(pass.finish(Summary::from_verdict(&plan.verdict), next))
        }
        Ok(None) => {
            pass.wrote_to(action, &subject.target);
            if matches!(action, Action::Purge(_)) {
                pass.copy_gone(OperationKind::Purge);
            }
            Step::Continue(None)
        }
        Err(error) if !*searched_elsewhere && blocked_by_a_copy(action, &error) => {
            *searched_elsewhere = true;
            match find_copy(arm, subject).await {
                Ok(Some(copy)) => Step::Continue(Some(Box::new(Observation {
                    soft_deleted: Some(copy),
                    ..Observation::default()
                }))),
                Ok(None) => Step::done(pass.finish_error(&error, Some(action.kind()))),
                Err(list_error) => Step::done(pass.finish_error(&list_error, None)),
            }
        }
        Err(error) => Step::done(pass.finish_error(&error, Some(action.kind()))),
    }
}

/// Reads the account and, when it is absent, its soft-deleted copy at the spec's place.
/// `thorough` also searches the whole subscription for a copy elsewhere: a subscription-wide
/// list, so reconciles do it only after a create was refused (see [`blocked_by_a_copy`]).
async fn observe(
    arm: &ArmClient,
    subject: &Subject<'_>,
    thorough: bool,
) -> Result<Observation, ArmError> {
    let target = &subject.target;
    if let Some(account) = arm.get_account(target).await? {
        return observe_deployments(arm, subject, account).await;
    }
    let here = copy_place(subject);
    // A copy is looked for only when the status remembers one (or when deleting, to purge
    // it): otherwise ARM's refusal of the create says there is one (see `blocked_by_a_copy`),
    // which costs less than a read on every create.
    if !thorough && !subject.deleting {
        return Ok(Observation::default());
    }
    let soft_deleted = match arm.get_deleted_account(&here).await? {
        Some(copy) => Some(SoftDeleted {
            at: here,
            account: copy,
        }),
        None if thorough && !subject.deleting => find_copy_elsewhere(arm, subject).await?,
        None => None,
    };
    Ok(Observation {
        account: None,
        soft_deleted,
        ..Observation::default()
    })
}

/// The observation of an existing account: with its deployments when they are due.
async fn observe_deployments(
    arm: &ArmClient,
    subject: &Subject<'_>,
    account: Account,
) -> Result<Observation, ArmError> {
    let listed = lists_deployments(subject, &account);
    let deployments = if listed {
        arm.list_deployments(&subject.target).await?
    } else {
        Vec::new()
    };
    Ok(Observation {
        account: Some(account),
        soft_deleted: None,
        deployments,
        listed,
    })
}

/// Accounts of the kinds that hold model deployments list them once provisioned: to delete
/// them before the account (always), and to show them in the status and serve their resyncs
/// (when due).
fn lists_deployments(subject: &Subject<'_>, account: &Account) -> bool {
    let kind = account
        .kind
        .as_deref()
        .unwrap_or(&subject.resource.spec.kind);
    let has_deployments = ["OpenAI", "AIServices"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kind));
    // Deleting lists them whatever the state: a Failed account's deployments bill too.
    let provisioned = subject.deleting
        || account
            .provisioning_state()
            .is_none_or(|s| s.eq_ignore_ascii_case("Succeeded"));
    has_deployments
        && provisioned
        && (subject.deleting || subject.deployments_due)
        && subject.resource.spec.reconcile_policy != ReconcilePolicy::Pause
}

/// The copy that made ARM refuse a create: at the spec's place (one GET), else elsewhere.
async fn find_copy(
    arm: &ArmClient,
    subject: &Subject<'_>,
) -> Result<Option<SoftDeleted>, ArmError> {
    let here = copy_place(subject);
    match arm.get_deleted_account(&here).await? {
        Some(account) => Ok(Some(SoftDeleted { at: here, account })),
        None => find_copy_elsewhere(arm, subject).await,
    }
}

/// Where the account's soft-deleted copy would be: the spec's location and resource group.
fn copy_place(subject: &Subject<'_>) -> DeletedAccountRef {
    let target = &subject.target;
    DeletedAccountRef {
        subscription_id: target.subscription_id.clone(),
        location: location_slug(&subject.resource.spec.location),
        resource_group: target.resource_group.clone(),
        name: target.name.clone(),
    }
}

/// A copy in another location or resource group, found by listing the subscription's
/// soft-deleted accounts; it still blocks the name or its subdomain.
async fn find_copy_elsewhere(
    arm: &ArmClient,
    subject: &Subject<'_>,
) -> Result<Option<SoftDeleted>, ArmError> {
    let target = &subject.target;
    let copies = arm.list_deleted_accounts(&target.subscription_id).await?;
    Ok(copies
        .into_iter()
        .filter_map(|account| {
            let at = DeletedAccountRef::parse_id(account.id.as_deref()?)?;
            at.name
                .eq_ignore_ascii_case(&target.name)
                .then_some(SoftDeleted { at, account })
        })
        .min_by_key(|copy| {
            // Prefer the copy in our resource group, then our location.
            (
                !copy
                    .at
                    .resource_group
                    .eq_ignore_ascii_case(&target.resource_group),
                !same_location(&copy.at.location, &subject.resource.spec.location),
            )
        }))
}

/// ARM refused a create because a soft-deleted copy holds the name or the subdomain.
fn blocked_by_a_copy(action: &Action, error: &ArmError) -> bool {
    matches!(action, Action::Create(_))
        && (error.has_code(codes::FLAG_MUST_BE_SET_FOR_RESTORE)
            || error.has_code(codes::CUSTOM_DOMAIN_IN_USE))
}

/// Deleting the resource leaves the account in Azure: Orphan, or a read-only Observe resource.
fn leaves_account_alone(resource: &CognitiveServicesAccount) -> bool {
    resource.spec.deletion_policy == crate::api::DeletionPolicy::Orphan
        || resource.spec.reconcile_policy == ReconcilePolicy::Observe
}

async fn execute(
    arm: &ArmClient,
    target: &AccountRef,
    action: &Action,
) -> Result<Option<PendingOperation>, ArmError> {
    match action {
        Action::Create(body) => Ok(arm.create_account(target, body).await?.operation),
        Action::Restore { location } => Ok(arm.restore_account(target, location).await?.operation),
        Action::Patch { body, .. } => Ok(arm.update_account(target, body).await?.operation),
        Action::Delete => arm.delete_account(target).await,
        Action::DeleteDeployment(name) => {
            arm.delete_deployment(&DeploymentRef::new(target, name))
                .await
        }
        Action::Purge(at) => arm.purge_deleted_account(at).await,
    }
}

/// The state of one reconcile as it goes.
struct Pass<'a> {
    resource: &'a CognitiveServicesAccount,
    now: Timestamp,
    status: CognitiveServicesAccountStatus,
    writes: Vec<Write>,
    account: Option<Account>,
    deletion_finished: bool,
    /// This reconcile's turn in the write budget, once asked for.
    turn: Option<Turn>,
}

impl<'a> Pass<'a> {
    fn new(resource: &'a CognitiveServicesAccount, now: Timestamp) -> Self {
        Pass {
            resource,
            now,
            status: resource.status.clone().unwrap_or_default(),
            writes: Vec::new(),
            account: None,
            deletion_finished: false,
            turn: None,
        }
    }

    fn operation_succeeded(&mut self, operation: &PendingOperation) {
        self.status.pending_operation = None;
        if matches!(
            operation.kind,
            OperationKind::Restore | OperationKind::Purge
        ) {
            self.copy_gone(operation.kind);
        }
    }

    /// A restore or purge finished: note when, and forget the copy (nothing left to search for).
    fn copy_gone(&mut self, kind: OperationKind) {
        let when = Some(self.now.to_string());
        match kind {
            OperationKind::Restore => self.status.last_restore_time = when,
            _ => self.status.last_purge_time = when,
        }
        self.status.soft_deleted_copy = None;
    }

    fn record_observation(&mut self, observed: &Observation) {
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

    /// The status names the account only while this resource manages it, so that a foreign
    /// account it merely looked at is never taken for its own later.
    fn record_plan(&mut self, plan: &Plan, target: &AccountRef) {
        self.status.drift = status::drift_entries(&plan.drift);
        if plan.claims_account {
            self.status.arm_id = Some(target.id());
        } else if self.account.is_some() {
            self.status.arm_id = None;
        }
    }

    /// A create or restore that ARM accepted makes the account this resource's; one it refused
    /// (a copy holds the name) does not, or the copy would pass for ours next time.
    fn wrote_to(&mut self, action: &Action, target: &AccountRef) {
        if matches!(action, Action::Create(_) | Action::Restore { .. }) {
            self.status.arm_id = Some(target.id());
        }
        self.wrote(action);
    }

    fn wrote(&mut self, action: &Action) {
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

    fn finish_verdict(&mut self, verdict: &Verdict) -> Outcome {
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

    fn finish_stalled(&mut self, reason: &str, message: &str) -> Outcome {
        self.finish(Summary::stalled(reason, message), Next::Resync)
    }

    fn finish_error(&mut self, error: &ArmError, during: Option<OperationKind>) -> Outcome {
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

    fn finish(&mut self, summary: Summary, next: Next) -> Outcome {
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
            error: None,
        }
    }
}

/// A deployment as the account's status lists it.
fn deployment_seen(deployment: &Deployment) -> DeploymentSeen {
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

/// The status form of an ARM error.
fn last_error(error: &ArmError) -> LastError {
    LastError {
        code: error.code().to_string(),
        message: error.message(),
    }
}

/// A retryable ARM error: Reconciling, with backoff (at least the server's Retry-After).
fn retrying(error: &ArmError) -> (Summary, Next) {
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
