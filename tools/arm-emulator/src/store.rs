//! In-memory state of the resource provider: resource groups, accounts, soft-deleted accounts,
//! deployments, quotas, billing meters and operations. Lives behind one mutex; every method here
//! runs synchronously under it.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::ArmErrorBody;
use super::ResourceGroupSeed;
use super::billing::{self, Meter};
use super::catalogue;
use super::deployment::{Deployment, DeploymentKey, QuotaKey};
use super::model::{Account, AccountKey, DeletedAccount, ProvisioningState, normalize_location};
use super::operations::{
    Operation, OperationKind, OperationStatus, OperationStyle, Pacing, Rollback,
};
use super::render;
use super::resource_groups::{GroupDeletion, ResourceGroup, group_key};
use super::schema::ApiShape;

/// How long Azure keeps a soft-deleted account before purging it.
pub(crate) const SOFT_DELETE_RETENTION: SignedDuration = SignedDuration::from_hours(48);

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keyed by lowercased (subscription, name).
    pub resource_groups: BTreeMap<(String, String), ResourceGroup>,
    /// Resource-group deletions, by the token of their Location URL.
    pub group_deletions: HashMap<String, GroupDeletion>,
    pub accounts: BTreeMap<AccountKey, Account>,
    pub deleted: BTreeMap<AccountKey, DeletedAccount>,
    /// Deployments of active and of soft-deleted accounts (they stay with the soft-deleted copy
    /// until it is restored or purged), ordered by account then name.
    pub deployments: BTreeMap<DeploymentKey, Deployment>,
    /// Meters of deployments that are gone, so billing keeps what they accrued.
    stopped_meters: Vec<Meter>,
    /// Quota limits set through `set_quota`; others are the catalogue's defaults.
    quota_limits: HashMap<QuotaKey, u32>,
    pub operations: HashMap<String, Operation>,
    /// The operation currently running on an account key (at most one).
    running: HashMap<AccountKey, String>,
    /// Earliest scheduled purge among soft-deleted accounts, so most requests skip the scan.
    next_purge_due: Option<Timestamp>,
    /// When to drop expired operations next (nobody may poll them again), so most requests
    /// skip that scan too.
    next_operation_prune: Option<Timestamp>,
}

/// Everything needed to start an operation.
pub(crate) struct NewOperation {
    pub kind: OperationKind,
    pub subscription_id: String,
    pub location: String,
    pub account: AccountKey,
    pub deployment: Option<String>,
    pub resource_id: String,
    pub planned_error: Option<ArmErrorBody>,
    pub rollback: Option<Rollback>,
}

impl State {
    pub(crate) fn add_resource_group(&mut self, seed: ResourceGroupSeed) {
        let key = group_key(&seed.subscription_id, &seed.name);
        self.resource_groups
            .insert(key, ResourceGroup::seeded(seed));
    }

    /// Whether the group exists and is not being deleted (nothing new may go into one that is).
    pub(crate) fn has_resource_group(&self, subscription: &str, name: &str) -> bool {
        self.resource_groups
            .get(&group_key(subscription, name))
            .is_some_and(|group| group.deleting.is_none())
    }

    /// Brings state up to `now`: completes due operations and purges expired soft-deleted accounts.
    pub(crate) fn settle(&mut self, now: Timestamp, pacing: Pacing) {
        if !self.running.is_empty() {
            let due: Vec<(String, Timestamp)> = self
                .running
                .values()
                .filter_map(|id| {
                    let operation = self.operations.get(id)?;
                    operation
                        .is_due(now, pacing)
                        .then(|| (id.clone(), operation.ended_by(now, pacing)))
                })
                .collect();
            for (id, ended_at) in due {
                self.complete(&id, ended_at);
            }
        }
        if self.next_purge_due.is_some_and(|due| due <= now) {
            let expired: Vec<(AccountKey, Timestamp)> = self
                .deleted
                .iter()
                .filter(|(_, deleted)| deleted.purge_at <= now)
                .map(|(key, deleted)| (key.clone(), deleted.purge_at))
                .collect();
            for (key, purged_at) in expired {
                self.purge(&key, purged_at);
            }
        }
        self.prune_expired_operations(now, pacing);
        self.settle_group_deletions(now, pacing);
    }

