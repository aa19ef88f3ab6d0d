//! Client-side token buckets mirroring ARM's throttling, so requests wait for a token instead of
//! being sent into a 429.
//!
//! ARM keeps one bucket per principal, subscription and class (read, write, delete). We keep the
//! same buckets, starting from Azure's published numbers, and let each waiter take its token up
//! front (so concurrent callers queue fairly without polling). Other clients of the principal
//! spend the same buckets, so every answer's `x-ms-ratelimit-remaining-subscription-*` count
//! corrects ours (moving every waiter by the difference), the corrections teach us the refill
//! rate that is left to us, and a 429's Retry-After holds everyone back. A new bucket sends one
//! request and waits for its answer before it believes a full bucket.
//!
//! A caller that would rather not wait in line (a reconcile holding one of the controller's
//! workers) can book its token instead ([`RateLimiter::book`]): it takes its place in line at
//! once, due when a waiter there would get its token, and the request sent later inside
//! [`with_booked_token`] uses that place without queueing again.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::bucket::{Bucket, Promise};

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

/// A booked token whose booker has not asked after it for this long is given up (the booker
/// is gone).
pub(super) const BOOKING_LIFETIME: Duration = Duration::from_secs(60);

tokio::task_local! {
    /// Set by [`with_booked_token`]: the next request of the task uses this booked token.
    static BOOKED: Cell<Option<Booking>>;
}

/// Runs `request` so that its first request of the booked class uses the token `booking`
/// ([`RateLimiter::book`]) instead of queueing for a new one.
pub async fn with_booked_token<F: std::future::Future>(booking: Booking, request: F) -> F::Output {
    BOOKED.scope(Cell::new(Some(booking)), request).await
}

/// A token booked for a request to be sent later: which limiter and bucket, and its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Booking {
    limiter: u64,
    /// The bucket's subscription, hashed (so that a booking stays small and `Copy`).
    subscription: u64,
    class: RequestClass,
    promise: Promise,
}

/// Token buckets for every (subscription, class) this client talks to.
#[derive(Debug)]
pub struct RateLimiter {
    /// Tells this limiter's bookings from another's (each client has its own).
    id: u64,
    limits: RateLimits,
    /// By subscription, then class (looked up by `&str`: no allocation per request).
    buckets: Mutex<HashMap<String, HashMap<RequestClass, Bucket>>>,
}

/// A token taken: the request is on its way. Tell the limiter what the answer said of the
/// server's count with [`Permit::answered`]; dropping it unanswered (a transport error) only
/// stops counting it in flight.
#[must_use = "a permit says when its request is answered"]
pub struct Permit<'a> {
    limiter: &'a RateLimiter,
    pub subscription: &'a str,
    pub class: RequestClass,
    /// How long the request waited for its token.
    pub waited: Duration,
    number: u64,
    sent_at: Instant,
    answered: bool,
}

impl Permit<'_> {
    /// The request was answered; `remaining` is the server's count from its
    /// `x-ms-ratelimit-remaining-*` header, if it sent one.
    pub fn answered(mut self, remaining: Option<f64>) {
        self.answered = true;
        let (number, round_trip) = (self.number, self.sent_at.elapsed());
        self.limiter
            .with_bucket(self.subscription, self.class, |bucket, shape, now| {
                let stale = number < bucket.latest_answered;
                let first = !bucket.known;
                bucket.answered(number, Some(round_trip));
                if let Some(remaining) = remaining {
                    bucket.correct(shape, remaining, stale, now);
                }
                if first {
                    // What the others spent before we came says nothing of their rate.
                    bucket.restart_window(now);
                }
            });
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.limiter
                .with_bucket(self.subscription, self.class, |bucket, _, _| {
                    bucket.answered(0, None)
                });
        }
    }
}

