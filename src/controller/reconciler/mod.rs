//! One reconcile of one resource, of either kind: the gates (grant, credentials, finalizer), the
//! engine, the status (server-side apply on the status subresource), events and the requeue;
//! for accounts also the connection Secret.
//!
//! Two halves of one shape, [`account`] and [`deployment`] (each: `reconcile`, `prepare`,
//! `finalizer`, `status`, `events`), around what both share: the [`Reconciler`] ([`state`]),
//! the grant check ([`scope`]), the status write ([`status_write`]) and event publishing
//! ([`events`]). Written against a plain `kube::Client`, so tests drive it with a fake API server.

mod account;
mod deployment;
mod events;
mod scope;
mod state;
mod status_write;

pub use account::{
    INVALID_RESOURCE_ANNOTATION, account_api_resource, has_finalizer, invalid_resource,
    parse_account,
};
pub use state::{FIELD_MANAGER, Reconciler};
pub use status_write::{null_removed_fields, status_patch};
