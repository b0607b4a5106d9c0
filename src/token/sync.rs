//! Keeps a replica in step with the shared store: a subscription to the update channel
//! (a replica that refreshed publishes the new generation, the others adopt it within
//! milliseconds), a periodic read every [`SYNC_INTERVAL`] in case a notification was
//! missed, and reconnection every quarter second while Redis is away. Each (re)connection starts
//! with [`TokenManager::reconcile`], which also writes the lineage back into a Redis that
//! came back empty.

use super::held::{seeded, Arrival, Held};
use super::manager::TokenManager;
use super::reconcile::{may_write_back, HeldFacts};
use super::schedule;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the store is read even without a notification.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(30);

/// The longest wait between two reconnection attempts: short, because after Redis comes
/// back (maybe empty) every replica must have written back what it holds well within the
/// settling time ([`super::reconcile::SETTLE_AFTER_WRITE_BACK`]). An attempt against a
/// Redis that is down costs one refused connection.
const MAX_RECONNECT_WAIT: Duration = Duration::from_millis(250);

/// Runs until `shutdown`; returns at once for a file store.
pub async fn keep_in_sync(manager: Arc<TokenManager>, shutdown: CancellationToken) {
    let Some(redis) = manager.store().redis().cloned() else {
        return;
    };
    let mut failures: u32 = 0;
    loop {
        match redis.subscribe().await {
            Ok(mut messages) => {
                if failures > 0 {
                    tracing::info!("the shared token store {} answers again", redis.name());
                }
                failures = 0;
                manager.reconcile().await;
                let mut every = tokio::time::interval(SYNC_INTERVAL);
                every.tick().await;
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        message = messages.next() => match message {
                            Some(_) => manager.reconcile().await,
                            None => break,
                        },
                        _ = every.tick() => manager.reconcile().await,
                    }
                }
                redis.mark_unreachable("the connection to it was lost");
                tracing::warn!(
                    "lost the connection to the shared token store {}: serving the current token, reconnecting",
                    redis.name()
                );
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!("{error}; serving the current token, retrying");
                }
                failures = failures.saturating_add(1);
            }
        }
        let wait = schedule::backoff(failures.max(1), rand::random()).min(MAX_RECONNECT_WAIT);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl TokenManager {
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
