//! In-memory state of the resource provider: resource groups, accounts, soft-deleted accounts and
//! operations. Lives behind one mutex; every method here runs synchronously under it.

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::ArmErrorBody;
use super::ResourceGroupSeed;
use super::model::{Account, AccountKey, DeletedAccount, ProvisioningState, normalize_location};
use super::operations::{Operation, OperationKind, OperationStatus, Pacing};
use super::render;

/// How long Azure keeps a soft-deleted account before purging it.
pub(crate) const SOFT_DELETE_RETENTION: SignedDuration = SignedDuration::from_hours(48);

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Keyed by lowercased (subscription, name).
    resource_groups: BTreeMap<(String, String), ResourceGroupSeed>,
    pub accounts: BTreeMap<AccountKey, Account>,
    pub deleted: BTreeMap<AccountKey, DeletedAccount>,
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
    pub resource_id: String,
    pub planned_error: Option<ArmErrorBody>,
    pub rollback: Option<Box<Account>>,
}

impl State {
    pub(crate) fn add_resource_group(&mut self, seed: ResourceGroupSeed) {
        let key = (
            seed.subscription_id.to_ascii_lowercase(),
            seed.name.to_ascii_lowercase(),
        );
        self.resource_groups.insert(key, seed);
    }

    pub(crate) fn has_resource_group(&self, subscription: &str, name: &str) -> bool {
        let key = (subscription.to_ascii_lowercase(), name.to_ascii_lowercase());
        self.resource_groups.contains_key(&key)
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
            self.deleted.retain(|_, deleted| deleted.purge_at > now);
            self.recompute_next_purge();
        }
        self.prune_expired_operations(now, pacing);
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

    pub(crate) fn start_operation(&mut self, new: NewOperation, now: Timestamp) -> &Operation {
        let id = uuid::Uuid::new_v4().to_string();
        let operation = Operation {
            id: id.clone(),
            kind: new.kind,
            subscription_id: new.subscription_id,
            location: normalize_location(&new.location),
            account: new.account.clone(),
            resource_id: new.resource_id,
            started_at: now,
            ended_at: None,
            polls: 0,
            status: OperationStatus::InProgress,
            planned_error: new.planned_error,
            error: None,
            rollback: new.rollback,
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
        let rollback = operation.rollback.take();
        self.running.remove(&key);
        match (kind, succeeded) {
            (OperationKind::Delete, true) => self.soft_delete(&key, now),
            (OperationKind::Purge, true) => {
                self.deleted.remove(&key);
                self.recompute_next_purge();
            }
            (OperationKind::Purge, false) => {}
            (OperationKind::Update, false) => self.fail_update(&key, rollback),
            (_, true) => self.set_state(&key, ProvisioningState::Succeeded),
            (_, false) => self.set_state(&key, ProvisioningState::Failed),
        }
    }

    fn set_state(&mut self, key: &AccountKey, state: ProvisioningState) {
        if let Some(account) = self.accounts.get_mut(key) {
            account.provisioning_state = state;
        }
    }

    /// A failed update leaves the account as it was before the update, marked Failed.
    fn fail_update(&mut self, key: &AccountKey, rollback: Option<Box<Account>>) {
        if let (Some(account), Some(previous)) = (self.accounts.get_mut(key), rollback) {
            let modified_at = account.modified_at;
            *account = *previous;
            account.touch(modified_at);
        }
        self.set_state(key, ProvisioningState::Failed);
    }

    fn soft_delete(&mut self, key: &AccountKey, now: Timestamp) {
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

    /// The dump behind `GET /_emulator/state`.
    pub(crate) fn dump(&self, base_url: &str) -> Value {
        let mut operations: Vec<&Operation> = self.operations.values().collect();
        operations.sort_by_key(|operation| operation.started_at);
        json!({
            "accounts": self.accounts.values().map(render::account).collect::<Vec<_>>(),
            "deletedAccounts": self.deleted.values().map(render::deleted_account).collect::<Vec<_>>(),
            "resourceGroups": self.resource_groups.values().collect::<Vec<_>>(),
            "operations": operations.into_iter().map(|operation| operation.summary(base_url)).collect::<Vec<_>>(),
        })
    }
}
