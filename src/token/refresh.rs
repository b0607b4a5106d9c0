//! One refresh of the user's token for this process: single flight (one caller asks
//! Wise, the others wait and find the new token), run as a task of its own so that no
//! hung-up request drops it, the last failure answering whoever waited for it, and the
//! new tokens persisted before they are used. With a shared store the group's protocol
//! decides first ([`super::group`]): it may adopt another replica's token instead.

use super::error::OAuthError;
use super::held::{bearer_header, token_set, Arrival, Held};
use super::lineage::Lineage;
use super::lock::LockGuard;
use super::manager::{RefreshError, RefreshOutcome, TokenManager};
use super::token_store::TokenStore;
use http::HeaderValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How a refresh request was satisfied.
pub(super) enum Obtained {
    /// This process called Wise.
    Refreshed(HeaderValue),
    /// Another replica had refreshed: its token, from the shared store.
    Adopted(HeaderValue),
}

impl TokenManager {
    /// Whether this process is refreshing right now.
    pub(super) fn refresh_in_flight(&self) -> bool {
        self.refresh_lock.try_lock().is_err()
    }

    /// [`Self::refresh_unless_replaced`] as a task of its own, on the background
    /// runtime. A request's future is dropped when its app hangs up; a refresh dropped
    /// after Wise answered would lose the new tokens and, where Wise rotates refresh
    /// tokens, the whole lineage. (The task also keeps this rare, large future out of
    /// every request's future.)
    pub(super) async fn refresh_detached(
        self: &Arc<Self>,
        stale: Option<HeaderValue>,
    ) -> Result<HeaderValue, RefreshError> {
        let manager = self.clone();
        let refresh = async move { manager.refresh_unless_replaced(stale.as_ref()).await };
        self.background
            .spawn(refresh)
            .await
            .unwrap_or_else(|error| {
                Err(RefreshError::Interrupted {
                    detail: error.to_string(),
                })
            })
    }

    /// Single flight: the first caller refreshes, the others wait for the lock and then
    /// find the new token. `stale` is the token the caller saw; if the held one differs
    /// and is valid, it is returned without a call to Wise. With a shared store, a newer
    /// token another replica stored is adopted instead of refreshing.
    pub(super) async fn refresh_unless_replaced(
        &self,
        stale: Option<&HeaderValue>,
    ) -> Result<HeaderValue, RefreshError> {
        let asked = SystemTime::now();
        let _guard = self.refresh_lock.lock().await;
        let current = self.lineage.load();
        if let Some(current) = &current {
            if stale.is_some_and(|stale| *stale != current.bearer)
                && current.usable(SystemTime::now())
            {
                return Ok(current.bearer.clone());
            }
        }
        // The last failure answers this caller too, without asking Wise again: when it
        // happened while this caller waited (one call per failure, however many requests
        // were waiting: no queue of calls to an endpoint that is down), or when Wise
        // refused the grant (asking again cannot help: no hammering).
        if let Some(outcome) = self.last_refresh() {
            let failed_while_waiting = outcome.error.is_some() && outcome.at >= asked;
            if failed_while_waiting || (stale.is_some() && outcome.grant_refused) {
                return Err(RefreshError::AlreadyFailed {
                    message: outcome.error.clone().unwrap_or_default(),
                });
            }
        }
        let result = match (&self.store, current) {
            (TokenStore::Redis(redis), _) => self.refresh_shared(redis, stale).await,
            (TokenStore::File(_), Some(current)) => self
                .refresh_from(&current.lineage(), None)
                .await
                .map(Obtained::Refreshed),
            (TokenStore::File(_), None) => Err(RefreshError::NotAuthorized {
                store: self.store.describe(),
            }),
        };
        match result {
            Ok(Obtained::Adopted(bearer)) => Ok(bearer),
            Ok(Obtained::Refreshed(bearer)) => {
                self.record(None, None, false);
                Ok(bearer)
            }
            Err(error) if error.is_attempt() => {
                let grant_refused = matches!(
                    error,
                    RefreshError::OAuth(OAuthError::InvalidGrant { .. })
                        | RefreshError::NoRefreshToken
                );
                self.record(Some(error.to_string()), error.code(), grant_refused);
                Err(error)
            }
            // The store's trouble is logged by the sync task and shown by readiness; the
            // schedule looks again every quarter second meanwhile.
            Err(error @ RefreshError::StoreUnavailable { .. }) => {
                tracing::debug!("token not refreshed: {error}");
                Err(error)
            }
            Err(error) => {
                tracing::warn!("token not refreshed: {error}");
                Err(error)
            }
        }
    }

    /// Counts and logs the outcome of a call to the token endpoint.
    fn record(&self, error: Option<String>, error_code: Option<String>, grant_refused: bool) {
        match error {
            None => self.counters.refresh_success.inc(),
            Some(_) => self.counters.refresh_failure.inc(),
        };
        match &error {
            Some(message) if grant_refused => tracing::error!("token refresh refused: {message}"),
            Some(message) => tracing::warn!("token refresh failed: {message}"),
            None => tracing::info!("access token refreshed"),
        }
        self.events.token_refresh(error.as_deref());
        self.outcome.store(Some(Arc::new(RefreshOutcome {
            at: SystemTime::now(),
            error,
            grant_refused,
            error_code,
        })));
    }

    /// One call to Wise with `base`'s refresh token; the new tokens are persisted (as
    /// generation `base.generation + 1` or later), then used. `lock`, when the group's
    /// refresh lock is held, is kept alive while Wise answers.
    pub(super) async fn refresh_from(
        &self,
        base: &Lineage,
        lock: Option<&LockGuard>,
    ) -> Result<HeaderValue, RefreshError> {
        let refresh_token = base
            .tokens
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let oauth = self.oauth();
        let call = oauth.refresh(&refresh_token);
        let response = match lock {
            Some(lock) => lock.hold_while(call).await,
            None => call.await,
        }?;
        let mut tokens = token_set(response, base.tokens.profile_id.clone());
        // Keep whatever refresh token came back; Wise may or may not rotate it.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token);
            tokens.refresh_token_expires_at = base.tokens.refresh_token_expires_at;
        }
        bearer_header(&tokens.access_token).ok_or(RefreshError::Unusable)?;
        // Persist first, so a crash cannot lose the lineage.
        let (generation, failure) = self.store.save_refreshed(base.generation, &tokens).await;
        self.store_failure.store(failure.map(Arc::new));
        let held = Held::new(tokens, generation).ok_or(RefreshError::Unusable)?;
        let bearer = held.bearer.clone();
        self.take(held, Arrival::Refreshed);
        Ok(bearer)
    }

    /// Waits (at most `limit`) until no refresh is in flight, so that one started just
    /// before shutdown gets Wise's answer and saves it.
    pub async fn settle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.refresh_lock.lock()).await;
    }

    /// Refreshes the stored lineage now (`wisegate token refresh`).
    pub async fn refresh_now(&self) -> Result<(), RefreshError> {
        self.refresh_unless_replaced(None).await.map(|_| ())
    }
}
