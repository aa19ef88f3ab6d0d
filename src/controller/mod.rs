//! `cognitive-operator run`: the reconcile engine as a Kubernetes operator.
//!
//! The process is wired in [`run`] (with [`election`], [`crd_wait`], [`stop`]); watch events
//! pass [`cache`] and [`change_filter`] on their way to the [`Reconciler`], which does one
//! reconcile (finalizer, grants, credentials, the engine, status, the connection Secret, events,
//! requeue) and is tested against a fake API server; `tests/e2e.rs` runs it all on a real one.

mod args;
mod cache;
mod change_filter;
mod crd_wait;
pub mod credentials;
mod election;
mod error;
pub mod grants;
pub mod http;
pub mod key_rotation;
pub mod leader;
pub mod metrics;
pub mod reconciler;
pub mod requeue;
mod resilient_watch;
mod run;
pub mod secrets;
mod stop;

pub use args::{LogFormat, RunArgs};
pub use cache::{cache_event, cache_object, trim_for_cache};
pub use crd_wait::crd_established;
pub use error::Error;
pub use reconciler::{INVALID_RESOURCE_ANNOTATION, Reconciler};
pub use requeue::Requeue;
pub use run::run;
