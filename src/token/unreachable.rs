//! A refresh while the shared store cannot be used.
//!
//! While the held token is valid and Wise has not rejected it, nothing
//! is refreshed (a replica refreshing alone would invalidate the token the others hold,
//! forking the lineage); requests keep using it. Only when it is about to expire (the last
//! tenth of its lifetime, at most 5 minutes) does a replica refresh on its own, the lesser
//! evil against certain expiry, and writes the result back once Redis answers. A replica
//! whose token Wise rejected never refreshes alone: it waits (at most
//! `limits.token_store_wait` for the request that asked) for the store to answer or for
//! a newer lineage.

use super::error::StoreError;
use super::held::Held;
use super::manager::{RefreshError, TokenManager};
use super::refresh::Obtained;
use super::schedule;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The lead before expiry from which a replica refreshes without the shared store.
pub fn alone_lead(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

impl TokenManager {
    /// Records whether the store answered a look; returns since when it has not.
    pub(super) fn store_answered(&self, answered: bool) -> Option<Instant> {
        let mut since = self.store_down_since.lock().ok()?;
        match answered {
            true => *since = None,
            false => {
                since.get_or_insert_with(Instant::now);
            }
        }
        *since
    }

    /// Redis could not be used for a refresh. A valid token Wise has not rejected: keep
    /// serving it, refresh alone only when it is about to expire (or has), and only from
    /// a real lineage, after Redis has failed every look for at least twice that lead
    /// (a Redis restarting now and then must not make replicas refresh alone: several
    /// of them doing so present the same refresh token). A rejected, expired or missing one:
    /// wait for the store or a newer lineage (`None`: look again) until
    /// `limits.token_store_wait` has passed since `since`.
    pub(super) async fn while_unreachable(
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
