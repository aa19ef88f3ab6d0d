//! Configuration of an emulator instance: seeds, operation pacing and throttling numbers.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tls::TlsConfig;

/// How an emulator instance behaves. `Default` is quick enough for tests and still behaves as
/// Azure does in time: an operation finishes after two status polls or two seconds, whichever
/// comes first; Azure's throttling numbers; pages of 100.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Resource groups that exist from the start (others answer 404 `ResourceGroupNotFound`).
    pub resource_groups: Vec<ResourceGroupSeed>,
    /// Status polls (of either operation URL) after which a long-running operation completes;
    /// `None`: polls do not complete operations.
    pub polls_to_complete: Option<u32>,
    /// Age on the injectable clock after which a long-running operation completes, polled or
    /// not; `None`: only polls complete operations. The first of the two that is met wins.
    pub operation_duration: Option<Duration>,
    /// How long an ended operation's status and result URLs keep answering before they expire
    /// with 404 (Azure's do; how long is not documented); `None`: they never expire.
    pub operation_retention: Option<Duration>,
    /// `Retry-After` (seconds) sent with long-running operation responses.
    pub retry_after_secs: u64,
    /// Per-subscription token buckets; `None` disables throttling.
    pub throttling: Option<ThrottleConfig>,
    /// Delay added to every resource-provider response.
    pub latency: Duration,
    /// Items per page of the list operations before a `nextLink` is returned.
    pub page_size: usize,
    /// Which of Azure's answer forms the writes take (see [`Profile`]).
    pub profile: Profile,
    /// An additional https listener (`None`: plain http only).
    pub tls: Option<TlsConfig>,
}

/// The forms in which the emulator answers writes. Azure's contract allows several, and the
/// service was recorded using more than one over time (docs/emulator.md, "Profiles").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// As real Azure was recorded answering (`spec/azure-recordings/`): deployment writes, both
    /// DELETEs and a tags-only account PUT synchronous; an account create 201 `Creating` with
    /// Azure-AsyncOperation alone, at a signed location-scoped `operationResults` URL. The
    /// default: what the operator meets on Azure.
    #[default]
    Recorded,
    /// As `Recorded`, but an account create answers 200 `Accepted` (with the same
    /// Azure-AsyncOperation), as Azure Service Operator v2.20.0's 2026-06 recording shows.
    RecordedAccepted,
    /// Every write a long-running operation with Azure-AsyncOperation, Location and
    /// Retry-After, as the emulator answered before the recordings were its reference.
    LongRunning,
}

/// The variable that chooses the profile of an emulator whose configuration does not (the
/// operator's embedded emulator and test suites), so that one suite runs under either.
pub const PROFILE_VARIABLE: &str = "ARM_EMULATOR_PROFILE";

impl Profile {
    /// The profile named by [`PROFILE_VARIABLE`], or the default; an unknown name is an error
    /// naming the variable.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(PROFILE_VARIABLE) {
            Err(_) => Ok(Self::default()),
            Ok(name) => <Self as clap::ValueEnum>::from_str(&name, true).map_err(|_| {
                format!(
                    "{PROFILE_VARIABLE}={name:?} is not a profile: recorded, recorded-accepted or long-running"
                )
            }),
        }
    }

    /// Whether deployment writes, DELETEs and tags-only account PUTs answer at once, and an
    /// account create takes the recorded operation form, as the recordings show.
    pub(crate) fn recorded_forms(self) -> bool {
        self != Self::LongRunning
    }
}

/// The age at which operations complete when the configuration does not say otherwise.
pub const DEFAULT_OPERATION_DURATION: Duration = Duration::from_secs(2);

/// How long ended operations' URLs answer when the configuration does not say otherwise.
pub const DEFAULT_OPERATION_RETENTION: Duration = Duration::from_secs(15 * 60);

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            resource_groups: Vec::new(),
            polls_to_complete: Some(2),
            operation_duration: Some(DEFAULT_OPERATION_DURATION),
            operation_retention: Some(DEFAULT_OPERATION_RETENTION),
            retry_after_secs: 1,
            throttling: Some(ThrottleConfig::azure()),
            latency: Duration::ZERO,
            page_size: 100,
            profile: Profile::default(),
            tls: None,
        }
    }
}

/// A resource group that exists in the emulator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupSeed {
    pub subscription_id: String,
    pub name: String,
    pub location: String,
}

impl ResourceGroupSeed {
    pub fn new(subscription_id: &str, name: &str, location: &str) -> Self {
        ResourceGroupSeed {
            subscription_id: subscription_id.into(),
            name: name.into(),
            location: location.into(),
        }
    }
}

/// Location given to a resource group seeded as `SUB/RG` without `@LOCATION`.
pub const DEFAULT_RESOURCE_GROUP_LOCATION: &str = "eastus";

impl FromStr for ResourceGroupSeed {
    type Err = String;

    /// Parses `SUBSCRIPTION_ID/RESOURCE_GROUP[@LOCATION]`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (path, location) = match text.split_once('@') {
            Some((path, location)) => (path, location),
            None => (text, DEFAULT_RESOURCE_GROUP_LOCATION),
        };
        let Some((subscription_id, name)) = path.split_once('/') else {
            return Err(format!(
                "expected SUBSCRIPTION_ID/RESOURCE_GROUP[@LOCATION], got '{text}'"
            ));
        };
        let parts = [subscription_id, name, location];
        if parts
            .iter()
            .any(|part| part.is_empty() || part.contains('/'))
        {
            return Err(format!(
                "expected SUBSCRIPTION_ID/RESOURCE_GROUP[@LOCATION], got '{text}'"
            ));
        }
        Ok(Self {
            subscription_id: subscription_id.to_string(),
            name: name.to_string(),
            location: location.to_string(),
        })
    }
}

/// One token bucket: `capacity` tokens at most, refilled continuously at `refill_per_sec`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketConfig {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

/// Token buckets per subscription for the three ARM request classes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThrottleConfig {
    pub reads: BucketConfig,
    pub writes: BucketConfig,
    pub deletes: BucketConfig,
    /// Multiplies every refill rate (10.0 = buckets refill ten times faster than on Azure).
    pub time_scale: f64,
}

impl ThrottleConfig {
    /// Azure Resource Manager's per-subscription limits: reads 250 + 25/s, writes and deletes 200 + 10/s.
    pub fn azure() -> Self {
        Self {
            reads: BucketConfig {
                capacity: 250.0,
                refill_per_sec: 25.0,
            },
            writes: BucketConfig {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
            deletes: BucketConfig {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
            time_scale: 1.0,
        }
    }

    /// The same buckets refilling `time_scale` times faster.
    pub fn scaled(self, time_scale: f64) -> Self {
        Self { time_scale, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resource_group_seeds() {
        let seed: ResourceGroupSeed = "sub-1/rg-a@westus".parse().unwrap();
        assert_eq!(seed.subscription_id, "sub-1");
        assert_eq!(seed.name, "rg-a");
        assert_eq!(seed.location, "westus");
        let seed: ResourceGroupSeed = "sub-1/rg-a".parse().unwrap();
        assert_eq!(seed.location, DEFAULT_RESOURCE_GROUP_LOCATION);
        assert!("sub-1".parse::<ResourceGroupSeed>().is_err());
        assert!("sub-1/".parse::<ResourceGroupSeed>().is_err());
        assert!("a/b/c".parse::<ResourceGroupSeed>().is_err());
    }
}