    /// Drops ended operations whose URLs have expired, polled or not: at most once per quarter
    /// of the retention on the emulator clock.
    fn prune_expired_operations(&mut self, now: Timestamp, pacing: Pacing) {
        let Some(retention) = pacing.retention else {
            return;
        };
        if self.next_operation_prune.is_some_and(|next| next > now) {
            return;
        }
        self.operations
            .retain(|_, operation| !operation.is_expired(now, pacing));
        let step = SignedDuration::try_from(retention / 4)
            .unwrap_or(SignedDuration::MAX)
            .max(SignedDuration::from_secs(1));
        self.next_operation_prune = now.checked_add(step).ok();
    }

    /// Counts a poll of an operation's status or result URL, completing it if that makes it due.
    /// An operation that ended longer ago than the retention is gone, as Azure's URLs expire.
    /// (One that ran out of time is already completed, with its real end time, by the
    /// [`State::settle`] that precedes every request; so the expiry check comes first.)
    pub(crate) fn poll(&mut self, id: &str, now: Timestamp, pacing: Pacing) -> Option<&Operation> {
        if self.operations.get(id)?.is_expired(now, pacing) {
            self.operations.remove(id);
            return None;
        }
        let operation = self.operations.get_mut(id)?;
        operation.polls = operation.polls.saturating_add(1);
        if operation.is_due(now, pacing) {
            let ended_at = operation.ended_by(now, pacing);
            self.complete(id, ended_at);
        }
        self.operations.get(id)
    }

    pub(crate) fn running_operation(&self, key: &AccountKey) -> Option<&Operation> {
        self.running.get(key).and_then(|id| self.operations.get(id))
    }

    pub(crate) fn start_operation(
        &mut self,
        new: NewOperation,
        style: OperationStyle,
        now: Timestamp,
    ) -> &Operation {
        let id = uuid::Uuid::new_v4().to_string();
        let operation = Operation {
            id: id.clone(),
            kind: new.kind,
            subscription_id: new.subscription_id,
            location: normalize_location(&new.location),
            account: new.account.clone(),
            deployment: new.deployment,
            resource_id: new.resource_id,
            started_at: now,
            ended_at: None,
            polls: 0,
            status: OperationStatus::InProgress,
            planned_error: new.planned_error,
            error: None,
            rollback: new.rollback,
            style,
        };
        self.running.insert(new.account, id.clone());
        self.operations.entry(id).or_insert(operation)
    }

    /// Ends the operation as of `now` (which is when it ended, not when someone looked).
    fn complete(&mut self, id: &str, now: Timestamp) {
        let Some(operation) = self.operations.get_mut(id) else {
            return;
        };
        operation.ended_at = Some(now);
        operation.error = operation.planned_error.take();
        operation.status = match operation.error {
            Some(_) => OperationStatus::Failed,
            None => OperationStatus::Succeeded,
        };
        let (kind, key, succeeded) = (
            operation.kind,
            operation.account.clone(),
            operation.error.is_none(),
        );
        let deployment = operation.deployment.clone();
        let rollback = operation.rollback.take();
        self.running.remove(&key);
        if let Some(name) = deployment {
            let key = DeploymentKey { account: key, name };
            return self.complete_deployment(kind, &key, succeeded, rollback, now);
        }
        match (kind, succeeded) {
            (OperationKind::Delete, true) => self.soft_delete(&key, now),
            (OperationKind::Purge, true) => self.purge(&key, now),
            (OperationKind::Purge, false) => {}
            (OperationKind::Update, false) => self.fail_update(&key, rollback),
            (_, true) => self.set_state(&key, ProvisioningState::Succeeded),
            (_, false) => self.set_state(&key, ProvisioningState::Failed),
        }
    }

    /// Ends a deployment's operation: a delete removes it; a failed update puts the previous
    /// deployment back, marked Failed; otherwise it ends Succeeded or Failed.
    fn complete_deployment(
        &mut self,
        kind: OperationKind,
        key: &DeploymentKey,
        succeeded: bool,
        rollback: Option<Rollback>,
        now: Timestamp,
    ) {
        let state = match (kind, succeeded) {
            (OperationKind::Delete, true) => return self.remove_deployment(key, now),
            (OperationKind::Update, false) => {
                self.roll_back_deployment(key, rollback, now);
                ProvisioningState::Failed
            }
            (_, true) => ProvisioningState::Succeeded,
            (_, false) => ProvisioningState::Failed,
        };
        if let Some(deployment) = self.deployments.get_mut(key) {
            deployment.provisioning_state = state;
        }
    }

