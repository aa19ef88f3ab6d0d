//! The CRD YAML of both kinds, as `crds/` holds it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{CognitiveServicesAccount, CognitiveServicesDeployment};

/// The file in `crds/` (and the chart's and deploy/'s copies) holding the account CRD.
pub const CRD_FILE: &str = "cognitiveservicesaccounts.cognitive-operator.dev.yaml";

/// The file in `crds/` holding the deployment CRD.
pub const DEPLOYMENT_CRD_FILE: &str = "cognitiveservicesdeployments.cognitive-operator.dev.yaml";

/// Every CRD of the operator with the file in `crds/` that holds it.
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        (CRD_FILE, CognitiveServicesAccount::crd()),
        (DEPLOYMENT_CRD_FILE, CognitiveServicesDeployment::crd()),
    ]
}

/// One CRD as YAML, exactly as in `crds/`.
pub fn crd_to_yaml(crd: &CustomResourceDefinition) -> String {
    serde_saphyr::to_string(crd).expect("the CRD serializes")
}

/// The account CRD as YAML, exactly as in `crds/`.
pub fn crd_yaml() -> String {
    crd_to_yaml(&CognitiveServicesAccount::crd())
}

/// The deployment CRD as YAML, exactly as in `crds/`.
pub fn deployment_crd_yaml() -> String {
    crd_to_yaml(&CognitiveServicesDeployment::crd())
}

/// Both CRDs as one multi-document YAML stream, for `kubectl apply -f -`.
pub fn all_crds_yaml() -> String {
    crds()
        .iter()
        .map(|(_, crd)| crd_to_yaml(crd))
        .collect::<Vec<_>>()
        .join("---\n")
}
