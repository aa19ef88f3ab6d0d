//! The executor: observes ARM, asks the planner, runs the first action in non-blocking mode and
//! says what the status is and when to come back. Used by the controller and by `plan`/`apply`.
//!
//! Two halves of one shape, [`account`] and [`deployment`] (each: its rounds, observation, acts
//! and pass), around what both share: the [`Engine`] and its memory ([`state`]), the outcome
//! vocabulary ([`common`]), the write gate, the booked write turns and the lists that answer
//! resyncs at rest.

mod account;
mod common;
mod deployment;
mod group_listings;
mod listings;
mod state;
mod write_gate;
mod write_turns;

pub use account::{DEPLOYMENT_DISCOVERY, Outcome, Preview, condition_is_true};
pub use common::{EngineError, MAX_PENDING_AGE, Next, Write, owner_id, owner_id_of};
pub use deployment::{AccountContext, DeploymentOutcome, DeploymentPreview, QUOTA_RECHECK};
pub use state::Engine;
pub use write_gate::WriteGate;
