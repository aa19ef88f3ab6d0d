//! The account half of the reconciler: [`reconcile`] runs the gates of [`prepare`] (or reports
//! a [`malformed`] object), the engine, the connection Secret ([`secret`]), the status
//! ([`status`]), [`events`] and the [`finalizer`].

mod events;
mod finalizer;
mod malformed;
mod prepare;
mod reconcile;
mod secret;
mod status;

pub use finalizer::has_finalizer;
pub use malformed::{
    INVALID_RESOURCE_ANNOTATION, account_api_resource, invalid_resource, parse_account,
};
