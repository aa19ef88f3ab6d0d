//! Each account's latest list of its deployments, made by the account's own reconcile.
//!
//! At rest, a deployment's reconcile is answered from it — one list per account instead of one
//! GET per deployment — but only to conclude that nothing needs doing: a deployment that the
//! list shows differing from its spec (or missing) is read afresh before anything is written.
//! A list serves only reconciles using the client (the credential) that made it, since another
//! principal may not be allowed to see the same deployments; a write forgets it for all.
//! See docs/reconcile.md ("How fresh an observation is").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

use crate::arm::ArmClient;
use crate::arm::deployments::Deployment;

#[derive(Clone, Debug, Default)]
pub(super) struct Listings {
    inner: Arc<Mutex<HashMap<ListingKey, Listing>>>,
}

/// One account as seen by one client: its [`ArmClient::instance_id`] and the account's
/// lower-case id.
type ListingKey = (u64, String);

fn key(arm: &ArmClient, account_id: &str) -> ListingKey {
    (arm.instance_id(), account_id.to_ascii_lowercase())
}

#[derive(Clone, Debug)]
struct Listing {
    at: Timestamp,
    deployments: Vec<Deployment>,
}

impl Listings {
    pub(super) fn remember(
        &self,
        arm: &ArmClient,
        account_id: &str,
        deployments: &[Deployment],
        at: Timestamp,
    ) {
        let listing = Listing {
            at,
            deployments: deployments.to_vec(),
        };
        self.lock().insert(key(arm, account_id), listing);
    }

    /// Whether `arm` listed the account no longer than `max_age` before `now`.
    pub(super) fn listed_within(
        &self,
        arm: &ArmClient,
        account_id: &str,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> bool {
        self.lock()
            .get(&key(arm, account_id))
            .is_some_and(|l| l.at <= now && now.duration_since(l.at) <= max_age)
    }

    /// Drops every client's list of the account: a write changed what is there for all.
    pub(super) fn forget(&self, account_id: &str) {
        let account_id = account_id.to_ascii_lowercase();
        self.lock().retain(|(_, id), _| *id != account_id);
    }

    /// What `arm`'s list of the account, if no older than `max_age`, says of deployment
    /// `name`: `Some(None)` when the list does not have it, `None` when there is no fresh list.
    pub(super) fn lookup(
        &self,
        arm: &ArmClient,
        account_id: &str,
        name: &str,
        now: Timestamp,
        max_age: SignedDuration,
    ) -> Option<Option<Deployment>> {
        let listings = self.lock();
        let listing = listings.get(&key(arm, account_id))?;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ListingKey, Listing>> {
        self.inner.lock().expect("listings lock")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::arm::{ArmClientConfig, Credential};

    fn client() -> ArmClient {
        let config = ArmClientConfig::new("http://127.0.0.1:9");
        ArmClient::new(config, Arc::new(Credential::static_token("t"))).unwrap()
    }

    fn chat() -> Deployment {
        Deployment {
            name: Some("chat".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_listing_answers_only_while_fresh() {
        let (listings, arm) = (Listings::default(), client());
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        listings.remember(&arm, "/A", &[chat()], at);
        let max = SignedDuration::from_mins(10);
        assert_eq!(
            listings.lookup(&arm, "/a", "CHAT", at, max),
            Some(Some(chat()))
        );
        assert_eq!(listings.lookup(&arm, "/a", "other", at, max), Some(None));
        let late = at + SignedDuration::from_mins(11);
        assert_eq!(listings.lookup(&arm, "/a", "chat", late, max), None);
        listings.forget("/a");
        assert_eq!(listings.lookup(&arm, "/a", "chat", at, max), None);
    }

    #[test]
    fn a_list_made_with_one_client_answers_no_other_and_a_write_forgets_it_for_all() {
        let (listings, mine, theirs) = (Listings::default(), client(), client());
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let max = SignedDuration::from_mins(10);
        listings.remember(&mine, "/a", &[chat()], at);
        assert_eq!(listings.lookup(&theirs, "/a", "chat", at, max), None);
        assert!(!listings.listed_within(&theirs, "/a", at, max));
        assert!(listings.listed_within(&mine, "/a", at, max));
        listings.remember(&theirs, "/a", &[], at);
        assert_eq!(listings.lookup(&theirs, "/a", "chat", at, max), Some(None));
        assert_eq!(
            listings.lookup(&mine, "/a", "chat", at, max),
            Some(Some(chat()))
        );
        listings.forget("/A");
        assert_eq!(listings.lookup(&mine, "/a", "chat", at, max), None);
        assert_eq!(listings.lookup(&theirs, "/a", "chat", at, max), None);
    }
}
