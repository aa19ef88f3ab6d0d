//! One of the client's token buckets: ARM's shape for a (subscription, class), the tokens
//! promised to waiters and bookings, and what the server's remaining counts teach about the
//! share other clients spend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::ratelimit::{BOOKING_LIFETIME, BucketShape};

/// Tokens left aside in the server's count, besides what the others spend while one of our
/// requests is on its way (which the count cannot show yet).
pub(super) const RESERVE: f64 = 1.0;

/// The share of the refill never assumed to be taken by others, however busy they look.
const MIN_SHARE: f64 = 0.05;

/// How long requests of a new bucket wait for the first answer at most.
const FIRST_ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Responses, and tokens of the published refill, that one estimate of the others' rate spans
/// at least (so the estimate is as quick, and as noisy, at any rate).
pub(super) const WINDOW_RESPONSES: u32 = 10;
const WINDOW_TOKENS: f64 = 20.0;

/// While the server's bucket is nearly full, the others' rate cannot be seen; what was learnt
/// of it fades by this share per window.
const FADE: f64 = 0.1;

/// A token promised to a waiter or a booking: its place in line, counting every promise made
/// by the bucket.
pub(super) type Promise = u64;

#[derive(Debug)]
pub(super) struct Bucket {
    /// Our count of the server's tokens: refilled at `rate`, less what we sent, corrected by
    /// every answer's count.
    pub(super) tokens: f64,
    pub(super) refilled_at: Instant,
    /// The refill rate left to us: the published one, less what the server's counts show that
    /// other clients of the principal spend.
    pub(super) rate: f64,
    /// After a 429, nobody sends before this instant.
    pub(super) blocked_until: Option<Instant>,
    /// Promises made, and promises settled (kept, or given up by their caller); the ones in
    /// between wait in line, in order.
    pub(super) promised: u64,
    pub(super) settled: u64,
    /// Booked promises, with when their booker last asked after them.
    pub(super) bookings: HashMap<Promise, Instant>,
    /// Sent and not yet answered: the server's count may not show them yet.
    pub(super) in_flight: u32,
    /// Requests sent (each answer knows its number), and the latest one answered: an answer
    /// overtaken by a later request's is stale, and only ever lowers our count.
    pub(super) sent: u64,
    pub(super) latest_answered: u64,
    /// A request's usual time from sent to answered, in seconds.
    pub(super) round_trip: f64,
    /// Whether a request has been answered; until then (for a moment at most) one request at a
    /// time goes, so that a count others have spent is learnt before a burst is sent into it.
    pub(super) known: bool,
    /// When the first request went.
    pub(super) first_sent: Option<Instant>,
    /// When given-up bookings were last looked for.
    pub(super) swept: Instant,
    /// Net tokens the corrections took away since `window_start`, over `window_responses`.
    pub(super) window_start: Instant,
    pub(super) window_taken: f64,
    pub(super) window_responses: u32,
    /// Wakes waiters when a correction gives tokens back, or the first answer comes.
    pub(super) earlier: Arc<Notify>,
}

impl Bucket {
    pub(super) fn new(shape: BucketShape, now: Instant) -> Self {
        Bucket {
            tokens: shape.capacity,
            refilled_at: now,
            rate: shape.refill_per_sec,
            blocked_until: None,
            promised: 0,
            settled: 0,
            bookings: HashMap::new(),
            in_flight: 0,
            sent: 0,
            latest_answered: 0,
            round_trip: 0.0,
            known: false,
            first_sent: None,
            swept: now,
            window_start: now,
            window_taken: 0.0,
            window_responses: 0,
            earlier: Arc::new(Notify::new()),
        }
    }

    pub(super) fn refill(&mut self, shape: BucketShape, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(shape.capacity);
        self.refilled_at = now;
    }

    /// Bookings nobody asked after for [`BOOKING_LIFETIME`] leave the line (looked for at
    /// most once a second).
    pub(super) fn give_up_forgotten_bookings(&mut self, now: Instant) {
        if now.saturating_duration_since(self.swept) < Duration::from_secs(1) {
            return;
        }
        self.swept = now;
        let before = self.bookings.len();
        self.bookings
            .retain(|_, asked| now.saturating_duration_since(*asked) <= BOOKING_LIFETIME);
        let given_up = before - self.bookings.len();
        if given_up > 0 {
            self.settled += given_up as u64;
            self.earlier.notify_waiters();
        }
    }

