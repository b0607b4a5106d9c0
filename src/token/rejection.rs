//! What a 401 from Wise leads to. A 401 used to mean one refresh, always: a path that
//! answers 401 whatever the token (a permission Wise does not grant, a revoked scope)
//! then cost one refresh per request, and every refresh invalidates the access token of
//! every replica and spends the token endpoint's rate limit.
//!
//! The rule: once this process has obtained a token (refreshed it, or adopted one the
//! group refreshed), a 401 within the next `limits.min_refresh_interval_on_401` does not
//! refresh again. The request is replayed with the token now held when that one is newer
//! than the rejected one (a refresh raced the request); otherwise Wise's 401 goes to
//! the app, counted in `wisegate_unauthorized_without_refresh_total`. A refresh in
//! flight (here, or under the group's lock in Redis) is waited for as before: the 401
//! may be the one that refresh caused. Outside that interval a 401 refreshes (single
//! flight) as before, so sequential 401s cost at most one refresh per interval.
//!
//! Here: the interval ([`RefreshFloor`]) and the outcome ([`Rejection`]); the manager
//! applies the rule in [`super::on_rejection`].

use http::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What to do after Wise answered 401 to a request sent with the user's token.
#[derive(Debug)]
pub enum Rejection {
    /// Refresh (or wait for the refresh in flight, or adopt a newer stored token):
    /// [`super::manager::TokenManager::replace_rejected`].
    Refresh,
    /// Replay with this token, newer than the rejected one; no refresh.
    Replay(HeaderValue),
    /// Give Wise's 401 to the app: the token was obtained moments ago.
    PassOn,
}

/// When this process last obtained a token, and the interval within which a 401 does
/// not refresh again.
#[derive(Debug)]
pub(super) struct RefreshFloor {
    interval_ms: AtomicU64,
    obtained: Mutex<Option<Instant>>,
}

impl Default for RefreshFloor {
    fn default() -> Self {
        RefreshFloor {
            interval_ms: AtomicU64::new(
                crate::config::DEFAULT_MIN_REFRESH_INTERVAL_ON_401.as_millis() as u64,
            ),
            obtained: Mutex::new(None),
        }
    }
}

impl RefreshFloor {
    /// A token was just obtained (refreshed here, or adopted from the group).
    pub(super) fn obtained(&self) {
        if let Ok(mut obtained) = self.obtained.lock() {
            *obtained = Some(Instant::now());
        }
    }

    /// `limits.min_refresh_interval_on_401`, from the next 401 on.
    pub(super) fn set_interval(&self, interval: Duration) {
        let millis = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.interval_ms.store(millis, Ordering::Relaxed);
    }

    /// Whether a 401 at `now` comes within the interval since a token was obtained.
    pub(super) fn within(&self, now: Instant) -> bool {
        let interval = Duration::from_millis(self.interval_ms.load(Ordering::Relaxed));
        let obtained = self.obtained.lock().ok().and_then(|obtained| *obtained);
        within_floor(obtained, now, interval)
    }
}

/// Whether a 401 at `now` comes less than `interval` after a token was `obtained`.
fn within_floor(obtained: Option<Instant>, now: Instant, interval: Duration) -> bool {
    obtained.is_some_and(|obtained| now.saturating_duration_since(obtained) < interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_401_refreshes_only_once_the_interval_since_the_last_token_has_passed() {
        let interval = Duration::from_secs(30);
        let start = Instant::now();
        assert!(
            !within_floor(None, start, interval),
            "no token obtained yet"
        );
        assert!(within_floor(Some(start), start, interval));
        assert!(within_floor(
            Some(start),
            start + Duration::from_millis(29_999),
            interval
        ));
        assert!(!within_floor(
            Some(start),
            start + Duration::from_secs(30),
            interval
        ));
        // A token obtained after the 401 was seen (a refresh raced it) counts as within.
        assert!(within_floor(Some(start + interval), start, interval));
    }
}
