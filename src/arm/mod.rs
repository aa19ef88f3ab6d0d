//! The operator's only door to Azure: a small typed client for the
//! `Microsoft.CognitiveServices` accounts and deployments API (2024-10-01) with long-running operations,
//! error classification, client-side rate limiting and Azure credentials.

pub mod args;
mod bucket;
pub mod client;
pub mod credentials;
pub mod deployments;
pub mod error;
pub mod lro;
pub mod models;
mod polling;
pub mod ratelimit;
mod transport;

pub use args::ArmArgs;
pub use client::{ArmClient, ArmClientConfig, ArmMetrics, RetryPolicy, WriteOutcome};
pub use credentials::{Cloud, Credential, CredentialMode, IdentitySettings};
pub use deployments::{Deployment, DeploymentRef, DeploymentWrite};
pub use error::{ApiError, ArmError};
pub use lro::{OperationKind, PendingOperation, PollMethod, PollStatus};
pub use models::{Account, AccountRef, ApiKeys, DeletedAccountRef, KeyName};
pub use ratelimit::{BucketShape, RateLimits, RequestClass};
