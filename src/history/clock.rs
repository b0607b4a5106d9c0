//! The history's time: a [`Clock`] (the system clock, or a manual one that a test
//! moves forward) and the hour it keeps, [`MINUTES`] one-minute buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One-minute buckets kept per route: the last hour.
pub const MINUTES: usize = 60;

/// Where the history's time comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    /// Seconds since the epoch, moved only by [`Clock::advance`].
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock standing at `start`.
    pub fn manual(start: SystemTime) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(unix(start))))
    }

    /// Seconds since the epoch.
    pub fn unix_seconds(&self) -> u64 {
        match self {
            Clock::System => unix(SystemTime::now()),
            Clock::Manual(at) => at.load(Ordering::Relaxed),
        }
    }

    /// Moves a manual clock forward; the system clock moves by itself.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(at) = self {
            at.fetch_add(by.as_secs(), Ordering::Relaxed);
        }
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
