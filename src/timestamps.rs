//! How wisegate writes a point in time: Unix seconds (metrics, `/status`) and RFC 3339
//! to the second (`/status`, the token endpoints, `check`, logs).

use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch; 0 for a time before it.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// RFC 3339 in UTC, to the second (`2026-12-01T23:10:19Z`).
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_written_to_the_second() {
        let time = UNIX_EPOCH + Duration::from_millis(1_796_166_619_750);
        assert_eq!(unix_seconds(time), 1_796_166_619);
        assert_eq!(rfc3339(time), "2026-12-01T23:10:19Z");
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
