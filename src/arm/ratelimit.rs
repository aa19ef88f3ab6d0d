//! Client-side token buckets mirroring ARM's throttling, so requests wait for a token instead of
//! being sent into a 429.
//!
//! ARM keeps one bucket per principal, subscription and class (read, write, delete). We keep the
//! same buckets with the same numbers, let each waiter reserve its token up front (so concurrent
//! callers queue fairly without polling), and correct our count from the
//! `x-ms-ratelimit-remaining-subscription-*` headers and from any 429 that still happens.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// ARM's request classes, each with its own bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestClass {
    Read,
    Write,
    Delete,
}

impl RequestClass {
    pub fn for_method(method: &reqwest::Method) -> Self {
        match *method {
            reqwest::Method::GET | reqwest::Method::HEAD => RequestClass::Read,
            reqwest::Method::DELETE => RequestClass::Delete,
            _ => RequestClass::Write,
        }
    }

    /// The response header in which ARM reports what is left of this bucket.
    pub fn remaining_header(self) -> &'static str {
        match self {
            RequestClass::Read => "x-ms-ratelimit-remaining-subscription-reads",
            RequestClass::Write => "x-ms-ratelimit-remaining-subscription-writes",
            RequestClass::Delete => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }
}

/// Size and refill rate of one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketShape {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

/// The three buckets' shapes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    pub reads: BucketShape,
    pub writes: BucketShape,
    pub deletes: BucketShape,
}

impl RateLimits {
    /// Azure's documented per-principal, per-subscription limits.
    pub fn azure() -> Self {
        RateLimits {
            reads: BucketShape {
                capacity: 250.0,
                refill_per_sec: 25.0,
            },
            writes: BucketShape {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
            deletes: BucketShape {
                capacity: 200.0,
                refill_per_sec: 10.0,
            },
        }
    }

    /// The same buckets refilling `factor` times faster (benchmarks compress time this way).
    pub fn scaled(mut self, factor: f64) -> Self {
        for shape in [&mut self.reads, &mut self.writes, &mut self.deletes] {
            shape.refill_per_sec *= factor;
        }
        self
    }

    fn shape(&self, class: RequestClass) -> BucketShape {
        match class {
            RequestClass::Read => self.reads,
            RequestClass::Write => self.writes,
            RequestClass::Delete => self.deletes,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    /// May go negative: each waiter reserves its token and sleeps off the deficit.
    tokens: f64,
    refilled_at: Instant,
    /// After a 429, nobody sends before this instant.
    blocked_until: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, shape: BucketShape, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * shape.refill_per_sec).min(shape.capacity);
        self.refilled_at = now;
    }
}

/// Token buckets for every (subscription, class) this client talks to.
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(String, RequestClass), Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token, waiting for one if the bucket is empty. Returns how long it waited.
    pub async fn acquire(&self, subscription: &str, class: RequestClass) -> Duration {
        let wait = self.reserve(subscription, class, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Reserves a token now and says how long the caller must wait before using it.
    fn reserve(&self, subscription: &str, class: RequestClass, now: Instant) -> Duration {
        let shape = self.limits.shape(class);
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets
            .entry((subscription.to_string(), class))
            .or_insert_with(|| Bucket {
                tokens: shape.capacity,
                refilled_at: now,
                blocked_until: None,
            });
        bucket.refill(shape, now);
        bucket.tokens -= 1.0;
        let deficit = if bucket.tokens < 0.0 {
            Duration::from_secs_f64(-bucket.tokens / shape.refill_per_sec.max(f64::MIN_POSITIVE))
        } else {
            Duration::ZERO
        };
        let blocked = bucket
            .blocked_until
            .map(|until| until.saturating_duration_since(now))
            .unwrap_or_default();
        deficit.max(blocked)
    }

    /// Adopts the server's count when it is lower than ours (another client shares the bucket).
    pub fn observe_remaining(&self, subscription: &str, class: RequestClass, remaining: f64) {
        let shape = self.limits.shape(class);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if let Some(bucket) = buckets.get_mut(&(subscription.to_string(), class)) {
            bucket.refill(shape, now);
            if remaining < bucket.tokens {
                bucket.tokens = remaining;
            }
        }
    }

    /// The server said 429: the bucket is empty, and nobody sends before `retry_after` passes.
    pub fn observe_throttled(
        &self,
        subscription: &str,
        class: RequestClass,
        retry_after: Duration,
    ) {
        let shape = self.limits.shape(class);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let bucket = buckets
            .entry((subscription.to_string(), class))
            .or_insert_with(|| Bucket {
                tokens: 0.0,
                refilled_at: now,
                blocked_until: None,
            });
        bucket.refill(shape, now);
        bucket.tokens = bucket.tokens.min(0.0);
        let until = now + retry_after;
        bucket.blocked_until = Some(bucket.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(capacity: f64, refill: f64) -> RateLimiter {
        let shape = BucketShape {
            capacity,
            refill_per_sec: refill,
        };
        RateLimiter::new(RateLimits {
            reads: shape,
            writes: shape,
            deletes: shape,
        })
    }

    #[test]
    fn a_full_bucket_lets_a_burst_through_then_paces_at_the_refill_rate() {
        let limiter = limiter(3.0, 10.0);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..5)
            .map(|_| limiter.reserve("s", RequestClass::Write, now))
            .collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(200));
    }

    #[test]
    fn classes_and_subscriptions_have_separate_buckets() {
        let limiter = limiter(1.0, 1.0);
        let now = Instant::now();
        assert!(limiter.reserve("s", RequestClass::Write, now).is_zero());
        assert!(limiter.reserve("s", RequestClass::Read, now).is_zero());
        assert!(limiter.reserve("other", RequestClass::Write, now).is_zero());
        assert!(!limiter.reserve("s", RequestClass::Write, now).is_zero());
    }

    #[test]
    fn the_servers_lower_count_and_429s_hold_requests_back() {
        let limiter = limiter(100.0, 10.0);
        let now = Instant::now();
        limiter.reserve("s", RequestClass::Read, now);
        limiter.observe_remaining("s", RequestClass::Read, 0.0);
        assert!(
            limiter.reserve("s", RequestClass::Read, Instant::now()) > Duration::from_millis(50)
        );
        limiter.observe_throttled("s", RequestClass::Delete, Duration::from_secs(7));
        assert!(
            limiter.reserve("s", RequestClass::Delete, Instant::now()) > Duration::from_secs(6)
        );
    }
}
