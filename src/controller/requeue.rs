//! When to reconcile a resource again: the engine's answer turned into a delay, with per-resource
//! exponential backoff for failures and jitter so that many resources do not move in lockstep.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::Next;

/// First backoff after a failure; doubles with each consecutive failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// The longest backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// Backoffs vary by ±20%.
const BACKOFF_JITTER: f64 = 0.2;
/// Drift checks vary by ±10% of the resync interval.
const RESYNC_JITTER: f64 = 0.1;

/// What the controller does with a resource after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Reconcile again after this delay (unless a change comes first).
    After(Duration),
    /// Only a change to the resource (or its Secret) brings it back.
    AwaitChange,
}

impl Requeue {
    pub fn action(self) -> kube::runtime::controller::Action {
        match self {
            Requeue::After(delay) => kube::runtime::controller::Action::requeue(delay),
            Requeue::AwaitChange => kube::runtime::controller::Action::await_change(),
        }
    }
}

/// Consecutive failures per resource (`namespace/name`), for exponential backoff.
#[derive(Debug, Default)]
pub struct Backoffs {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoffs {
    /// Counts one more failure of `key` and returns the delay before the next attempt: at least
    /// the server's `retry_after`.
    pub fn fail(&self, key: &str, retry_after: Option<Duration>) -> Duration {
        let failures = {
            let mut map = self.failures.lock().expect("backoff lock");
            let count = map.entry(key.to_string()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        };
        backoff(failures, retry_after, fastrand::f64())
    }

    /// A success: the next failure starts again from the base delay.
    pub fn reset(&self, key: &str) {
        self.failures.lock().expect("backoff lock").remove(key);
    }

    pub fn failures(&self, key: &str) -> u32 {
        self.failures
            .lock()
            .expect("backoff lock")
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

/// The backoff after `failures` consecutive failures (1 = the first): 1s doubling to the 5 min
/// cap, ±20% (`unit` in [0, 1) picks the point in that range), never below `retry_after`.
pub fn backoff(failures: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let exponential = BACKOFF_BASE
        .saturating_mul(1u32 << doublings)
        .min(BACKOFF_CAP);
    jitter(exponential, BACKOFF_JITTER, unit).max(retry_after.unwrap_or_default())
}

/// `interval` ±`fraction`, with `unit` in [0, 1) choosing where in that range.
fn jitter(interval: Duration, fraction: f64, unit: f64) -> Duration {
    let factor = 1.0 - fraction + 2.0 * fraction * unit.clamp(0.0, 1.0);
    interval.mul_f64(factor)
}

/// A drift check `resync` from now, ±10%.
pub fn resync_delay(resync: Duration, unit: f64) -> Duration {
    jitter(resync, RESYNC_JITTER, unit)
}

/// Turns the engine's answer into a requeue, counting failures for `key`.
pub fn requeue_for(
    next: Next,
    resync: Option<Duration>,
    key: &str,
    backoffs: &Backoffs,
) -> Requeue {
    if !matches!(next, Next::Backoff { .. }) {
        backoffs.reset(key);
    }
    match next {
        Next::After(delay) => Requeue::After(delay),
        Next::Backoff { retry_after } => Requeue::After(backoffs.fail(key, retry_after)),
        Next::Resync => resync_requeue(resync),
        Next::Done => Requeue::AwaitChange,
    }
}

/// The periodic drift check, or none when the resource turned it off (`resyncInterval: 0`).
pub fn resync_requeue(resync: Option<Duration>) -> Requeue {
    match resync {
        Some(interval) => Requeue::After(resync_delay(interval, fastrand::f64())),
        None => Requeue::AwaitChange,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_the_cap() {
        assert_eq!(backoff(1, None, 0.5), Duration::from_secs(1));
        assert_eq!(backoff(2, None, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(4, None, 0.5), Duration::from_secs(8));
        assert_eq!(backoff(30, None, 0.5), BACKOFF_CAP);
    }

    #[test]
    fn backoff_jitter_stays_within_twenty_percent() {
        assert_eq!(backoff(4, None, 0.0), Duration::from_secs_f64(6.4));
        assert_eq!(backoff(4, None, 1.0), Duration::from_secs_f64(9.6));
        assert!(backoff(30, None, 1.0) <= BACKOFF_CAP.mul_f64(1.2));
    }

    #[test]
    fn backoff_honours_the_servers_retry_after() {
        let retry_after = Some(Duration::from_secs(30));
        assert_eq!(backoff(1, retry_after, 0.9), Duration::from_secs(30));
    }

    #[test]
    fn resync_is_jittered_by_ten_percent() {
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(resync_delay(ten_minutes, 0.0), Duration::from_secs(540));
        assert_eq!(resync_delay(ten_minutes, 1.0), Duration::from_secs(660));
    }

    #[test]
    fn failures_count_per_resource_and_success_resets_them() {
        let backoffs = Backoffs::default();
        let retry = Next::Backoff { retry_after: None };
        requeue_for(retry, None, "a/x", &backoffs);
        requeue_for(retry, None, "a/x", &backoffs);
        requeue_for(retry, None, "b/y", &backoffs);
        assert_eq!(backoffs.failures("a/x"), 2);
        assert_eq!(backoffs.failures("b/y"), 1);
        requeue_for(Next::Resync, None, "a/x", &backoffs);
        assert_eq!(backoffs.failures("a/x"), 0);
    }

    #[test]
    fn the_engines_answer_maps_to_a_requeue() {
        let backoffs = Backoffs::default();
        let five = Duration::from_secs(5);
        assert_eq!(
            requeue_for(Next::After(five), None, "k", &backoffs),
            Requeue::After(five)
        );
        assert_eq!(
            requeue_for(Next::Resync, None, "k", &backoffs),
            Requeue::AwaitChange
        );
        assert_eq!(
            requeue_for(Next::Done, Some(five), "k", &backoffs),
            Requeue::AwaitChange
        );
        let Requeue::After(resync) = requeue_for(Next::Resync, Some(five), "k", &backoffs) else {
            panic!("a resync interval requeues");
        };
        assert!(resync >= five.mul_f64(0.9) && resync <= five.mul_f64(1.1));
    }
}
