//! `--emulator` for `plan` and `apply`: an in-process ARM emulator seeded with the resource
//! groups the manifests name, and a client pointed at it.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::api::CognitiveServicesAccount;
use crate::arm::{ArmClient, ArmClientConfig, ArmError, Credential};
use arm_emulator::{Emulator, EmulatorConfig, Profile};

/// The subscription used for resources without one when talking to an embedded emulator.
pub const EMULATOR_SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";

/// The bearer token the embedded emulator is sent (it accepts any well-formed one).
pub const EMULATOR_TOKEN: &str = "emulator";

pub struct Embedded {
    pub emulator: Emulator,
    pub client: ArmClient,
}

/// Starts an emulator whose operations finish on the first poll, seeded with the resource
/// groups of `resources`.
pub async fn start(
    resources: &[CognitiveServicesAccount],
    default_subscription: &str,
) -> std::io::Result<Embedded> {
    let config = EmulatorConfig {
        polls_to_complete: Some(1),
        retry_after_secs: 0,
        profile: Profile::from_env().map_err(std::io::Error::other)?,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    let groups: BTreeSet<(String, String, String)> = resources
        .iter()
        .map(|r| {
            let subscription = r
                .spec
                .subscription_id
                .clone()
                .unwrap_or_else(|| default_subscription.to_string());
            (
                subscription,
                r.spec.resource_group.clone(),
                r.spec.location.clone(),
            )
        })
        .collect();
    for (subscription, group, location) in &groups {
        emulator.seed_resource_group(subscription, group, location);
    }
    let client = client_for(&emulator).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Embedded { emulator, client })
}

/// A client for an emulator, with the static token it accepts. It polls at once where no
/// Retry-After says otherwise: the embedded emulator's operations end at their first poll.
pub fn client_for(emulator: &Emulator) -> Result<ArmClient, ArmError> {
    let credential = Arc::new(Credential::static_token(EMULATOR_TOKEN));
    let config = ArmClientConfig {
        default_poll: std::time::Duration::ZERO,
        ..ArmClientConfig::new(emulator.base_url())
    };
    ArmClient::new(config, credential)
}