/// A promise being waited for; dropped before it is kept (the caller gave up), it stops
/// counting as unsent.
struct Waiting<'a> {
    limiter: &'a RateLimiter,
    subscription: &'a str,
    class: RequestClass,
    kept: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.limiter
                .with_bucket(self.subscription, self.class, |bucket, _, _| {
                    bucket.settled += 1;
                });
        }
    }
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        RateLimiter {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token, waiting for one if the bucket is empty; inside [`with_booked_token`],
    /// the token booked earlier.
    pub async fn acquire<'a>(&'a self, subscription: &'a str, class: RequestClass) -> Permit<'a> {
        let started = Instant::now();
        let booked = BOOKED.try_with(Cell::get).ok().flatten();
        let redeemed = booked
            .filter(|booking| self.owns(booking, subscription, class))
            .filter(|booking| {
                self.with_bucket(subscription, class, |b, _, _| {
                    b.bookings.remove(&booking.promise)
                })
                .is_some()
            });
        if redeemed.is_some() {
            BOOKED.with(|b| b.set(None));
        }
        let promise = redeemed.map_or_else(
            || self.with_bucket(subscription, class, |b, _, _| b.promise()),
            |booking| booking.promise,
        );
        let mut waiting = Waiting {
            limiter: self,
            subscription,
            class,
            kept: false,
        };
        let number = self.wait_until_due(subscription, class, promise).await;
        waiting.kept = true;
        Permit {
            limiter: self,
            subscription,
            class,
            waited: started.elapsed(),
            answered: false,
            number,
            sent_at: Instant::now(),
        }
    }

    /// Waits until `promise` is due, and keeps it (in the same look at the bucket, so that two
    /// waiters never both take the last token or both pass the first-answer hold).
    async fn wait_until_due(
        &self,
        subscription: &str,
        class: RequestClass,
        promise: Promise,
    ) -> u64 {
        loop {
            let earlier = self.with_bucket(subscription, class, |b, _, _| b.earlier.clone());
            let notified = earlier.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let kept = self.with_bucket(subscription, class, |bucket, _, now| {
                if let Some(held_until) = bucket.holding(now) {
                    return Err(held_until);
                }
                let due = bucket.due(promise, now);
                if due <= now {
                    Ok(bucket.keep(now))
                } else {
                    Err(due)
                }
            });
            let until = match kept {
                Ok(number) => return number,
                Err(until) => until,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until) => {}
                _ = notified => {}
            }
        }
    }

    /// How many tokens are promised beyond what the bucket holds now: the requests a new one
    /// would queue behind.
    pub fn queued(&self, subscription: &str, class: RequestClass) -> f64 {
        self.with_bucket(subscription, class, |bucket, _, _| bucket.queued())
    }

    /// Takes a place in line for a request to be sent later, inside [`with_booked_token`], and
    /// says how long until it is due. A booking its booker stops asking after
    /// ([`RateLimiter::booking_due`]) for a minute is given up.
    pub fn book(&self, subscription: &str, class: RequestClass) -> (Booking, Duration) {
        self.with_bucket(subscription, class, |bucket, _, now| {
            let promise = bucket.promise();
            bucket.bookings.insert(promise, now);
            let due = bucket.due(promise, now).saturating_duration_since(now);
            let booking = Booking {
                limiter: self.id,
                subscription: hash(subscription),
                class,
                promise,
            };
            (booking, due)
        })
    }

    /// How long until `booking` is due, by the count and rate as they are now; `None` when it
    /// was given up, or is not one of this limiter's for this subscription and class.
    pub fn booking_due(
        &self,
        subscription: &str,
        class: RequestClass,
        booking: Booking,
    ) -> Option<Duration> {
        if !self.owns(&booking, subscription, class) {
            return None;
        }
        self.with_bucket(subscription, class, |bucket, _, now| {
            *bucket.bookings.get_mut(&booking.promise)? = now;
            Some(
                bucket
                    .due(booking.promise, now)
                    .saturating_duration_since(now),
            )
        })
    }

    /// Gives `booking` up: its place in line goes to the ones behind it.
    pub fn release(&self, subscription: &str, class: RequestClass, booking: Booking) {
        if self.owns(&booking, subscription, class) {
            self.with_bucket(subscription, class, |bucket, _, _| {
                if bucket.bookings.remove(&booking.promise).is_some() {
                    bucket.settled += 1;
                    bucket.earlier.notify_waiters();
                }
            });
        }
    }

    fn owns(&self, booking: &Booking, subscription: &str, class: RequestClass) -> bool {
        booking.limiter == self.id
            && booking.subscription == hash(subscription)
            && booking.class == class
    }

    /// The server said 429: nobody sends before `retry_after` passes.
    pub fn observe_throttled(
        &self,
        subscription: &str,
        class: RequestClass,
        retry_after: Duration,
    ) {
        self.with_bucket(subscription, class, |bucket, _, now| {
            let until = now + retry_after;
            bucket.blocked_until = Some(bucket.blocked_until.map_or(until, |b| b.max(until)));
            // The server has no token left, whatever it said of its count.
            bucket.tokens = bucket.tokens.min(0.0);
        });
    }

    fn with_bucket<T>(
        &self,
        subscription: &str,
        class: RequestClass,
        act: impl FnOnce(&mut Bucket, BucketShape, Instant) -> T,
    ) -> T {
        let shape = self.limits.shape(class);
        let now = Instant::now();
        let mut subscriptions = self.buckets.lock().expect("rate limiter lock");
        if !subscriptions.contains_key(subscription) {
            subscriptions.insert(subscription.to_string(), HashMap::new());
        }
        let bucket = subscriptions
            .get_mut(subscription)
            .expect("inserted above")
            .entry(class)
            .or_insert_with(|| Bucket::new(shape, now));
        bucket.refill(shape, now);
        bucket.give_up_forgotten_bookings(now);
        act(bucket, shape, now)
    }
}

