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
//! Redis unreachable: [`super::unreachable`] says when a replica keeps serving what it
//! holds, when it waits, and the one case it refreshes alone. The sync task
//! ([`super::sync`]) adopts newer generations and writes the lineage back into an emptied
//! store ([`TokenManager::reconcile`]).

use super::error::StoreError;
use super::held::{Arrival, Held};
use super::lineage::Lineage;
use super::lock::{self, LockGuard};
use super::manager::{RefreshError, TokenManager};
use super::reconcile::{next_step, Facts, HeldFacts, Next, StoredFacts};
use super::redis_store::RedisStore;
use super::refresh::Obtained;
use http::HeaderValue;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::futures::Notified;

/// The longest a replica waits for another replica's refresh before giving up.
const GROUP_WAIT: Duration = Duration::from_secs(120);

/// How often a waiting replica looks again (a notification usually wakes it sooner).
const WAIT_POLL: Duration = Duration::from_millis(100);

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

    /// Looks and takes the next step until one answers the caller (or the group wait
    /// runs out).
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
            let (next, stored) = match self.look(redis, current.as_deref(), guard).await {
                Ok(looked) => {
                    self.store_answered(true);
                    looked
                }
                Err(error) => {
                    let since = self.store_answered(false).unwrap_or_else(Instant::now);
                    if let Some(result) = self.while_unreachable(current, error, since).await {
                        return result;
                    }
                    wake_or_poll(changed).await;
                    continue;
                }
            };
            let answer = match next {
                Next::Adopt => self.adopt_stored(stored, stale),
                Next::WriteBack => self.write_back_held(redis, current.as_deref()).await,
                Next::Lock => self.lock_or_wait(redis, stale, deadline, guard).await,
                Next::Wait => {
                    self.wait_for_confirmation(redis, &mut waiting_since, changed)
                        .await
                }
                Next::Refresh => Some(self.refresh_under_lock(current, guard.as_ref()).await),
                Next::NotAuthorized => Some(Err(self.not_authorized())),
            };
            if let Some(answer) = answer {
                return answer;
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

    /// Step 1: adopts the newer stored lineage; it answers a caller whose token failed.
    fn adopt_stored(
        &self,
        stored: Option<Lineage>,
        stale: Option<&HeaderValue>,
    ) -> Option<Result<Obtained, RefreshError>> {
        let Some(new) = stored.and_then(|s| Held::new(s.tokens, s.generation)) else {
            return Some(Err(RefreshError::Unusable));
        };
        let bearer = new.bearer.clone();
        if self.take(new, Arrival::Adopted) {
            tracing::info!(
                generation = self.lineage.generation(),
                "using the access token another replica stored in the shared token store"
            );
        }
        stale
            .is_some_and(|stale| *stale != bearer)
            .then_some(Ok(Obtained::Adopted(bearer)))
    }

    /// Step 2: writes the held lineage back; never an answer (the next look decides).
    async fn write_back_held(
        &self,
        redis: &RedisStore,
        current: Option<&Held>,
    ) -> Option<Result<Obtained, RefreshError>> {
        let written = match current {
            Some(held) => self.write_back(redis, held).await,
            None => false,
        };
        if !written {
            // Raced by a newer write, or Redis refused: look again shortly.
            tokio::time::sleep(WAIT_POLL).await;
        }
        None
    }

    /// Step 3: takes the group's lock, or waits for the replica that holds it (whose
    /// new token answers the caller).
    async fn lock_or_wait(
        &self,
        redis: &Arc<RedisStore>,
        stale: Option<&HeaderValue>,
        deadline: Instant,
        guard: &mut Option<LockGuard>,
    ) -> Option<Result<Obtained, RefreshError>> {
        match lock::try_acquire(redis).await {
            Ok(Some(taken)) => *guard = Some(taken),
            Ok(None) => {
                let generation = self.lineage.generation();
                match self
                    .wait_for_holder(redis, generation, stale, deadline)
                    .await
                {
                    Ok(Some(bearer)) => return Some(Ok(Obtained::Adopted(bearer))),
                    Ok(None) => {}
                    Err(_) => {} // the next look finds the store unreachable
                }
            }
            Err(_) => {}
        }
        None
    }

    /// Step 3, the store settling or not confirming the held lineage: waits (at most
    /// `limits.token_store_wait` in all) for it to settle or for a newer lineage.
    async fn wait_for_confirmation(
        &self,
        redis: &RedisStore,
        waiting_since: &mut Option<Instant>,
        changed: Notified<'_>,
    ) -> Option<Result<Obtained, RefreshError>> {
        let since = *waiting_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.token_store_wait() {
            return Some(Err(RefreshError::StoreUnavailable {
                message: format!(
                    "the shared token store {} does not (yet) confirm the lineage held here, and holds no newer one: waiting for the other replicas to write theirs back",
                    redis.name()
                ),
            }));
        }
        wake_or_poll(changed).await;
        None
    }

    /// Step 4: refreshes the held lineage, the store having confirmed it under the lock.
    async fn refresh_under_lock(
        &self,
        current: Option<Arc<Held>>,
        guard: Option<&LockGuard>,
    ) -> Result<Obtained, RefreshError> {
        let Some(held) = current else {
            return Err(self.not_authorized());
        };
        self.refresh_from(&held.lineage(), guard)
            .await
            .map(Obtained::Refreshed)
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

    fn not_authorized(&self) -> RefreshError {
        RefreshError::NotAuthorized {
            store: self.store.describe(),
        }
    }

    /// Writes `held` back (the script writes only over nothing or an older generation,
    /// and starts the settling time); returns whether it wrote.
    pub(super) async fn write_back(&self, redis: &RedisStore, held: &Held) -> bool {
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
}

/// Until a new token is installed here (`changed`) or [`WAIT_POLL`] has passed.
async fn wake_or_poll(changed: Notified<'_>) {
    tokio::select! {
        _ = changed => {}
        _ = tokio::time::sleep(WAIT_POLL) => {}
    }
}