    /// Puts the deployment as it was before a failed update back, metering its old capacity
    /// again from `now` (what accrued meanwhile stays accrued).
    fn roll_back_deployment(
        &mut self,
        key: &DeploymentKey,
        rollback: Option<Rollback>,
        now: Timestamp,
    ) {
        let (Some(deployment), Some(Rollback::Deployment(previous))) =
            (self.deployments.get_mut(key), rollback)
        else {
            return;
        };
        deployment.set_spec(previous.spec, now);
    }

    /// Removes a deployment, keeping what its meter accrued until `at`.
    pub(crate) fn remove_deployment(&mut self, key: &DeploymentKey, at: Timestamp) {
        if let Some(mut deployment) = self.deployments.remove(key) {
            deployment.meter.stop(at);
            self.stopped_meters.push(deployment.meter);
        }
    }

    /// Removes a soft-deleted account for good, and with it its deployments (their quota is
    /// released, their meters stop at `at`).
    pub(crate) fn purge(&mut self, key: &AccountKey, at: Timestamp) {
        self.deleted.remove(key);
        self.remove_deployments_of(key, at);
        self.recompute_next_purge();
    }

    pub(crate) fn remove_deployments_of(&mut self, account: &AccountKey, at: Timestamp) {
        let keys: Vec<DeploymentKey> = self.deployments_of(account).map(Deployment::key).collect();
        for key in keys {
            self.remove_deployment(&key, at);
        }
    }

