//! Turns in ARM's write budget. A reconcile about to write while many writes already wait for
//! a token books a place in line and comes back when it is due, instead of holding one of the
//! controller's workers in that line: held workers would keep the polls of operations already
//! started, and every other read, waiting behind the line (issue 13's "1,000 creates" measure).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::arm::ArmClient;
use crate::arm::ratelimit::Booking;

/// More writes than this waiting for a token, and a new one books its turn instead of waiting
/// (at Azure's 10 writes/s, under a second of waiting is still worth a worker).
pub(super) const MAX_WRITES_AHEAD: f64 = 8.0;

/// A booking this close to due is taken (the limiter waits out the rest).
const EARLY: Duration = Duration::from_millis(100);

/// A turn further off than this is asked after again halfway, so that a line that moves faster
/// than foreseen (ARM's answers showed more room) is not waited out, and at least this often
/// so the limiter keeps the booking (it gives up one not asked after for a minute).
const SHORT_WAIT: Duration = Duration::from_secs(2);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// A writer not seen for this long is forgotten (its resource was deleted, or no longer writes).
const FORGOTTEN_AFTER: Duration = Duration::from_secs(120);

/// Whether a write may go now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Turn {
    /// Few writes are waiting: write, queueing for a token like anyone.
    Now,
    /// This writer's booked token is due: write inside `with_booked_token`, or give it back
    /// with `ArmClient::release_write_booking`.
    Booked(Booking),
    /// Come back after this long.
    Later(Duration),
}

/// Each writer's booking, and when the writer last asked after it.
#[derive(Clone, Debug, Default)]
pub(super) struct WriteTurns {
    booked: Arc<Mutex<HashMap<String, (Booking, Instant)>>>,
}

impl WriteTurns {
    /// The turn of `writer` for a write to `subscription`, booking one when the line is long.
    pub(super) fn take(&self, arm: &ArmClient, subscription: &str, writer: &str) -> Turn {
        let now = Instant::now();
        let mut booked = self.booked.lock().expect("write turns lock");
        if let Some((booking, _)) = booked.remove(writer) {
            // `None`: given up, or booked with another client or subscription: book again.
            match arm.write_booking_due(subscription, booking) {
                Some(due) if due <= EARLY => return Turn::Booked(booking),
                Some(due) => {
                    booked.insert(writer.to_string(), (booking, now));
                    return Turn::Later(ask_again(due));
                }
                None => {}
            }
        }
        if arm.writes_queued(subscription) <= MAX_WRITES_AHEAD {
            return Turn::Now;
        }
        let Some((booking, due)) = arm.book_write(subscription) else {
            return Turn::Now;
        };
        booked.retain(|_, (_, asked)| now.saturating_duration_since(*asked) < FORGOTTEN_AFTER);
        booked.insert(writer.to_string(), (booking, now));
        Turn::Later(ask_again(due))
    }
}

/// When to ask after a turn due in `due`.
fn ask_again(due: Duration) -> Duration {
    if due <= SHORT_WAIT {
        due
    } else {
        (due / 2).clamp(SHORT_WAIT, LONGEST_WAIT)
    }
}
