//! Keeps a replica in step with the shared store: a subscription to the update channel
//! (a replica that refreshed publishes the new generation, the others adopt it within
//! milliseconds), a periodic read every [`SYNC_INTERVAL`] in case a notification was
//! missed, and reconnection every quarter second while Redis is away. Each (re)connection starts
//! with [`TokenManager::reconcile`], which also writes the lineage back into a Redis that
//! came back empty.

use super::manager::TokenManager;
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
