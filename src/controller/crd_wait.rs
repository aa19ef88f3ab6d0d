//! Waiting for the CRD before the controller starts, saying in the log what is missing.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, CustomResourceExt};
use tokio::sync::watch;

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};

/// How often to look for the CRD while it is missing.
const CRD_POLL: Duration = Duration::from_secs(5);

/// Waits until both CRDs are established, saying so in the log while one is missing. False
/// when stopped first.
pub(super) async fn wait_for_crd(client: &kube::Client, mut stop: watch::Receiver<bool>) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut last_report = String::new();
    loop {
        let report = match missing_crd(&crds).await {
            None => {
                tracing::info!("CRDs established");
                return true;
            }
            Some(report) => report,
        };
        if report != last_report {
            tracing::warn!("{report}");
            last_report = report;
        }
        tokio::select! {
            _ = tokio::time::sleep(CRD_POLL) => {}
            _ = stop.wait_for(|s| *s) => return false,
        }
    }
}

/// What is missing, or `None` when both CRDs are established.
async fn missing_crd(crds: &Api<CustomResourceDefinition>) -> Option<String> {
    for (name, file) in [
        (CognitiveServicesAccount::crd_name(), crate::api::CRD_FILE),
        (
            CognitiveServicesDeployment::crd_name(),
            crate::api::DEPLOYMENT_CRD_FILE,
        ),
    ] {
        let report = match crds.get_opt(name).await {
            Ok(Some(crd)) if crd_established(&crd) => continue,
            Ok(Some(_)) => format!("CRD {name} exists but is not established yet; waiting"),
            Ok(None) => format!(
                "CRD {name} is not installed: apply it (kubectl apply -f crds/{file}); waiting for it"
            ),
            Err(e) => format!("cannot read CRD {name}: {e}; retrying"),
        };
        return Some(report);
    }
    None
}

pub fn crd_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_crd_is_usable_once_established() {
        let mut crd = CognitiveServicesAccount::crd();
        assert!(!crd_established(&crd));
        crd.status = serde_json::from_value(json!({
            "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]
        }))
        .unwrap();
        assert!(crd_established(&crd));
    }
}
