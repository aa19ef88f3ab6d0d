//! Each account's latest list of its deployments, made by the account's own reconcile.
//!
//! At rest, a deployment's resync is answered from it — one list per account instead of one
//! GET per deployment — but only to conclude that nothing needs doing: a deployment that the
//! list shows differing from its spec (or missing) is read afresh before anything is written.
//! See docs/reconcile.md ("How fresh an observation is").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::arm::deployments::Deployment;

#[derive(Clone, Debug, Default)]
pub(super) struct Listings {
    inner: Arc<Mutex<HashMap<String, Listing>>>,
}

#[derive(Clone, Debug)]
struct Listing {
    at: Timestamp,
    deployments: Vec<Deployment>,
}

impl Listings {
    pub(super) fn remember(&self, account_id: &str, deployments: &[Deployment], at: Timestamp) {
        let listing = Listing {
            at,
            deployments: deployments.to_vec(),
        };
        self.lock().insert(account_id.to_ascii_lowercase(), listing);
    }

    /// Whether the account was listed no longer than `max_age` before `now`.
    pub(super) fn listed_within(
        &self,
        account_id: &str,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> bool {
        self.lock()
            .get(&account_id.to_ascii_lowercase())
            .is_some_and(|l| l.at <= now && now.duration_since(l.at) <= max_age)
    }

    pub(super) fn forget(&self, account_id: &str) {
        self.lock().remove(&account_id.to_ascii_lowercase());
    }

    /// What the account's list, if no older than `max_age`, says of deployment `name`:
    /// `Some(None)` when the list does not have it, `None` when there is no fresh list.
    pub(super) fn lookup(
        &self,
        account_id: &str,
        name: &str,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> Option<Option<Deployment>> {
        let listings = self.lock();
        let listing = listings.get(&account_id.to_ascii_lowercase())?;
        if now.duration_since(listing.at) > max_age || listing.at > now {
            return None;
        }
        let found = listing.deployments.iter().find(|d| {
            d.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        });
        Some(found.cloned())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Listing>> {
        self.inner.lock().expect("listings lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_answers_only_while_fresh() {
        let listings = Listings::default();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let chat = Deployment {
            name: Some("chat".into()),
            ..Default::default()
        };
        listings.remember("/A", std::slice::from_ref(&chat), at);
        let max = SignedDuration::from_mins(10);
        assert_eq!(listings.lookup("/a", "CHAT", at, max), Some(Some(chat)));
        assert_eq!(listings.lookup("/a", "other", at, max), Some(None));
        let late = at + SignedDuration::from_mins(11);
        assert_eq!(listings.lookup("/a", "chat", late, max), None);
        listings.forget("/a");
        assert_eq!(listings.lookup("/a", "chat", at, max), None);
    }
}
