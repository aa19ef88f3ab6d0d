//! Per-subscription token buckets with ARM's request classes. They refill on real monotonic time
//! (not the injectable clock): throttling is about request rates, which tests cannot fake.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::Method;

use super::{BucketConfig, ThrottleConfig};

/// ARM's request classes: GET is a read, DELETE a delete, everything else a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestClass {
    Read,
    Write,
    Delete,
}

impl RequestClass {
    pub(crate) fn of(method: &Method) -> Self {
        match *method {
            Method::GET | Method::HEAD => Self::Read,
            Method::DELETE => Self::Delete,
            _ => Self::Write,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Whole tokens left per class, for the `x-ms-ratelimit-remaining-subscription-*` headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Remaining {
    pub reads: u64,
    pub writes: u64,
    pub deletes: u64,
}

pub(crate) enum Admission {
    Admitted(Remaining),
    /// Seconds until one token is back.
    Throttled {
        remaining: Remaining,
        retry_after: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Bucket {
    fn full(config: &BucketConfig, now: Instant) -> Self {
        Self {
            tokens: config.capacity,
            refilled_at: now,
        }
    }

    fn refill(&mut self, config: &BucketConfig, rate: f64, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(config.capacity);
        self.refilled_at = now;
    }

    fn seconds_until_token(&self, rate: f64) -> u64 {
        if rate <= 0.0 {
            return u64::from(u32::MAX);
        }
        let seconds = ((1.0 - self.tokens) / rate).ceil();
        (seconds as u64).max(1)
    }
}

pub(crate) struct Throttler {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<String, [Bucket; 3]>>,
}

impl Throttler {
    pub(crate) fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn class_config(&self, class: RequestClass) -> &BucketConfig {
        match class {
            RequestClass::Read => &self.config.reads,
            RequestClass::Write => &self.config.writes,
            RequestClass::Delete => &self.config.deletes,
        }
    }

    fn rate(&self, class: RequestClass) -> f64 {
        self.class_config(class).refill_per_sec * self.config.time_scale
    }

    /// Takes one token of `class` from the subscription's bucket, or says how long to wait.
    pub(crate) fn admit(&self, subscription: &str, class: RequestClass) -> Admission {
        self.with_buckets(subscription, |throttler, buckets| {
            let bucket = &mut buckets[class.index()];
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return Admission::Admitted(remaining(buckets));
            }
            let retry_after = bucket.seconds_until_token(throttler.rate(class));
            Admission::Throttled {
                remaining: remaining(buckets),
                retry_after,
            }
        })
    }

    /// Tokens left without taking one (for answers that consumed nothing, like injected faults).
    pub(crate) fn peek(&self, subscription: &str) -> Remaining {
        self.with_buckets(subscription, |_, buckets| remaining(buckets))
    }

    fn with_buckets<T>(
        &self,
        subscription: &str,
        act: impl FnOnce(&Self, &mut [Bucket; 3]) -> T,
    ) -> T {
        let now = Instant::now();
        let mut all = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let buckets = all
            .entry(subscription.to_ascii_lowercase())
            .or_insert_with(|| {
                [
                    RequestClass::Read,
                    RequestClass::Write,
                    RequestClass::Delete,
                ]
                .map(|class| Bucket::full(self.class_config(class), now))
            });
        for class in [
            RequestClass::Read,
            RequestClass::Write,
            RequestClass::Delete,
        ] {
            buckets[class.index()].refill(self.class_config(class), self.rate(class), now);
        }
        act(self, buckets)
    }
}

fn remaining(buckets: &[Bucket; 3]) -> Remaining {
    let whole = |bucket: &Bucket| bucket.tokens.max(0.0).floor() as u64;
    Remaining {
        reads: whole(&buckets[0]),
        writes: whole(&buckets[1]),
        deletes: whole(&buckets[2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empties_then_throttles_with_a_wait() {
        let mut config = ThrottleConfig::azure();
        config.writes = BucketConfig {
            capacity: 2.0,
            refill_per_sec: 0.5,
        };
        let throttler = Throttler::new(config);
        assert!(
            matches!(throttler.admit("s", RequestClass::Write), Admission::Admitted(r) if r.writes == 1)
        );
        assert!(
            matches!(throttler.admit("s", RequestClass::Write), Admission::Admitted(r) if r.writes == 0)
        );
        match throttler.admit("s", RequestClass::Write) {
            Admission::Throttled {
                retry_after,
                remaining,
            } => {
                assert_eq!(retry_after, 2);
                assert_eq!(remaining.reads, 250);
            }
            Admission::Admitted(_) => panic!("third write should be throttled"),
        }
        assert!(matches!(
            throttler.admit("other", RequestClass::Write),
            Admission::Admitted(_)
        ));
    }
}
