//! One refresh for the whole group of replicas sharing a Redis store.
//!
//! A replica about to refresh (on schedule, after a 401, or with an expired token) looks
//! at what it holds and what the store holds and takes the step the rules of
//! [`super::reconcile`] give (their module doc states the invariant: no refresh token
//! that may have been spent is ever presented):
//!
//! 0. a valid token other than the one the caller saw fail, which arrived while it
//!    waited (the sync task adopts the group's as soon as Redis answers), answers the
//!    caller at once, whatever the store says by then;
//! 1. a newer generation in the store is adopted, no call to Wise;
//! 2. a held lineage newer than the store (Redis lost data) is written back first
//!    (compare-and-set on the generation), unless Wise rejected it;
//! 3. the group's lock is taken ([`super::lock`]); if another replica holds it, or the
//!    store is settling after a write-back, the replica waits for the result;
//! 4. under the lock, with the store confirming the held generation, it refreshes, writes
//!    the new tokens as the next generation (which notifies the group), and releases the
//!    lock.
//!
//! Redis unreachable: while the held token is valid and Wise has not rejected it, nothing
//! is refreshed (a replica refreshing alone would invalidate the token the others hold,
//! forking the lineage); requests keep using it. Only when it is about to expire (the last
//! tenth of its lifetime, at most 5 minutes) does a replica refresh on its own, the lesser
//! evil against certain expiry, and writes the result back once Redis answers. A replica
//! whose token Wise rejected never refreshes alone: it waits (at most
//! `limits.token_store_wait` for the request that asked) for the store to answer or for
//! a newer lineage. The sync task ([`super::sync`]) adopts newer generations and writes
//! the lineage back into an emptied store.

use super::error::StoreError;
use super::held::{seeded, Arrival, Held};
use super::lineage::Lineage;
use super::lock::{self, LockGuard};
use super::manager::{RefreshError, TokenManager};
use super::reconcile::{may_write_back, next_step, Facts, HeldFacts, Next, StoredFacts};
use super::redis_store::RedisStore;
use super::refresh::Obtained;
use super::schedule;
use http::HeaderValue;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The longest a replica waits for another replica's refresh before giving up.
const GROUP_WAIT: Duration = Duration::from_secs(120);

/// How often a waiting replica looks again (a notification usually wakes it sooner).
const WAIT_POLL: Duration = Duration::from_millis(100);

