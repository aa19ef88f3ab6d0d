//! The deployment half of the reconciler, the same shape as the account's: [`reconcile`] runs
//! the gates of [`prepare`] (the account resource), the engine, the status ([`status`]),
//! [`events`] and the [`finalizer`] (with the ownerReference).

mod events;
mod finalizer;
mod prepare;
mod reconcile;
mod status;
