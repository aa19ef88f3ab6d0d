//! The engine itself: what it keeps in memory for all resources at once, and whose owner tag
//! it writes.

use super::common::owner_id;
use super::group_listings::GroupListings;
use super::listings::Listings;
use super::write_gate::WriteGate;
use super::write_turns::WriteTurns;
use crate::api::CognitiveServicesAccount;

/// The reconcile engine. A resource's state lives in its status; in memory the engine keeps
/// only what serves several resources at once, and is safe to lose on a restart: the write gate
/// of each account, each account's latest list of deployments and each resource group's latest
/// list of accounts.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub(super) default_subscription: Option<String>,
    /// Names this cluster in the owner tag, so that two clusters on one subscription never
    /// both own `team-a/docs`.
    pub(super) cluster_id: Option<String>,
    /// One write at a time per account, shared by every clone of this engine.
    pub(super) gate: WriteGate,
    /// Each account's latest list of deployments, which serves its deployments' resyncs.
    pub(super) listings: Listings,
    /// Each resource group's latest list of accounts, which serves the resyncs of its accounts.
    pub(super) group_listings: GroupListings,
    /// Write tokens booked by reconciles that came back later rather than wait in line.
    pub(super) turns: WriteTurns,
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

    pub(super) fn owner_of_key(&self, key: &str) -> String {
        match &self.cluster_id {
            Some(cluster) => format!("{cluster}/{key}"),
            None => key.to_string(),
        }
    }

    /// The gate every write on an account passes (see [`WriteGate`]).
    pub fn write_gate(&self) -> &WriteGate {
        &self.gate
    }
}