/// The lead before expiry from which a replica refreshes without the shared store.
pub fn alone_lead(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// What the rules are given: the held lineage, the stored one, the lock, the settling.
fn facts(held: Option<&Held>, stored: Option<&Lineage>, locked: bool, settling: bool) -> Facts {
    Facts {
        held: held.map(|held| HeldFacts {
            generation: held.generation,
            rejected: held.rejected(),
        }),
        stored: stored.map(|stored| StoredFacts {
            generation: stored.generation,
            same_as_held: held.is_some_and(|held| {
                held.generation == stored.generation
                    && held.tokens.access_token == stored.tokens.access_token
                    && held.tokens.refresh_token == stored.tokens.refresh_token
            }),
        }),
        locked,
        settling,
    }
}

impl TokenManager {
    /// The steps above. `stale` is the token the caller saw (`None`: refresh
    /// regardless, as `wisegate token refresh` asks).
    pub(super) async fn refresh_shared(
        &self,
        redis: &Arc<RedisStore>,
        stale: Option<&HeaderValue>,
    ) -> Result<Obtained, RefreshError> {
        let mut guard: Option<LockGuard> = None;
        let result = self.follow_rules(redis, stale, &mut guard).await;
        let unsaved = matches!(result, Ok(Obtained::Refreshed(_))) && redis.trouble().is_some();
        match guard {
            // The new generation may live only here: the lock expires by itself
            // (LOCK_TTL), which keeps the others from refreshing the one before until
            // this replica writes it back.
            Some(_) if unsaved => {}
            Some(guard) => guard.release().await,
            None => {}
        }
        result
    }

    async fn follow_rules(
        &self,
        redis: &Arc<RedisStore>,
        stale: Option<&HeaderValue>,
        guard: &mut Option<LockGuard>,
    ) -> Result<Obtained, RefreshError> {
        let deadline = Instant::now() + GROUP_WAIT;
        let mut waiting_since: Option<Instant> = None;
        loop {
            let changed = self.lineage.changed();
            let current = self.lineage.load();
            // A newer token arrived while this caller waited (the sync task adopted the
            // group's after Redis came back): it answers the caller, whatever the store
            // says now. Without this, a store gone again meanwhile made a request whose
            // token Wise had rejected fail although a valid one was held.
            let now = SystemTime::now();
            if let Some(newer) = current
                .as_deref()
                .zip(stale)
                .and_then(|(held, stale)| held.instead_of(stale, now))
            {
                return Ok(Obtained::Adopted(newer));
            }
            let looked = self.look(redis, current.as_deref(), guard).await;
            let (next, stored) = match looked {
                Ok(looked) => {
                    self.store_answered(true);
                    looked
                }
                Err(error) => {
                    let since = self.store_answered(false).unwrap_or_else(Instant::now);
                    if let Some(result) = self.while_unreachable(current, error, since).await {
                        return result;
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(WAIT_POLL) => {}
                    }
                    continue;
                }
            };
            match next {
                Next::Adopt => {
                    let Some(new) = stored.and_then(|s| Held::new(s.tokens, s.generation)) else {
                        return Err(RefreshError::Unusable);
                    };
                    let bearer = new.bearer.clone();
                    if self.take(new, Arrival::Adopted) {
                        tracing::info!(
                            generation = self.lineage.generation(),
                            "using the access token another replica stored in the shared token store"
                        );
                    }
                    if stale.is_some_and(|stale| *stale != bearer) {
                        return Ok(Obtained::Adopted(bearer));
                    }
                }
                Next::WriteBack => {
                    let written = match &current {
                        Some(held) => self.write_back(redis, held).await,
                        None => false,
                    };
                    if !written {
                        // Raced by a newer write, or Redis refused: look again shortly.
                        tokio::time::sleep(WAIT_POLL).await;
                    }
                }
                Next::Lock => match lock::try_acquire(redis).await {
                    Ok(Some(taken)) => *guard = Some(taken),
                    Ok(None) => {
                        let generation = self.lineage.generation();
                        match self
                            .wait_for_holder(redis, generation, stale, deadline)
                            .await
                        {
                            Ok(Some(bearer)) => return Ok(Obtained::Adopted(bearer)),
                            Ok(None) => {}
                            Err(_) => {} // the next look finds the store unreachable
                        }
                    }
                    Err(_) => {}
                },
                Next::Wait => {
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.token_store_wait() {
                        return Err(RefreshError::StoreUnavailable {
                            message: format!(
                                "the shared token store {} does not (yet) confirm the lineage held here, and holds no newer one: waiting for the other replicas to write theirs back",
                                redis.name()
                            ),
                        });
                    }
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep(WAIT_POLL) => {}
                    }
                }
                Next::Refresh => {
                    let Some(held) = current else {
                        return Err(self.not_authorized());
                    };
                    return self
                        .refresh_from(&held.lineage(), guard.as_ref())
                        .await
                        .map(Obtained::Refreshed);
                }
                Next::NotAuthorized => return Err(self.not_authorized()),
            }
            if Instant::now() >= deadline {
                return Err(RefreshError::StoreUnavailable {
                    message: format!(
                        "for over {} s the shared token store {} neither confirmed the held lineage nor held a newer one, and the refresh lock {} stayed taken or the store kept settling: if no replica is refreshing, delete that key",
                        GROUP_WAIT.as_secs(),
                        redis.name(),
                        redis.keys().lock,
                    ),
                });
            }
        }
    }

    /// Reads the store (and, holding the lock, whether it is still ours and whether the
    /// store settles) and asks the rules for the next step.
    async fn look(
        &self,
        redis: &Arc<RedisStore>,
        held: Option<&Held>,
        guard: &mut Option<LockGuard>,
    ) -> Result<(Next, Option<Lineage>), StoreError> {
        let stored = redis.load().await?;
        let mut settling = false;
        if let Some(taken) = guard.as_ref() {
            if taken.still_held().await? {
                settling = lock::settling(redis).await?;
            } else {
                *guard = None;
            }
        }
        let next = next_step(facts(held, stored.as_ref(), guard.is_some(), settling));
        Ok((next, stored))
    }

    /// Records whether the store answered a look; returns since when it has not.
    fn store_answered(&self, answered: bool) -> Option<Instant> {
        let mut since = self.store_down_since.lock().ok()?;
        match answered {
            true => *since = None,
            false => {
                since.get_or_insert_with(Instant::now);
            }
        }
        *since
    }

    fn not_authorized(&self) -> RefreshError {
        RefreshError::NotAuthorized {
            store: self.store.describe(),
        }
    }

    /// Writes `held` back (the script writes only over nothing or an older generation,
    /// and starts the settling time); returns whether it wrote.
    async fn write_back(&self, redis: &RedisStore, held: &Held) -> bool {
        match redis.write_back(&held.lineage()).await {
            Ok(true) => {
                tracing::warn!(
                    generation = held.generation,
                    "the shared token store {} did not hold the current lineage (emptied, or behind): wrote it back",
                    redis.name()
                );
                true
            }
            Ok(false) => false,
            Err(error) => {
                tracing::warn!("writing the lineage back failed: {error}");
                false
            }
        }
    }

    /// Waits until the lock holder stored a newer generation (adopted and returned), or
    /// the lock is gone and the store settled (`None`).
    async fn wait_for_holder(
        &self,
        redis: &Arc<RedisStore>,
        held_generation: u64,
        stale: Option<&HeaderValue>,
        deadline: Instant,
    ) -> Result<Option<HeaderValue>, StoreError> {
        loop {
            let changed = self.lineage.changed();
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
        let generation = held.generation;
        if self.take(held, Arrival::Adopted) {
            tracing::info!(
                generation,
                "using the access token another replica stored in the shared token store"
            );
        }
        self.lineage.load().map(|held| held.bearer.clone())
    }

    /// Redis could not be used for a refresh. A valid token Wise has not rejected: keep
    /// serving it, refresh alone only when it is about to expire (or has), and only from
    /// a real lineage, after Redis has failed every look for at least twice that lead
    /// (a Redis restarting now and then must not make replicas refresh alone: several
    /// of them doing so present the same refresh token). A rejected, expired or missing one:
    /// wait for the store or a newer lineage (`None`: look again) until
    /// `limits.token_store_wait` has passed since `since`.
    async fn while_unreachable(
        &self,
        current: Option<Arc<Held>>,
        error: StoreError,
        since: Instant,
    ) -> Option<Result<Obtained, RefreshError>> {
        let deferred = |why: &str| RefreshError::StoreUnavailable {
            message: format!("{error}; {why}"),
        };
        let usable = current
            .as_ref()
            .is_some_and(|held| held.usable(SystemTime::now()));
        if let Some(held) = current.filter(|held| held.generation > 0 && !held.rejected()) {
            let lead = alone_lead(held.lifetime());
            let alone_from = held.tokens.expires_at.checked_sub(lead);
            let due = alone_from.is_none_or(|from| SystemTime::now() >= from);
            if due && since.elapsed() >= 2 * lead {
                tracing::warn!(
                    "{error}; the access token is about to expire: refreshing without the shared store, and writing the result back once it answers"
                );
                return Some(
                    self.refresh_from(&held.lineage(), None)
                        .await
                        .map(Obtained::Refreshed),
                );
            }
            if usable {
                return Some(Err(deferred(
                    "not refreshing alone while the current access token is valid (that would invalidate the other replicas' token)",
                )));
            }
        }
        // Rejected, expired or none: a newer token can only come from the store.
        if since.elapsed() < self.token_store_wait() {
            return None;
        }
        Some(Err(deferred(
            "no valid access token is held here, and a newer one can only come from the store: check that Redis is reachable",
        )))
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
    /// restarted without persistence, or a write failed while it was away), unless Wise
    /// rejected it ([`super::reconcile::may_write_back`]).
    pub async fn reconcile(&self) {
        let Some(redis) = self.store.redis() else {
            return;
        };
        let held = self.lineage.load();
        let stored = match redis.load().await {
            Ok(stored) => stored,
            Err(_) => return, // recorded as the store's trouble
        };
        self.store_answered(true);
        let stored_generation = stored.as_ref().map(|s| s.generation);
        let held_generation = held.as_ref().map(|h| h.generation);
        if stored_generation > held_generation {
            if let Some(new) = stored.and_then(|s| Held::new(s.tokens, s.generation)) {
                if self.take(new, Arrival::Adopted) {
                    tracing::info!(
                        generation = stored_generation,
                        "using the access token another replica stored in the shared token store"
                    );
                }
            }
            return;
        }
        match held {
            // Redis was away when this replica started: seed now, as at start.
            None if stored.is_none() => {
                if let Some(seed) = self.seed.as_ref().and_then(seeded) {
                    self.take(seed, Arrival::Seed);
                }
            }
            None => {}
            Some(held) => {
                let facts = HeldFacts {
                    generation: held.generation,
                    rejected: held.rejected(),
                };
                if may_write_back(facts, stored_generation) {
                    self.write_back(redis, &held).await;
                }
            }
        }
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
