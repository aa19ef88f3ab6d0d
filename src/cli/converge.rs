//! Drives one resource to a settled state by reconciling until the engine says to wait for the
//! resync (converged or stalled) or is done, sleeping as it asks in between. The blocking mode
//! of `apply` and the demo.

use std::time::{Duration, Instant};

use crate::api::CognitiveServicesAccount;
use crate::arm::ArmClient;
use crate::engine::{Engine, Next, Outcome};

/// Backoff between retries of retryable errors: doubles from 1 s, capped at 30 s.
fn backoff(failures: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = Duration::from_secs(1u64 << failures.min(5)).min(Duration::from_secs(30));
    exponential.max(retry_after.unwrap_or_default())
}

/// Reconciles `resource` (updating its status in place) until it settles or `timeout` passes.
/// `progress` hears every outcome.
pub async fn converge(
    engine: &Engine,
    client: &ArmClient,
    resource: &mut CognitiveServicesAccount,
    deleting: bool,
    timeout: Duration,
    mut progress: impl FnMut(&Outcome),
) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut failures = 0;
    loop {
        let outcome = engine
            .reconcile(client, resource, deleting, jiff::Timestamp::now())
            .await;
        resource.status = Some(outcome.status.clone());
        progress(&outcome);
        let wait = match outcome.next {
            Next::Resync | Next::Done => return outcome,
            Next::After(delay) => {
                failures = 0;
                delay
            }
            Next::Backoff { retry_after } => {
                failures += 1;
                backoff(failures, retry_after)
            }
        };
        if Instant::now() + wait > deadline {
            return outcome;
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_honours_retry_after() {
        assert_eq!(backoff(1, None), Duration::from_secs(2));
        assert_eq!(backoff(9, None), Duration::from_secs(30));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
