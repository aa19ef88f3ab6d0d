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
}

impl Listing {
    fn fresh(&self, now: Timestamp, max_age: SignedDuration) -> bool {
        self.at
            .is_some_and(|at| at <= now && now.duration_since(at) <= max_age)
    }
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
        // Another reconcile may have listed the group while this one waited.
        if let Some(found) = group.take_if_fresh(&name, now, max_age) {
            return Ok(found);
        }
        let accounts = arm
            .list_accounts_by_resource_group(&target.subscription_id, &target.resource_group)
            .await?;
        let mut listing = group.lock();
        listing.at = Some(now);
        listing.accounts = accounts
            .into_iter()
            .filter_map(|account| Some((account.name.as_deref()?.to_ascii_lowercase(), account)))
            .collect();
        Ok(listing.accounts.remove(&name))
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
        if !listing.fresh(now, max_age) {
            listing.accounts.clear();
            return None;
        }
        Some(listing.accounts.remove(name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Listing> {
        self.listing.lock().expect("group listing lock")
    }
}
