//! The manager's answer to a 401 from Wise, by the rule of [`super::rejection`]: refresh,
//! replay with a newer token held (or stored by the group), or pass the 401 on to the
//! app. It reads the refresh in flight, the held token and, with a shared store, the
//! group's lock and the stored lineage; it never calls Wise.

use super::lock;
use super::manager::TokenManager;
use super::rejection::Rejection;
use super::token_store::TokenStore;
use http::HeaderValue;
use std::time::{Duration, Instant, SystemTime};

impl TokenManager {
    /// `limits.min_refresh_interval_on_401`; applies from the next 401 (also at reload).
    pub fn set_min_refresh_interval_on_401(&self, interval: Duration) {
        self.floor.set_interval(interval);
    }

    /// After Wise answered 401 to `failed`: refresh, replay with a newer token, or
    /// pass the 401 on (the rule of [`super::rejection`]). With a shared store this
    /// reads the lock and the stored lineage (no call to Wise).
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
