//! The injectable clock: wall-clock time plus an offset that tests advance instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Real time shifted by everything `advance` was asked for.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_nanos: AtomicI64,
}

impl Clock {
    pub(crate) fn now(&self) -> Timestamp {
        let offset = SignedDuration::from_nanos(self.offset_nanos.load(Ordering::Relaxed));
        Timestamp::now()
            .saturating_add(offset)
            .unwrap_or(Timestamp::MAX)
    }

    pub(crate) fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}
