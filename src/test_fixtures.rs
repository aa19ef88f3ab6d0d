//! The builders unit tests inside the crate share (integration tests and benches have theirs in
//! `tests/support/fixtures.rs`; see docs/architecture.md for why there are two).

use crate::api::{
    AccountReference, CognitiveServicesAccountSpec, CognitiveServicesDeploymentSpec, DeploymentSku,
    ModelSpec,
};
use crate::arm::models::Sku;

/// The smallest valid spec: an OpenAI S0 account in resource group `rg`, `westus`.
pub fn openai_spec() -> CognitiveServicesAccountSpec {
    CognitiveServicesAccountSpec {
        resource_group: "rg".into(),
        location: "westus".into(),
        kind: "OpenAI".into(),
        sku: Sku {
            name: "S0".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A gpt-4o 2024-11-20 deployment, GlobalStandard capacity 10, of account `docs-openai`.
pub fn gpt4o_deployment_spec() -> CognitiveServicesDeploymentSpec {
    CognitiveServicesDeploymentSpec {
        account_ref: AccountReference {
            name: "docs-openai".into(),
        },
        model: ModelSpec {
            format: "OpenAI".into(),
            name: "gpt-4o".into(),
            version: Some("2024-11-20".into()),
        },
        sku: DeploymentSku {
            name: "GlobalStandard".into(),
            capacity: Some(10),
        },
        ..Default::default()
    }
}
