//! The latest list of each resource group's accounts, which answers the resyncs of accounts at
//! rest: one paged list per resource group instead of one GET per account.
//!
//! A listed account is used only to conclude that nothing needs doing. A resync whose listed
//! account differs from its spec (or that the list does not have) reads the account afresh
//! before anything is planned for writing; so does every reconcile not at rest (a spec change,
//! an operation in flight, an error, a drift). See docs/reconcile.md ("How fresh an
//! observation is").
//!
//! Each entry is handed out once: a second reconcile of the same account within the
//! listing's freshness (a restart, a watch relist) reads the account itself. Lists are made
//! with one client (one principal) and serve only reconciles using that client, since another
//! principal may not be allowed to see the same accounts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::arm::models::{Account, AccountRef};
use crate::arm::{ArmClient, ArmError};

#[derive(Clone, Debug, Default)]
pub(super) struct GroupListings {
    groups: Arc<Mutex<HashMap<GroupKey, Arc<Group>>>>,
}

/// One resource group as seen by one client.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    client: u64,
    subscription: String,
    resource_group: String,
}

#[derive(Debug, Default)]
struct Group {
    /// Held while listing, so that the resyncs that find the list stale at once make one list.
    refreshing: tokio::sync::Mutex<()>,
    listing: Mutex<Listing>,
}

#[derive(Debug, Default)]
struct Listing {
    at: Option<Timestamp>,
    /// By lower-case account name; an entry leaves when a reconcile takes it.
    accounts: HashMap<String, Account>,
    /// The last list failed (no permission at the resource group's scope, ARM unavailable):
    /// until it is as old as a list may be, reconciles GET their account without trying again.
    failed_at: Option<Timestamp>,
}

impl Listing {
    /// Made no longer than `max_age` before `now` (or after it: by a reconcile that started
    /// later than this one).
    fn fresh(&self, now: Timestamp, max_age: SignedDuration) -> bool {
        self.at.is_some_and(|at| within(at, now, max_age))
    }

    fn failed_recently(&self, now: Timestamp, max_age: SignedDuration) -> bool {
        self.failed_at.is_some_and(|at| within(at, now, max_age))
    }
}

fn within(at: Timestamp, now: Timestamp, max_age: SignedDuration) -> bool {
    at > now || now.duration_since(at) <= max_age
}

impl GroupListings {
    /// The account at `target` as its resource group's list (no older than `max_age`) shows
    /// it, listing the group first when its list is older. `None`: the list does not have it
    /// (gone, created since, or already taken), so the caller reads the account itself.
    pub(super) async fn take(
        &self,
        arm: &ArmClient,
        target: &AccountRef,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> Result<Option<Account>, ArmError> {
        let group = self.group(arm, target);
        let name = target.name.to_ascii_lowercase();
        if let Some(found) = group.take_if_fresh(&name, now, max_age) {
            return Ok(found);
        }
        let _refreshing = group.refreshing.lock().await;
        // Another reconcile may have listed the group while this one waited, or failed to.
        if let Some(found) = group.take_if_fresh(&name, now, max_age) {
            return Ok(found);
        }
        if group.lock().failed_recently(now, max_age) {
            return Ok(None);
        }
        let listed = arm
            .list_accounts_by_resource_group(&target.subscription_id, &target.resource_group)
            .await;
        let mut listing = group.lock();
        let accounts = match listed {
            Ok(accounts) => accounts,
            Err(error) => {
                listing.failed_at = Some(now);
                return Err(error);
            }
        };
        listing.at = Some(now);
        listing.failed_at = None;
        listing.accounts = accounts
            .into_iter()
            .filter_map(|account| Some((account.name.as_deref()?.to_ascii_lowercase(), account)))
            .collect();
        let found = listing.accounts.remove(&name);
        drop(listing);
        self.forget_stale_groups(now, max_age);
        Ok(found)
    }

    /// Drops the accounts of lists too old to serve anyone (made with a client since replaced,
    /// for a resource group whose accounts are gone): what a list holds is freed at the latest
    /// when another group is listed.
    fn forget_stale_groups(&self, now: Timestamp, max_age: SignedDuration) {
        let mut groups = self.groups.lock().expect("group listings lock");
        groups.retain(|_, group| {
            let listing = group.lock();
            listing.fresh(now, max_age * 2) || listing.failed_recently(now, max_age)
        });
    }

    /// The operator wrote to the account: what the list shows of it is out of date.
    pub(super) fn forget(&self, arm: &ArmClient, target: &AccountRef) {
        let key = GroupKey::of(arm, target);
        let group = self
            .groups
            .lock()
            .expect("group listings lock")
            .get(&key)
            .cloned();
        if let Some(group) = group {
            group
                .lock()
                .accounts
                .remove(&target.name.to_ascii_lowercase());
        }
    }

    fn group(&self, arm: &ArmClient, target: &AccountRef) -> Arc<Group> {
        let mut groups = self.groups.lock().expect("group listings lock");
        groups.entry(GroupKey::of(arm, target)).or_default().clone()
    }
}

impl GroupKey {
    fn of(arm: &ArmClient, target: &AccountRef) -> Self {
        GroupKey {
            client: arm.instance_id(),
            subscription: target.subscription_id.to_ascii_lowercase(),
            resource_group: target.resource_group.to_ascii_lowercase(),
        }
    }
}

impl Group {
    /// `Some(entry)` when the list is fresh (`entry` is `None` if it lacks the account).
    fn take_if_fresh(
        &self,
        name: &str,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> Option<Option<Account>> {
        let mut listing = self.lock();
        // A stale list's entries are replaced when the group is listed again.
        listing
            .fresh(now, max_age)
            .then(|| listing.accounts.remove(name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Listing> {
        self.listing.lock().expect("group listing lock")
    }
}