    pub(super) fn promise(&mut self) -> Promise {
        self.promised += 1;
        self.promised - 1
    }

    /// Promises waiting beyond the tokens there are.
    pub(super) fn queued(&self) -> f64 {
        ((self.promised - self.settled) as f64 - self.tokens).max(0.0)
    }

    /// When `promise` can be kept: once the tokens cover its place in line, and no 429 holds.
    pub(super) fn due(&self, promise: Promise, now: Instant) -> Instant {
        let place = promise.saturating_sub(self.settled) as f64 + 1.0;
        let short = place - self.tokens;
        let due = if short > 0.0 {
            now + Duration::from_secs_f64(short / self.rate.max(f64::MIN_POSITIVE))
        } else {
            now
        };
        self.blocked_until.map_or(due, |blocked| due.max(blocked))
    }

    /// The request is sent; returns its number.
    pub(super) fn keep(&mut self, now: Instant) -> u64 {
        self.first_sent.get_or_insert(now);
        self.tokens -= 1.0;
        self.settled += 1;
        self.in_flight += 1;
        self.sent += 1;
        self.sent
    }

    /// Until when requests are held back for the first answer (see `known`), if they are.
    pub(super) fn holding(&self, now: Instant) -> Option<Instant> {
        let until = self.first_sent? + FIRST_ANSWER_WAIT;
        (!self.known && self.in_flight > 0 && now < until).then_some(until)
    }

    /// An answer (or a failure) came: let the others go, if it was the first.
    ///
    /// Request `number` was answered after `round_trip` (`None`: it failed on its way).
    pub(super) fn answered(&mut self, number: u64, round_trip: Option<Duration>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.latest_answered = self.latest_answered.max(number);
        if let Some(round_trip) = round_trip {
            self.round_trip = 0.8 * self.round_trip + 0.2 * round_trip.as_secs_f64();
        }
        if !self.known {
            self.known = true;
            self.earlier.notify_waiters();
        }
    }

    /// Makes our count agree with the server's `remaining`, and learns from the corrections
    /// how much the others spend.
    pub(super) fn correct(
        &mut self,
        shape: BucketShape,
        remaining: f64,
        stale: bool,
        now: Instant,
    ) {
        self.refill(shape, now);
        let others = shape.refill_per_sec - self.rate;
        // Not floored at 0: a count at 0 still says by how much ours ran ahead.
        let remaining = remaining - RESERVE - others * self.round_trip;
        // Requests in flight may not have reached the server: its count can be higher by that
        // many without ours being wrong.
        let correction = if remaining < self.tokens {
            remaining - self.tokens
        } else if stale {
            0.0
        } else {
            (remaining - self.tokens - f64::from(self.in_flight)).max(0.0)
        };
        self.tokens += correction;
        if correction > 0.0 {
            self.earlier.notify_waiters();
        }
        self.learn_rate(shape, correction, remaining, now);
    }

    /// Corrections that keep taking tokens away mean others spend them: lower our rate by
    /// what they take per second (and raise it by what the corrections give back). A nearly
    /// full bucket shows nothing of the others: what was learnt fades slowly instead, since
    /// they are likely still there when our next burst comes.
    pub(super) fn learn_rate(
        &mut self,
        shape: BucketShape,
        correction: f64,
        remaining: f64,
        now: Instant,
    ) {
        self.window_taken -= correction;
        self.window_responses += 1;
        let full = shape.refill_per_sec;
        let elapsed = now.saturating_duration_since(self.window_start);
        let window = Duration::from_secs_f64(WINDOW_TOKENS / full.max(f64::MIN_POSITIVE));
        if self.window_responses < WINDOW_RESPONSES || elapsed < window {
            return;
        }
        self.rate = if remaining >= shape.capacity * 0.9 {
            self.rate + (full - self.rate) * FADE
        } else {
            let taken_per_sec = self.window_taken / elapsed.as_secs_f64();
            // At most halved per window: one large correction is more likely a burst of the
            // others than their rate.
            (self.rate - 0.7 * taken_per_sec)
                .max(self.rate / 2.0)
                .clamp(full * MIN_SHARE, full)
        };
        self.restart_window(now);
    }

    pub(super) fn restart_window(&mut self, now: Instant) {
        self.window_start = now;
        self.window_taken = 0.0;
        self.window_responses = 0;
    }
}
