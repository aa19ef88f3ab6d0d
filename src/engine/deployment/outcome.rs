//! What one deployment reconcile did and found, and what `plan` shows.

use crate::api::CognitiveServicesDeploymentStatus;
use crate::arm::deployments::{Deployment, DeploymentRef};
use crate::engine::common::{Next, Write};
use crate::planner::deployment::DeploymentPlan;
use crate::planner::status::{self};

/// What one deployment reconcile did and found.
#[derive(Clone, Debug)]
pub struct DeploymentOutcome {
    pub status: CognitiveServicesDeploymentStatus,
    pub next: Next,
    pub writes: Vec<Write>,
    pub deployment: Option<Deployment>,
    pub deletion_finished: bool,
    pub error: Option<String>,
}

impl DeploymentOutcome {
    pub fn ready(&self) -> bool {
        status::find(&self.status.conditions, status::READY).is_some_and(|c| c.status == "True")
    }
}

/// What `plan` shows for a deployment.
#[derive(Clone, Debug)]
pub struct DeploymentPreview {
    pub target: Option<DeploymentRef>,
    pub deployment: Option<Deployment>,
    pub plan: DeploymentPlan,
}
