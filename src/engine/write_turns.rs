//! Turns in ARM's write budget. A reconcile about to write while many writes already wait for
//! a token books one and comes back when it is due, instead of holding one of the controller's
//! workers in that line: held workers would keep the polls of operations already started, and
//! every other read, waiting behind the line (issue 13's "1,000 creates" measure).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::arm::ArmClient;
use crate::arm::ratelimit::Booking;

/// More writes than this waiting for a token, and a new one books its turn instead of waiting
/// (at Azure's 10 writes/s, under a second of waiting is still worth a worker).
pub(super) const MAX_WRITES_AHEAD: f64 = 8.0;

/// A booking this close to due is taken (the limiter waits out the rest).
const EARLY: Duration = Duration::from_millis(100);

/// A turn further off than this is asked after again halfway, so that a line that moves faster
/// than foreseen (ARM's answers showed more room) is not waited out, and at least this often
/// so the limiter keeps the booking.
const SHORT_WAIT: Duration = Duration::from_secs(2);
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Whether a write may go now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Turn {
    /// Few writes are waiting: write, queueing for a token like anyone.
    Now,
    /// This writer's booked token is due: write inside `with_booked_token`.
    Booked(Booking),
    /// Come back after this long.
    Later(Duration),
}

/// Each writer's booking.
#[derive(Clone, Debug, Default)]
pub(super) struct WriteTurns {
    booked: Arc<Mutex<HashMap<String, Booking>>>,
}

impl WriteTurns {
    /// The turn of `writer` for a write to `subscription`, booking one when the line is long.
    pub(super) fn take(&self, arm: &ArmClient, subscription: &str, writer: &str) -> Turn {
        let mut booked = self.booked.lock().expect("write turns lock");
        if let Some(booking) = booked.get(writer).copied() {
            match arm.write_booking_due(subscription, booking) {
                Some(due) if due <= EARLY => {
                    booked.remove(writer);
                    return Turn::Booked(booking);
                }
                Some(due) => return Turn::Later(ask_again(due)),
                // Given up (this writer was away too long): book again.
                None => booked.remove(writer),
            };
        }
        if arm.writes_queued(subscription) <= MAX_WRITES_AHEAD {
            return Turn::Now;
        }
        let Some((booking, due)) = arm.book_write(subscription) else {
            return Turn::Now;
        };
        booked.retain(|_, b| arm.write_booking_due(subscription, *b).is_some() || *b == booking);
        booked.insert(writer.to_string(), booking);
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
