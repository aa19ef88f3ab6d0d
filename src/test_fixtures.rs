//! The builders unit tests inside the crate share (integration tests and benches have theirs in
//! `tests/support/fixtures.rs`; see docs/architecture.md for why there are two).

use crate::api::CognitiveServicesAccountSpec;
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
