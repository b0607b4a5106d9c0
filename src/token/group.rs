//! One refresh for the whole group of replicas sharing a Redis store.
//!
//! A replica about to refresh (on schedule, after a 401, or with an expired token):
//!
//! 1. reads the store: a newer generation than the one it holds (and not the token that
//!    just failed) is adopted, no call to Wise;
//! 2. takes the group's lock ([`super::lock`]); if another replica holds it, waits for
//!    that replica's result (a newer generation appears) or for the lock to go away;
//! 3. under the lock, reads the store again and adopts if someone was faster;
//! 4. refreshes with the stored refresh token, writes the new tokens as the next
//!    generation (which notifies the group), releases the lock.
//!
//! Redis unreachable: while the held token is valid nothing is refreshed (a replica
//! refreshing alone would invalidate the token the others hold, forking the lineage);
//! requests keep using it. Only when it is about to expire (the last tenth of its
//! lifetime, at most 5 minutes) does a replica refresh on its own, the lesser evil
//! against certain expiry, and writes the result back once Redis answers. The sync task
//! ([`super::sync`]) adopts newer generations and writes the lineage back into an
//! emptied store.

use super::held::{seeded, Held};
use super::lock;
use super::manager::{Obtained, RefreshError, TokenManager};
use super::redis_store::RedisStore;
use super::schedule;
use super::store::{Lineage, StoreError};
use http::HeaderValue;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The longest a replica waits for another replica's refresh before giving up.
const GROUP_WAIT: Duration = Duration::from_secs(120);

/// How often a waiting replica looks whether the lock holder is done (a notification
/// usually wakes it sooner).
const WAIT_POLL: Duration = Duration::from_millis(100);