    /// The deployments of an account (active or soft-deleted), by name.
    pub(crate) fn deployments_of<'s>(
        &'s self,
        account: &AccountKey,
    ) -> impl Iterator<Item = &'s Deployment> + use<'s> {
        let start = DeploymentKey {
            account: account.clone(),
            name: String::new(),
        };
        let account = account.clone();
        self.deployments
            .range(start..)
            .take_while(move |(key, _)| key.account == account)
            .map(|(_, deployment)| deployment)
    }

    pub(crate) fn set_quota_limit(&mut self, key: QuotaKey, limit: u32) {
        self.quota_limits.insert(key, limit);
    }

    pub(crate) fn quota_limit(&self, key: &QuotaKey) -> u32 {
        self.quota_limits.get(key).copied().unwrap_or_else(|| {
            catalogue::quota_pairs()
                .find(|(model, sku)| *model == key.model && sku.name == key.sku)
                .map_or(0, |(_, sku)| sku.default_limit)
        })
    }

    /// Capacity held in a quota: every deployment of that model and SKU in the subscription and
    /// location, those of soft-deleted accounts included (Azure holds their quota until purge).
    pub(crate) fn quota_used(&self, key: &QuotaKey) -> u64 {
        self.deployments
            .values()
            .filter(|deployment| deployment.quota_key() == *key)
            .map(|deployment| u64::from(deployment.spec.capacity))
            .sum()
    }

    /// The billing document: every deployment's meter, live ones first, then those of deleted
    /// or purged deployments.
    pub(crate) fn billing(&self, now: Timestamp) -> Value {
        let live = self.deployments.values().map(|deployment| {
            let soft_deleted = self.deleted.contains_key(&deployment.key().account);
            deployment.meter.report(now, soft_deleted)
        });
        let stopped = self
            .stopped_meters
            .iter()
            .map(|meter| meter.report(now, false));
        billing::summary(live.chain(stopped).collect())
    }

    fn set_state(&mut self, key: &AccountKey, state: ProvisioningState) {
        if let Some(account) = self.accounts.get_mut(key) {
            account.provisioning_state = state;
        }
    }

    /// A failed update leaves the account as it was before the update, marked Failed.
    fn fail_update(&mut self, key: &AccountKey, rollback: Option<Rollback>) {
        if let (Some(account), Some(Rollback::Account(previous))) =
            (self.accounts.get_mut(key), rollback)
        {
            let modified_at = account.modified_at;
            *account = *previous;
            account.touch(modified_at);
        }
        self.set_state(key, ProvisioningState::Failed);
    }

    pub(crate) fn soft_delete(&mut self, key: &AccountKey, now: Timestamp) {
        let Some(mut account) = self.accounts.remove(key) else {
            return;
        };
        account.provisioning_state = ProvisioningState::Succeeded;
        self.insert_deleted(DeletedAccount {
            account,
            deleted_at: now,
            purge_at: now + SOFT_DELETE_RETENTION,
        });
    }

    pub(crate) fn insert_deleted(&mut self, deleted: DeletedAccount) {
        self.next_purge_due = Some(match self.next_purge_due {
            Some(due) if due < deleted.purge_at => due,
            _ => deleted.purge_at,
        });
        self.deleted.insert(deleted.account.key(), deleted);
    }

    /// Takes a soft-deleted account out of the deleted set (to restore it).
    pub(crate) fn take_deleted(&mut self, key: &AccountKey) -> Option<DeletedAccount> {
        let deleted = self.deleted.remove(key);
        self.recompute_next_purge();
        deleted
    }

    fn recompute_next_purge(&mut self) {
        self.next_purge_due = self.deleted.values().map(|deleted| deleted.purge_at).min();
    }

    /// The account (active or soft-deleted, any subscription) using `subdomain`, other than `except`.
    pub(crate) fn subdomain_owner(
        &self,
        subdomain: &str,
        except: Option<&AccountKey>,
    ) -> Option<&Account> {
        let uses = |account: &&Account| {
            Some(&account.key()) != except
                && account
                    .spec
                    .custom_subdomain()
                    .is_some_and(|used| used.eq_ignore_ascii_case(subdomain))
        };
        self.accounts
            .values()
            .chain(self.deleted.values().map(|deleted| &deleted.account))
            .find(uses)
    }

    pub(crate) fn accounts_in_subscription(
        &self,
        subscription: &str,
    ) -> impl Iterator<Item = &Account> {
        let subscription = subscription.to_ascii_lowercase();
        self.accounts
            .range(
                AccountKey {
                    subscription: subscription.clone(),
                    resource_group: String::new(),
                    name: String::new(),
                }..,
            )
            .take_while(move |(key, _)| key.subscription == subscription)
            .map(|(_, account)| account)
    }

    pub(crate) fn accounts_in_group(
        &self,
        subscription: &str,
        group: &str,
    ) -> impl Iterator<Item = &Account> {
        let group = group.to_ascii_lowercase();
        self.accounts_in_subscription(subscription)
            .filter(move |account| account.resource_group.eq_ignore_ascii_case(&group))
    }

    pub(crate) fn deleted_in_subscription(
        &self,
        subscription: &str,
    ) -> impl Iterator<Item = &DeletedAccount> {
        let subscription = subscription.to_ascii_lowercase();
        self.deleted
            .iter()
            .filter(move |(key, _)| key.subscription == subscription)
            .map(|(_, deleted)| deleted)
    }

    /// The dump behind `GET /_emulator/state`, in the contract's (2024-10-01) shapes.
    pub(crate) fn dump(&self, base_url: &str) -> Value {
        let shape = ApiShape::V2024_10_01;
        let mut operations: Vec<&Operation> = self.operations.values().collect();
        operations.sort_by_key(|operation| operation.started_at);
        let (held, active): (Vec<&Deployment>, Vec<&Deployment>) = self
            .deployments
            .values()
            .partition(|deployment| self.deleted.contains_key(&deployment.key().account));
        json!({
            "accounts": self.accounts.values().map(|account| render::account(account, shape)).collect::<Vec<_>>(),
            "deletedAccounts": self.deleted.values().map(|deleted| render::deleted_account(deleted, shape)).collect::<Vec<_>>(),
            "deployments": active.into_iter().map(|deployment| render::deployment(deployment, shape)).collect::<Vec<_>>(),
            "deletedAccountDeployments": held.into_iter().map(|deployment| render::deployment(deployment, shape)).collect::<Vec<_>>(),
            "resourceGroups": self.resource_groups.values().map(ResourceGroup::summary).collect::<Vec<_>>(),
            "operations": operations.into_iter().map(|operation| operation.summary(base_url)).collect::<Vec<_>>(),
        })
    }
}
