//! When to refresh and how long to back off: pure functions of times and a random
//! number, so they are tested without clocks.

use std::time::{Duration, SystemTime};

/// The longest wait between two attempts after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long from `now` until the token obtained at `obtained_at` and expiring at
/// `expires_at` should be refreshed: `refresh_before` ahead of expiry, clamped to at most
/// half the token's lifetime (so short-lived tokens work too), minus up to 5% of that
/// lead (at most 60 s) of jitter (`random` in 0..1) so replicas do not align.
pub fn refresh_delay(
    obtained_at: SystemTime,
    expires_at: SystemTime,
    now: SystemTime,
    refresh_before: Duration,
    random: f64,
) -> Duration {
    let lifetime = expires_at
        .duration_since(obtained_at)
        .unwrap_or(Duration::ZERO);
    let lead = refresh_before.min(lifetime / 2);
    let jitter = (lead / 20)
        .min(Duration::from_secs(60))
        .mul_f64(random.clamp(0.0, 1.0));
    let due = expires_at.checked_sub(lead + jitter).unwrap_or(obtained_at);
    due.duration_since(now).unwrap_or(Duration::ZERO)
}

/// The wait before retry number `failures` (1, 2, ...): 1 s doubling up to
/// [`MAX_BACKOFF`], scaled by 50-100% (`random` in 0..1) so callers spread out.
pub fn backoff(failures: u32, random: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF);
    base.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn refreshes_refresh_before_ahead_of_expiry() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expires = start + 12 * HOUR;
        assert_eq!(
            refresh_delay(start, expires, start, 6 * HOUR, 0.0),
            6 * HOUR
        );
        assert_eq!(
            refresh_delay(start, expires, start, 2 * HOUR, 0.0),
            10 * HOUR
        );
        // Full jitter takes off 5% of the lead, at most 60 s.
        assert_eq!(
            refresh_delay(start, expires, start, 6 * HOUR, 1.0),
            6 * HOUR - Duration::from_secs(60)
        );
    }

    #[test]
    fn short_lived_tokens_refresh_at_half_life() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expires = start + Duration::from_secs(4);
        assert_eq!(
            refresh_delay(start, expires, start, 6 * HOUR, 0.0),
            Duration::from_secs(2)
        );
        let jittered = refresh_delay(start, expires, start, 6 * HOUR, 1.0);
        assert_eq!(jittered, Duration::from_millis(1900));
    }

    #[test]
    fn overdue_refreshes_are_due_now() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let expires = start + 12 * HOUR;
        assert_eq!(
            refresh_delay(start, expires, expires + HOUR, 6 * HOUR, 0.5),
            Duration::ZERO
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(5, 1.0), Duration::from_secs(16));
        assert_eq!(backoff(10, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(40, 0.0), MAX_BACKOFF / 2);
    }
}
