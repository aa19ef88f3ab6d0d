//! The custom resources of `cognitive-operator.dev/v1alpha1`: [`CognitiveServicesAccount`]
//! (`account`) and [`CognitiveServicesDeployment`] (`deployment`), their validation, and the
//! CRD YAML that `crds/` holds.

mod account;
mod account_spec;
mod crd;
mod deployment;
mod string_map;

pub use account::*;
pub use account_spec::*;
pub use crd::{
    CRD_FILE, DEPLOYMENT_CRD_FILE, all_crds_yaml, crd_to_yaml, crd_yaml, crds, deployment_crd_yaml,
};
pub use deployment::*;
pub use string_map::StringMap;
