//! Long-running operations of the ARM async protocol: when they complete and when their URLs expire.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::ArmErrorBody;
use super::deployment::Deployment;
use super::model::{Account, AccountKey};
use super::render::timestamp;
use super::signature::Signature;

/// The api-version of the operation URLs Azure hands out in the recorded form, whatever the
/// write's own api-version.
pub(crate) const RECORDED_OPERATION_API_VERSION: &str = "2017-04-18";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperationKind {
    Create,
    Restore,
    Update,
    Delete,
    Purge,
}

impl OperationKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "Create",
            Self::Restore => "Restore",
            Self::Update => "Update",
            Self::Delete => "Delete",
            Self::Purge => "Purge",
        }
    }

    /// Whether the operation's result URL answers with the resource (200) or nothing (204).
    pub(crate) fn returns_resource(self) -> bool {
        matches!(self, Self::Create | Self::Restore | Self::Update)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OperationStatus {
    InProgress,
    Succeeded,
    Failed,
}

impl OperationStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// When operations complete: after `polls` status polls or once `duration` has passed on the
/// injectable clock, whichever comes first (Azure runs an operation on its own; polling only
/// observes it). With neither set, an operation completes at the next request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    pub polls: Option<u32>,
    pub duration: Option<Duration>,
    /// How long an ended operation's URLs keep answering before they expire (404).
    pub retention: Option<Duration>,
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

/// The form an operation's URLs take.
#[derive(Clone, Debug)]
pub(crate) enum OperationStyle {
    /// The contract's: Azure-AsyncOperation at `operationStatuses` (the status document),
    /// Location at `operationResults` (202, then the resource), Retry-After, both URLs at the
    /// write's api-version.
    Contract,
    /// As recorded for an account create: Azure-AsyncOperation alone, at `operationResults` with
    /// api-version 2017-04-18 and the signed parameters; that URL answers the status document,
    /// whose `status` reads `running` while the operation runs.
    Recorded {
        running: &'static str,
        signature: Signature,
    },
}

/// The resource as it was before an update, put back if the update fails.
#[derive(Clone, Debug)]
pub(crate) enum Rollback {
    Account(Box<Account>),
    Deployment(Box<Deployment>),
}

#[derive(Clone, Debug)]
pub(crate) struct Operation {
    pub id: String,
    pub kind: OperationKind,
    pub subscription_id: String,
    /// Normalized location, part of the operation URLs.
    pub location: String,
    /// The account the operation runs on, or the parent of the deployment it runs on: at most
    /// one operation runs per account, its deployments' included.
    pub account: AccountKey,
    /// The deployment (lowercased name) the operation runs on; `None`: the account itself.
    pub deployment: Option<String>,
    pub resource_id: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub polls: u32,
    pub status: OperationStatus,
    /// Error the operation ends with (scripted by a fault), `None` for success.
    pub planned_error: Option<ArmErrorBody>,
    pub error: Option<ArmErrorBody>,
    pub rollback: Option<Rollback>,
    pub style: OperationStyle,
}

impl Operation {
    pub(crate) fn is_due(&self, now: Timestamp, pacing: Pacing) -> bool {
        if self.status != OperationStatus::InProgress {
            return false;
        }
        let polled_enough = pacing.polls.is_some_and(|polls| self.polls >= polls);
        let lasted_enough = pacing
            .duration
            .is_some_and(|duration| now.duration_since(self.started_at) >= signed(duration));
        let unpaced = pacing.polls.is_none() && pacing.duration.is_none();
        polled_enough || lasted_enough || unpaced
    }

    /// When a due operation ended: when its duration ran out if that came first (it ran on its
    /// own, whether or not anyone asked), else `now` (the poll that completed it).
    pub(crate) fn ended_by(&self, now: Timestamp, pacing: Pacing) -> Timestamp {
        pacing
            .duration
            .and_then(|duration| self.started_at.checked_add(signed(duration)).ok())
            .map_or(now, |finished| finished.min(now))
    }

    /// Whether the operation ended longer ago than its URLs are kept.
    pub(crate) fn is_expired(&self, now: Timestamp, pacing: Pacing) -> bool {
        match (self.ended_at, pacing.retention) {
            (Some(ended_at), Some(retention)) => now.duration_since(ended_at) >= signed(retention),
            _ => false,
        }
    }

    /// `/subscriptions/{s}/providers/Microsoft.CognitiveServices/locations/{loc}/{collection}/{id}`
    pub(crate) fn path(&self, collection: &str) -> String {
        format!(
            "/subscriptions/{}/providers/Microsoft.CognitiveServices/locations/{}/{collection}/{}",
            self.subscription_id, self.location, self.id
        )
    }

    /// The signature its URL must carry, for an operation in the recorded form.
    pub(crate) fn signature(&self) -> Option<&Signature> {
        match &self.style {
            OperationStyle::Recorded { signature, .. } => Some(signature),
            OperationStyle::Contract => None,
        }
    }

    /// The path and query of the recorded form's one URL.
    pub(crate) fn recorded_url(&self, signature: &Signature) -> String {
        format!(
            "{}?api-version={RECORDED_OPERATION_API_VERSION}&{}",
            self.path("operationResults"),
            signature.query()
        )
    }

    /// The status document of the Azure-AsyncOperation URL, `id` its path.
    pub(crate) fn status_document(&self) -> Value {
        let (collection, status) = match (&self.style, self.status) {
            (OperationStyle::Recorded { running, .. }, OperationStatus::InProgress) => {
                ("operationResults", *running)
            }
            (OperationStyle::Recorded { .. }, status) => ("operationResults", status.as_str()),
            (OperationStyle::Contract, status) => ("operationStatuses", status.as_str()),
        };
        let mut document = json!({
            "id": self.path(collection),
            "name": self.id,
            "status": status,
            "startTime": timestamp(self.started_at),
        });
        if let Some(ended_at) = self.ended_at {
            document["endTime"] = json!(timestamp(ended_at));
        }
        if let Some(error) = &self.error {
            document["error"] = json!({"code": error.code, "message": error.message});
        }
        document
    }

    /// What `GET /_emulator/state` shows of the operation; URLs on `base_url`, those of the
    /// contract's form at the contract's api-version.
    pub(crate) fn summary(&self, base_url: &str) -> Value {
        let url = |collection: &str| {
            format!("{base_url}{}?api-version=2024-10-01", self.path(collection))
        };
        let mut summary = self.status_document();
        summary["kind"] = json!(self.kind.as_str());
        summary["resourceId"] = json!(self.resource_id);
        summary["polls"] = json!(self.polls);
        match self.signature() {
            Some(signature) => {
                summary["statusUrl"] = json!(format!("{base_url}{}", self.recorded_url(signature)));
            }
            None => {
                summary["statusUrl"] = json!(url("operationStatuses"));
                summary["locationUrl"] = json!(url("operationResults"));
            }
        }
        summary
    }
}