fn hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arm::bucket::{RESERVE, WINDOW_RESPONSES};

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

    /// One request, answered at once with the server's count (if it sent one).
    async fn send(limiter: &RateLimiter, remaining: Option<f64>) -> Duration {
        let permit = limiter.acquire("s", RequestClass::Write).await;
        let waited = permit.waited;
        permit.answered(remaining);
        waited
    }

    fn rate(limiter: &RateLimiter) -> f64 {
        limiter.with_bucket("s", RequestClass::Write, |bucket, _, _| bucket.rate)
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_lets_a_burst_through_then_paces_at_the_refill_rate() {
        let limiter = limiter(3.0, 10.0);
        let mut waits = Vec::new();
        for _ in 0..5 {
            waits.push(send(&limiter, None).await);
        }
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn until_the_first_answer_one_request_goes_then_the_servers_count_decides() {
        let limiter = limiter(200.0, 10.0);
        let first = limiter.acquire("s", RequestClass::Write).await;
        let second = limiter.acquire("s", RequestClass::Write);
        tokio::pin!(second);
        // Held back while the first is unanswered, though our count says 199 are left.
        assert!(futures::poll!(second.as_mut()).is_pending());
        // The server had only 3 (others spent the rest): two more go, then one per 100 ms.
        first.answered(Some(3.0 + RESERVE));
        let second = second.await;
        assert!(second.waited < Duration::from_millis(10));
        second.answered(None);
        assert!(send(&limiter, None).await.is_zero());
        assert!(send(&limiter, None).await.is_zero());
        assert_eq!(send(&limiter, None).await, Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn the_servers_count_corrects_ours_both_ways() {
        let limiter = limiter(100.0, 10.0);
        // Fewer than we counted: the next request waits for a refill.
        send(&limiter, Some(RESERVE)).await;
        assert_eq!(send(&limiter, None).await, Duration::from_millis(100));
        // More than we counted: requests go at once again.
        send(&limiter, Some(50.0 + RESERVE)).await;
        for _ in 0..40 {
            assert!(send(&limiter, None).await.is_zero());
        }
    }

    /// ARM's bucket for one class, from which another client takes `others` tokens a second.
    struct Server {
        tokens: f64,
        refill: f64,
        others: f64,
        at: Instant,
        throttled: u32,
    }

    impl Server {
        /// Receives one request: admitted (the count left) or 429.
        fn receive(&mut self, limiter: &RateLimiter, permit: Permit<'_>) {
            let now = Instant::now();
            let gained = (self.refill - self.others) * (now - self.at).as_secs_f64();
            self.tokens = (self.tokens + gained).clamp(0.0, 100.0);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
            } else {
                self.throttled += 1;
                limiter.observe_throttled("s", RequestClass::Write, Duration::from_secs(1));
            }
            permit.answered(Some(self.tokens.floor()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn others_spending_the_refill_lower_our_rate_and_a_full_bucket_restores_it() {
        let limiter = limiter(100.0, 10.0);
        let mut server = Server {
            tokens: 100.0,
            refill: 10.0,
            others: 6.0,
            at: Instant::now(),
            throttled: 0,
        };
        for _ in 0..300 {
            let permit = limiter.acquire("s", RequestClass::Write).await;
            server.receive(&limiter, permit);
        }
        let learnt = rate(&limiter);
        assert!(
            (3.0..=5.0).contains(&learnt),
            "learnt {learnt}/s of the 4/s left"
        );
        assert!(
            server.throttled <= 3,
            "{} of 300 answered 429",
            server.throttled
        );
        // The others stop and the bucket stays full: the whole rate is ours again, slowly.
        for _ in 0..60 {
            tokio::time::advance(Duration::from_secs(2)).await;
            for _ in 0..WINDOW_RESPONSES {
                send(&limiter, Some(100.0)).await;
            }
        }
        assert!(rate(&limiter) > 9.9, "{}", rate(&limiter));
    }

    #[tokio::test(start_paused = true)]
    async fn a_booked_token_is_due_in_line_and_its_request_does_not_queue_again() {
        let limiter = limiter(1.0, 10.0);
        let (first, due) = limiter.book("s", RequestClass::Write);
        assert!(due.is_zero());
        let (second, due) = limiter.book("s", RequestClass::Write);
        assert_eq!(due, Duration::from_millis(100));
        assert_eq!(limiter.queued("s", RequestClass::Write), 1.0);
        let due = limiter.booking_due("s", RequestClass::Write, second);
        assert_eq!(due, Some(Duration::from_millis(100)));
        // The booked ones take theirs: the first at once, the second when due.
        assert!(
            with_booked_token(first, send(&limiter, None))
                .await
                .is_zero()
        );
        let waited = with_booked_token(second, async {
            // A read inside the same scope neither uses nor spends the write's booking.
            let read = limiter.acquire("s", RequestClass::Read).await;
            read.answered(None);
            send(&limiter, None).await
        })
        .await;
        assert_eq!(waited, Duration::from_millis(100));
        // A booking used up: its scope queues like anyone.
        let late = with_booked_token(second, send(&limiter, None)).await;
        assert_eq!(late, Duration::from_millis(100));
        assert_eq!(limiter.booking_due("s", RequestClass::Write, second), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_booking_given_back_or_forgotten_frees_its_place_and_is_valid_only_where_it_was_made()
    {
        let limiter = limiter(1.0, 10.0);
        send(&limiter, None).await;
        let (booking, due) = limiter.book("s", RequestClass::Write);
        assert_eq!(due, Duration::from_millis(100));
        // Another subscription, class or limiter does not know it.
        assert_eq!(limiter.booking_due("t", RequestClass::Write, booking), None);
        assert_eq!(
            limiter.booking_due("s", RequestClass::Delete, booking),
            None
        );
        let other = self::limiter(1.0, 10.0);
        other.book("s", RequestClass::Write);
        assert_eq!(other.booking_due("s", RequestClass::Write, booking), None);
        // Given back, the next request takes its place.
        limiter.release("s", RequestClass::Write, booking);
        assert_eq!(limiter.booking_due("s", RequestClass::Write, booking), None);
        assert_eq!(send(&limiter, None).await, Duration::from_millis(100));
        // Never asked after for a minute, a booking leaves the line by itself.
        let (forgotten, _) = limiter.book("s", RequestClass::Write);
        tokio::time::advance(BOOKING_LIFETIME + Duration::from_secs(2)).await;
        assert_eq!(limiter.queued("s", RequestClass::Write), 0.0);
        assert_eq!(
            limiter.booking_due("s", RequestClass::Write, forgotten),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn classes_and_subscriptions_have_separate_buckets() {
        let limiter = limiter(1.0, 1.0);
        send(&limiter, None).await;
        let read = limiter.acquire("s", RequestClass::Read).await;
        assert!(read.waited.is_zero());
        let other = limiter.acquire("other", RequestClass::Write).await;
        assert!(other.waited.is_zero());
        assert!(!send(&limiter, None).await.is_zero());
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_requests_back_and_a_caller_that_gives_up_leaves_nothing_behind() {
        let limiter = limiter(100.0, 10.0);
        send(&limiter, None).await;
        limiter.observe_throttled("s", RequestClass::Write, Duration::from_secs(7));
        let mut waiting = Box::pin(limiter.acquire("s", RequestClass::Write));
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(waiting);
        let waiting =
            limiter.with_bucket("s", RequestClass::Write, |b, _, _| b.promised - b.settled);
        assert_eq!(waiting, 0);
        assert!(send(&limiter, None).await >= Duration::from_secs(6));
    }
}
