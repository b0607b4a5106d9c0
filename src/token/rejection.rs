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

use super::lock;
use super::manager::TokenManager;
use super::token_store::TokenStore;
use http::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The default of `limits.min_refresh_interval_on_401`.
pub const DEFAULT_MIN_REFRESH_INTERVAL_ON_401: Duration = Duration::from_secs(30);

/// What to do after Wise answered 401 to a request sent with the user's token.
#[derive(Debug)]
pub enum Rejection {
    /// Refresh (or wait for the refresh in flight, or adopt a newer stored token):
    /// [`TokenManager::replace_rejected`].
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
            interval_ms: AtomicU64::new(DEFAULT_MIN_REFRESH_INTERVAL_ON_401.as_millis() as u64),
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

    fn within(&self, now: Instant) -> bool {
        let interval = Duration::from_millis(self.interval_ms.load(Ordering::Relaxed));
        let obtained = self.obtained.lock().ok().and_then(|obtained| *obtained);
        within_floor(obtained, now, interval)
    }
}

/// Whether a 401 at `now` comes less than `interval` after a token was `obtained`.
fn within_floor(obtained: Option<Instant>, now: Instant, interval: Duration) -> bool {
    obtained.is_some_and(|obtained| now.saturating_duration_since(obtained) < interval)
}

impl TokenManager {
    /// `limits.min_refresh_interval_on_401`; applies from the next 401 (also at reload).
    pub fn set_min_refresh_interval_on_401(&self, interval: Duration) {
        let millis = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        self.floor.interval_ms.store(millis, Ordering::Relaxed);
    }

    /// After Wise answered 401 to `failed`: refresh, replay with a newer token, or
    /// pass the 401 on (see the module doc). With a shared store this reads the lock
    /// and the stored lineage (no call to Wise).
    pub async fn on_rejection(&self, failed: &HeaderValue) -> Rejection {
        if !self.floor.within(Instant::now()) {
            return Rejection::Refresh;
        }
        // A refresh that ends after this check has stored its token before it lets go
        // of the lock: if none is in flight, the held token is as new as it gets here.
        if self.refresh_in_flight() {
            return Rejection::Refresh;
        }
        if let Some(newer) = self.held_newer_than(failed) {
            return self.without_refresh(Rejection::Replay(newer));
        }
        if let TokenStore::Redis(redis) = &self.store {
            // The same order for the group: the lock first, then the store.
            match lock::remaining(redis).await {
                Ok(Some(_)) => return Rejection::Refresh,
                Ok(None) => {
                    if let Ok(stored) = redis.load().await {
                        let held = self.held_generation();
                        if let Some(adopted) = self.adopt_newer(stored, held, Some(failed)) {
                            return self.without_refresh(Rejection::Replay(adopted));
                        }
                    }
                }
                // Unreachable: whether a newer lineage exists cannot be known now. The
                // refresh path waits for the store (limits.token_store_wait) instead of
                // passing a 401 on that a newer token would have answered.
                Err(_) => return Rejection::Refresh,
            }
            // The update notification may have been adopted meanwhile.
            if let Some(newer) = self.held_newer_than(failed) {
                return self.without_refresh(Rejection::Replay(newer));
            }
        }
        self.without_refresh(Rejection::PassOn)
    }

    fn without_refresh(&self, rejection: Rejection) -> Rejection {
        self.counters.unauthorized_without_refresh.inc();
        // Debug, not info: a path that always answers 401 would log once per request
        // (the access log has each one already, the counter their number).
        match &rejection {
            Rejection::PassOn => tracing::debug!(
                "Wise answered 401 to an access token obtained moments ago: passing the 401 to the app without refreshing again (limits.min_refresh_interval_on_401)"
            ),
            _ => tracing::debug!("Wise answered 401; replaying with the newer token held"),
        }
        rejection
    }

    /// The held token, when it is usable and not `failed`.
    fn held_newer_than(&self, failed: &HeaderValue) -> Option<HeaderValue> {
        let held = self.lineage.load();
        let held = held.as_ref()?;
        (held.bearer != *failed && held.usable(SystemTime::now())).then(|| held.bearer.clone())
    }

    fn held_generation(&self) -> u64 {
        self.lineage.generation()
    }
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
