//! Drives one resource to a settled state by reconciling until the engine says to wait for the
//! resync (converged or stalled) or is done, sleeping as it asks in between. The blocking mode
//! of `apply` and the demo.

use std::time::{Duration, Instant};

use crate::api::{CognitiveServicesAccount, CognitiveServicesDeployment};
use crate::arm::ArmClient;
use crate::engine::{AccountContext, DeploymentOutcome, Engine, Next, Outcome};

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
    if deleting && resource.metadata.deletion_timestamp.is_none() {
        // As the API server would mark it: the deletion begins now, so that the verdict says
        // "purged" only of a purge made by this deletion.
        resource.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
    }
    settle(timeout, async || {
        let outcome = engine
            .reconcile(client, resource, deleting, jiff::Timestamp::now())
            .await;
        resource.status = Some(outcome.status.clone());
        progress(&outcome);
        let next = outcome.next;
        (outcome, next)
    })
    .await
}

/// [`converge`] for a deployment of the account `account` describes.
pub async fn converge_deployment(
    engine: &Engine,
    client: &ArmClient,
    resource: &mut CognitiveServicesDeployment,
    account: &AccountContext,
    deleting: bool,
    timeout: Duration,
    mut progress: impl FnMut(&DeploymentOutcome),
) -> DeploymentOutcome {
    settle(timeout, async || {
        // Subscribed before the reconcile, so that a gate freed meanwhile is not missed.
        let mut freed = engine.write_gate().subscribe();
        let outcome = engine
            .reconcile_deployment(client, resource, account, deleting, jiff::Timestamp::now())
            .await;
        resource.status = Some(outcome.status.clone());
        progress(&outcome);
        let mut next = outcome.next;
        if let (Next::After(wait), Some(target)) = (next, &account.target)
            && waits_for_the_gate(&outcome)
        {
            // Another write on the account is in flight: go again as soon as it ends.
            wait_until_freed(&mut freed, &target.id(), wait).await;
            next = Next::After(Duration::ZERO);
        }
        (outcome, next)
    })
    .await
}

fn waits_for_the_gate(outcome: &DeploymentOutcome) -> bool {
    crate::planner::status::find(&outcome.status.conditions, crate::planner::status::READY)
        .is_some_and(|c| c.reason == "WaitingForAccountWrite")
}

/// Until the write gate of `account_id` frees, or `at_most` passes.
async fn wait_until_freed(
    freed: &mut tokio::sync::broadcast::Receiver<String>,
    account_id: &str,
    at_most: Duration,
) {
    let account_id = account_id.to_ascii_lowercase();
    let _ = tokio::time::timeout(at_most, async {
        loop {
            match freed.recv().await {
                Ok(id) if id == account_id => return,
                Ok(_) => continue,
                // Missed notices (or none to come): look again now.
                Err(_) => return,
            }
        }
    })
    .await;
}

/// Runs `reconcile` until it says to wait for the resync or is done, or `timeout` passes,
/// sleeping as it asks in between.
async fn settle<O>(timeout: Duration, mut reconcile: impl AsyncFnMut() -> (O, Next)) -> O {
    let deadline = Instant::now() + timeout;
    let mut failures = 0;
    loop {
        let (outcome, next) = reconcile().await;
        let wait = match next {
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
