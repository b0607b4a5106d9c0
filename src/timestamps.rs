//! How wisegate writes a point in time: Unix seconds (metrics, `/status`, the file token
//! store), Unix milliseconds (the Redis token store) and RFC 3339 to the second
//! (`/status`, the token endpoints, `check`, the command line, logs).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch; 0 for a time before it.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `seconds` after the Unix epoch.
pub fn from_unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// Whole milliseconds since the Unix epoch; 0 for a time before it.
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `millis` after the Unix epoch.
pub fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// RFC 3339 in UTC, to the second (`2026-12-01T23:10:19Z`); the epoch for a time
/// before it.
pub fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time.max(UNIX_EPOCH)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_to_the_second() {
        let time = UNIX_EPOCH + Duration::from_millis(1_796_166_619_750);
        assert_eq!(unix_seconds(time), 1_796_166_619);
        assert_eq!(rfc3339(time), "2026-12-01T23:10:19Z");
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn unix_times_read_back_to_their_unit() {
        let time = UNIX_EPOCH + Duration::from_millis(1_796_166_619_750);
        assert_eq!(
            from_unix_seconds(unix_seconds(time)),
            UNIX_EPOCH + Duration::from_secs(1_796_166_619)
        );
        assert_eq!(unix_millis(time), 1_796_166_619_750);
        assert_eq!(from_unix_millis(unix_millis(time)), time);
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
