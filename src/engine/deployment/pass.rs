//! One deployment reconcile's state as it goes, and the status it ends with.

use jiff::Timestamp;

use super::outcome::DeploymentOutcome;
use crate::api::{CognitiveServicesDeployment, CognitiveServicesDeploymentStatus, RateLimit};
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::arm::error::ArmError;
use crate::engine::common::{Next, PROVISIONING_POLL, Write, last_error, retrying};
use crate::planner::Verdict;
use crate::planner::deployment::{DeploymentAction, DeploymentPlan};
use crate::planner::status::{self, Summary};

/// How soon to check again after `InsufficientQuota`: quota frees up when other deployments
/// shrink or go, which this operator cannot see.
pub const QUOTA_RECHECK: std::time::Duration = std::time::Duration::from_secs(300);

/// The state of one deployment reconcile as it goes.
pub(super) struct DeploymentPass<'a> {
    resource: &'a CognitiveServicesDeployment,
    pub(super) now: Timestamp,
    pub(super) status: CognitiveServicesDeploymentStatus,
    writes: Vec<Write>,
    deployment: Option<Deployment>,
    pub(super) deletion_finished: bool,
    /// What Ready says: that the deployment matches, and, when its account is observed only,
    /// that it is not managed for all that.
    pub(super) ready_message: String,
}

impl<'a> DeploymentPass<'a> {
    pub(super) fn new(resource: &'a CognitiveServicesDeployment, now: Timestamp) -> Self {
        DeploymentPass {
            resource,
            now,
            status: resource.status.clone().unwrap_or_default(),
            writes: Vec::new(),
            deployment: None,
            deletion_finished: false,
            ready_message: "the deployment matches the spec".into(),
        }
    }

