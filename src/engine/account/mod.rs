//! The account half of the engine: one reconcile ([`rounds`]) resumes a pending operation
//! ([`resume`]), or answers a resync at rest from a list ([`at_rest`]), or observes ([`observe`]),
//! plans for the [`subject`] and runs the first write ([`act`]); [`pass`] keeps its state and
//! the status it ends with ([`outcome`]).

mod act;
mod at_rest;
mod observe;
mod outcome;
mod pass;
mod resume;
mod rounds;
mod subject;

pub use outcome::{Outcome, Preview, condition_is_true};
pub use subject::DEPLOYMENT_DISCOVERY;
