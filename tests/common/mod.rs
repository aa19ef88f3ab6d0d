//! Shared set-up for tests that talk to the in-process ARM emulator.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use arm_emulator::{Emulator, EmulatorConfig, Profile, RecordedRequest};
use cognitive_operator::api::Condition;
use cognitive_operator::arm::{ArmClient, ArmClientConfig, Credential, RetryPolicy};

pub const SUB: &str = "11111111-1111-1111-1111-111111111111";
pub const RG: &str = "rg-ai";
pub const LOCATION: &str = "westus";

/// An emulator with throttling off, operations that finish after `polls` polls and no
/// Retry-After wait, and the test resource group seeded; it answers in the forms of the profile
/// `ARM_EMULATOR_PROFILE` names (recorded Azure's by default), so a suite runs under each.
pub async fn emulator_with(polls: u32) -> Emulator {
    let profile = Profile::from_env().unwrap_or_else(|e| panic!("{e}"));
    emulator_answering(profile, polls).await
}

/// [`emulator`] answering in the forms of `profile`, whatever the environment says.
pub async fn emulator_in(profile: Profile) -> Emulator {
    emulator_answering(profile, 2).await
}

/// [`emulator_with`] answering in the forms of `profile`.
pub async fn emulator_answering(profile: Profile, polls: u32) -> Emulator {
    cognitive_operator::install_crypto_provider();
    let config = EmulatorConfig {
        polls_to_complete: Some(polls),
        retry_after_secs: 0,
        throttling: None,
        profile,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    emulator.seed_resource_group(SUB, RG, LOCATION);
    emulator
}

pub async fn emulator() -> Emulator {
    emulator_with(2).await
}

/// Fast retries so fault tests do not wait long.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

/// A client for the emulator without client-side rate limiting, polling at once where no
/// Retry-After says otherwise (the emulator's operations end by polls, not by time).
pub fn client(emulator: &Emulator) -> ArmClient {
    let mut config = ArmClientConfig::new(emulator.base_url());
    config.rate_limits = None;
    config.default_poll = Duration::ZERO;
    config.retry = fast_retries();
    ArmClient::new(config, Arc::new(Credential::static_token("test-token"))).expect("client")
}

/// Requests other than reads, in order: `METHOD path`.
pub fn writes(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

pub fn count(requests: &[RecordedRequest], method: &str) -> usize {
    requests.iter().filter(|r| r.method == method).count()
}

/// The condition `type_` of a status; panics, listing them, when there is none.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> &'a Condition {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions:?}"))
}