    pub(super) fn record_observation(&mut self, observed: Option<&Deployment>) {
        let status = &mut self.status;
        let model = observed.and_then(|d| d.model());
        let sku = observed.and_then(|d| d.sku.as_ref());
        status.model_version = model.and_then(|m| m.version.clone());
        status.sku_name = sku.map(|s| s.name.clone());
        status.capacity = sku.and_then(|s| s.capacity);
        status.provisioning_state =
            observed.and_then(|d| d.provisioning_state().map(str::to_string));
        status.rate_limits = observed
            .and_then(|d| d.properties.as_ref())
            .and_then(|p| p.rate_limits.as_ref())
            .map(|rules| {
                rules
                    .iter()
                    .map(|r| RateLimit {
                        key: r.key.clone(),
                        renewal_period: r.renewal_period,
                        count: r.count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.deployment = observed.cloned();
    }

    pub(super) fn record_plan(&mut self, plan: &DeploymentPlan, target: &DeploymentRef) {
        self.status.drift = status::drift_entries(&plan.drift);
        if plan.claims_deployment {
            self.status.arm_id = Some(target.id());
        } else if self.deployment.is_some() {
            self.status.arm_id = None;
        }
    }

    /// A write ARM accepted. It claims nothing: `status.armId` names a deployment only once it
    /// is read back with this resource's owner tag ([`Self::record_plan`]), so that a create
    /// that lost a race to another writer never makes that writer's deployment look like ours.
    pub(super) fn wrote(&mut self, action: &DeploymentAction) {
        self.writes.push(Write {
            kind: action.kind(),
            fields: action.fields(),
            description: action.describe(),
        });
    }

    pub(super) fn finish_verdict(&mut self, verdict: &Verdict) -> DeploymentOutcome {
        let next = match verdict {
            Verdict::Deleted { .. } => {
                self.deletion_finished = true;
                Next::Done
            }
            Verdict::Paused => Next::Done,
            Verdict::Progressing {
                reason: "AccountNotReady",
                ..
            } => Next::Resync,
            Verdict::Progressing { .. } => Next::After(PROVISIONING_POLL),
            Verdict::Ready | Verdict::Observed { .. } | Verdict::Stalled { .. } => Next::Resync,
        };
        if !matches!(verdict, Verdict::Stalled { .. }) {
            self.status.last_error = None;
        }
        let summary = match verdict {
            Verdict::Ready => Summary::ready_with(&self.ready_message),
            other => Summary::from_verdict(other),
        };
        self.finish(summary, next)
    }

    pub(super) fn finish_error(&mut self, error: &ArmError) -> DeploymentOutcome {
        self.status.last_error = Some(last_error(error));
        let (summary, next) = if error.is_retryable() {
            retrying(error)
        } else {
            let next = if error.has_code("InsufficientQuota") {
                Next::After(QUOTA_RECHECK)
            } else {
                Next::Resync
            };
            (Summary::stalled(error.code(), &explain(error)), next)
        };
        let mut outcome = self.finish(summary, next);
        outcome.error = Some(error.to_string());
        outcome
    }

    pub(super) fn finish(&mut self, summary: Summary, next: Next) -> DeploymentOutcome {
        let generation = self.resource.metadata.generation;
        let now = self.now.to_string();
        self.status.conditions =
            status::conditions(&summary, generation, &self.status.conditions, &now);
        self.status.observed_generation = generation;
        DeploymentOutcome {
            status: std::mem::take(&mut self.status),
            next,
            writes: std::mem::take(&mut self.writes),
            deployment: self.deployment.take(),
            deletion_finished: self.deletion_finished,
            error: None,
        }
    }
}

/// ARM's refusal, with the spec field to change: the one ARM's error names, or the one its
/// code implies.
fn explain(error: &ArmError) -> String {
    let implied = match error.code() {
        "InsufficientQuota" => Some("spec.sku.capacity"),
        "DeploymentModelNotSupported" => Some("spec.model"),
        "ServiceModelDeprecated" => Some("spec.model.version"),
        _ => None,
    };
    let field = error
        .target()
        .map(spec_field)
        .or(implied.map(str::to_string));
    let hint = match error.code() {
        "InsufficientQuota" => {
            "not enough quota: lower spec.sku.capacity or raise the quota; checked again every 5 minutes"
        }
        "DeploymentModelNotSupported" => {
            "this model or version is not offered for the account's kind and location"
        }
        "ServiceModelDeprecated" => "this model version is deprecated: choose a current one",
        "InvalidResourceProperties" => "ARM refused a value of the spec",
        _ => return error.to_string(),
    };
    match field {
        Some(field) => format!("{field}: {hint}. {error}"),
        None => format!("{hint}. {error}"),
    }
}

/// The spec field of a deployment request field (`properties.model.version` → `spec.model.version`).
fn spec_field(target: &str) -> String {
    format!(
        "spec.{}",
        target.strip_prefix("properties.").unwrap_or(target)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::error::api_error_from_response;

    fn refusal(code: &str, target: Option<&str>) -> ArmError {
        let body =
            serde_json::json!({"error": {"code": code, "message": "refused", "target": target}});
        ArmError::Api(Box::new(api_error_from_response(
            400,
            body.to_string().as_bytes(),
            None,
            None,
        )))
    }

    #[test]
    fn a_refusal_names_the_spec_field_to_change() {
        let message = explain(&refusal("InvalidResourceProperties", Some("sku.name")));
        assert!(
            message.starts_with("spec.sku.name: ARM refused"),
            "{message}"
        );
        let message = explain(&refusal(
            "ServiceModelDeprecated",
            Some("properties.model.version"),
        ));
        assert!(message.starts_with("spec.model.version: "), "{message}");
        let message = explain(&refusal("InsufficientQuota", None));
        assert!(
            message.starts_with("spec.sku.capacity: not enough quota"),
            "{message}"
        );
        assert_eq!(
            explain(&refusal("Other", None)),
            refusal("Other", None).to_string()
        );
    }
}