/// The lead before expiry from which a replica refreshes without the shared store.
pub fn alone_lead(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

impl TokenManager {
    /// Steps 1-4 above. `current` is the held token, `stale` the one the caller saw
    /// (`None`: refresh regardless, as `wisegate token refresh` asks).
    pub(super) async fn refresh_shared(
        &self,
        redis: &Arc<RedisStore>,
        current: Option<Arc<Held>>,
        stale: Option<&HeaderValue>,
    ) -> Result<Obtained, RefreshError> {
        let deadline = Instant::now() + GROUP_WAIT;
        let held_generation = current.as_ref().map_or(0, |held| held.generation);
        loop {
            let stored = match redis.load().await {
                Ok(stored) => stored,
                Err(error) => return self.without_store(current, error).await,
            };
            if let Some(bearer) = self.adopt_newer(stored, held_generation, stale) {
                return Ok(Obtained::Adopted(bearer));
            }
            match lock::try_acquire(redis).await {
                Err(error) => return self.without_store(current, error).await,
                Ok(Some(guard)) => {
                    let stored = match redis.load().await {
                        Ok(stored) => stored,
                        Err(error) => {
                            guard.release().await;
                            return self.without_store(current, error).await;
                        }
                    };
                    let newest = newest(stored.clone(), current.as_deref());
                    if let Some(bearer) = self.adopt_newer(stored, held_generation, stale) {
                        guard.release().await;
                        return Ok(Obtained::Adopted(bearer));
                    }
                    let Some(base) = newest else {
                        guard.release().await;
                        return Err(RefreshError::NotAuthorized {
                            store: self.store.describe(),
                        });
                    };
                    let result = self.refresh_from(&base, Some(&guard)).await;
                    guard.release().await;
                    return result.map(Obtained::Refreshed);
                }
                Ok(None) => {
                    let waited = self
                        .wait_for_holder(redis, held_generation, stale, deadline)
                        .await;
                    match waited {
                        Ok(Some(bearer)) => return Ok(Obtained::Adopted(bearer)),
                        Ok(None) => {} // the lock went away without a new token: try again
                        Err(error) => return self.without_store(current, error).await,
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(RefreshError::StoreUnavailable {
                    message: format!(
                        "another replica held the refresh lock {} in {} for over {} s without storing a new token: if no replica is refreshing, delete that key",
                        redis.keys().lock,
                        redis.name(),
                        GROUP_WAIT.as_secs()
                    ),
                });
            }
        }
    }

    /// Waits until the lock holder stored a newer generation (adopted and returned) or
    /// the lock is gone (`None`).
    async fn wait_for_holder(
        &self,
        redis: &Arc<RedisStore>,
        held_generation: u64,
        stale: Option<&HeaderValue>,
        deadline: Instant,
    ) -> Result<Option<HeaderValue>, StoreError> {
        loop {
            let changed = self.changed.notified();
            let stored = redis.load().await?;
            if let Some(bearer) = self.adopt_newer(stored, held_generation, stale) {
                return Ok(Some(bearer));
            }
            let Some(remaining) = lock::remaining(redis).await? else {
                return Ok(None);
            };
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(remaining.min(WAIT_POLL)) => {}
            }
        }
    }

    /// Adopts `stored` when it is newer than `held_generation` and (after a 401) not
    /// the token that failed; returns the bearer then in use.
    pub(super) fn adopt_newer(
        &self,
        stored: Option<Lineage>,
        held_generation: u64,
        stale: Option<&HeaderValue>,
    ) -> Option<HeaderValue> {
        let stale = stale?;
        let stored = stored.filter(|s| s.generation > held_generation)?;
        let held = Held::new(stored.tokens, stored.generation)?;
        if held.bearer == *stale {
            return None;
        }
        Some(self.adopt(held))
    }

    /// Uses `held` unless a newer generation is held already; returns the bearer in use.
    fn adopt(&self, held: Held) -> HeaderValue {
        let generation = held.generation;
        let candidate = Arc::new(held);
        let previous = self.user.rcu(|current| match current {
            Some(current) if current.generation >= candidate.generation => Some(current.clone()),
            _ => Some(candidate.clone()),
        });
        let adopted = previous
            .as_ref()
            .is_none_or(|previous| previous.generation < generation);
        if adopted {
            tracing::info!(
                generation,
                "using the access token another replica stored in the shared token store"
            );
            self.floor.obtained();
            // A new lineage (e.g. `wisegate authorize` elsewhere) lifts a refused grant.
            if self.last_refresh().is_some_and(|o| o.grant_refused) {
                self.outcome.store(None);
            }
            self.changed.notify_waiters();
        }
        self.user
            .load()
            .as_ref()
            .map_or(candidate.bearer.clone(), |held| held.bearer.clone())
    }

    /// Redis could not be used for a refresh: keep serving a valid token; refresh alone
    /// only when the token is about to expire (or has), and only from a real lineage.
    async fn without_store(
        &self,
        current: Option<Arc<Held>>,
        error: StoreError,
    ) -> Result<Obtained, RefreshError> {
        let deferred = |why: &str| RefreshError::StoreUnavailable {
            message: format!("{error}; {why}"),
        };
        let Some(current) = current.filter(|held| held.generation > 0) else {
            return Err(deferred(
                "requests get a token once it answers: check that Redis is reachable",
            ));
        };
        let lead = alone_lead(current.lifetime());
        let alone_from = current.tokens.expires_at.checked_sub(lead);
        if alone_from.is_some_and(|from| SystemTime::now() < from) {
            return Err(deferred(
                "not refreshing alone while the current access token is valid (that would invalidate the other replicas' token)",
            ));
        }
        tracing::warn!(
            "{error}; the access token is about to expire: refreshing without the shared store, and writing the result back once it answers"
        );
        self.refresh_from(&current.lineage(), None)
            .await
            .map(Obtained::Refreshed)
    }

    /// The wait before the next try after `failures` failed ones: the usual backoff, but
    /// with a shared store never past the moment a replica may refresh alone.
    pub(super) fn retry_wait(&self, held: &Held, failures: u32) -> Duration {
        let backoff = schedule::backoff(failures, rand::random());
        if !self.store.is_shared() {
            return backoff;
        }
        let alone_from = held
            .tokens
            .expires_at
            .checked_sub(alone_lead(held.lifetime()));
        match alone_from.and_then(|from| from.duration_since(SystemTime::now()).ok()) {
            Some(until) if !until.is_zero() => backoff.min(until),
            _ => backoff,
        }
    }

    /// Brings this replica and the shared store together: adopts a newer generation, or
    /// writes the held lineage back when the store lost it or holds an older one (Redis
    /// restarted without persistence, or a write failed while it was away).
    pub async fn reconcile(&self) {
        let Some(redis) = self.store.redis() else {
            return;
        };
        let held = self.user.load_full();
        let held_generation = held.as_ref().map_or(0, |h| h.generation);
        let stored = match redis.load().await {
            Ok(stored) => stored,
            Err(_) => return, // recorded as the store's trouble
        };
        let stored_generation = stored.as_ref().map_or(0, |s| s.generation);
        if stored_generation > held_generation {
            if let Some(new) = stored.and_then(|s| Held::new(s.tokens, s.generation)) {
                self.adopt(new);
            }
            return;
        }
        if held.is_none() && stored.is_none() {
            // Redis was away when this replica started: seed now, as at start.
            if let Some(seeded) = self.seed.as_ref().and_then(seeded).map(Arc::new) {
                self.user.rcu(|current| match current {
                    Some(current) => Some(current.clone()),
                    None => Some(seeded.clone()),
                });
                self.changed.notify_waiters();
            }
            return;
        }
        let Some(held) = held.filter(|h| h.generation > stored_generation) else {
            return;
        };
        match redis.write_back(&held.lineage()).await {
            Ok(true) => tracing::warn!(
                generation = held.generation,
                "the shared token store {} did not hold the current lineage (emptied, or behind): wrote it back",
                redis.name()
            ),
            Ok(false) => {}
            Err(error) => tracing::warn!("writing the lineage back failed: {error}"),
        }
    }
}

/// The newer of the stored lineage and the held one (the stored one on a tie).
fn newest(stored: Option<Lineage>, held: Option<&Held>) -> Option<Lineage> {
    let held = held.filter(|h| h.generation > 0 || h.tokens.refresh_token.is_some());
    match (stored, held) {
        (Some(stored), Some(held)) if held.generation > stored.generation => Some(held.lineage()),
        (Some(stored), _) => Some(stored),
        (None, held) => held.map(Held::lineage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshing_alone_is_left_to_the_last_tenth_of_a_lifetime_at_most_5_minutes() {
        assert_eq!(
            alone_lead(Duration::from_secs(43_199)),
            Duration::from_secs(300)
        );
        assert_eq!(
            alone_lead(Duration::from_secs(3)),
            Duration::from_millis(300)
        );
    }
}
