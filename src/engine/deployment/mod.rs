//! The deployment half of the engine, the same shape as the account's: one reconcile
//! ([`rounds`]) for a deployment whose account stands as its [`context`] says resumes a pending
//! operation ([`resume`]), or answers a resync at rest from the account's list ([`at_rest`]),
//! or reads the deployment, plans and runs the first write ([`act`]) through the account's write
//! gate ([`gate`]); [`pass`] keeps its state and the status it ends with ([`outcome`]).

mod act;
mod at_rest;
mod context;
mod gate;
mod outcome;
mod pass;
mod resume;
mod rounds;

pub use context::AccountContext;
pub use outcome::{DeploymentOutcome, DeploymentPreview};
pub use pass::QUOTA_RECHECK;
