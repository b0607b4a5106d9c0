//! The token manager owns the user's current access token (and its refresh token) and
//! the client-credentials token ([`super::client_token`]), and hands the request path a
//! ready `Authorization` header value. The hot path is one `ArcSwap` load; it never waits
//! on I/O while a valid token is held. An expired token is never handed out.
//!
//! With a file store this process owns the lineage and refreshes it alone. With a shared
//! (Redis) store the group refreshes once for all. The lineage, step by step, and where
//! each step lives:
//!
//! 1. **Start**: [`TokenManager::load`] (here) reads the store ([`super::token_store`],
//!    a file or Redis; what it holds, [`super::lineage`]), or seeds an empty one from
//!    `oauth.refresh_token_file`.
//! 2. **Hand out**: [`TokenManager::user_bearer`] (here) reads the held lineage
//!    ([`super::held`]); a token that has expired is refreshed first
//!    ([`TokenManager::user_bearer_or_refresh`]).
//! 3. **Keep fresh**: the background loop ([`super::keep_fresh`]) refreshes on the
//!    schedule of [`super::schedule`].
//! 4. **Refresh**: single flight in this process ([`super::refresh`]): one call to Wise
//!    ([`super::client`]), the new tokens persisted, then installed through
//!    [`TokenManager::take`] (here), the one place a new token enters.
//! 5. **The group** (shared store only): the protocol of [`super::group`], by the rules
//!    of [`super::reconcile`], under the lock of [`super::lock`], and what happens while
//!    Redis is away ([`super::unreachable`]); every replica follows the store
//!    ([`super::sync`]: adopts newer generations, writes the lineage back).
//! 6. **A 401 from Wise**: the rule of [`super::rejection`], the manager's answer in
//!    [`super::on_rejection`], and, when it says refresh,
//!    [`TokenManager::replace_rejected`] (here).
//! 7. **A new authorization** under a running process: [`super::adopt`].
//! 8. **Report**: [`TokenManager::status`], [`TokenManager::last_refresh`] and
//!    [`TokenManager::store_trouble`] (here) for `/status`, readiness and
//!    `wisegate token status`.

use super::client::OAuthClient;
use super::client_token::ClientToken;
use super::counters::LineageCounters;
use super::error::StoreError;
pub use super::error::{CredentialError, RefreshError};
use super::held::{seeded, Arrival, Held, HeldLineage};
use super::rejection::RefreshFloor;
use super::token_store::TokenStore;
use crate::secret::RefreshToken;
use arc_swap::{ArcSwap, ArcSwapOption};
use http::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What `token status` and readiness report; never the token itself.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub expires_at: Option<SystemTime>,
    pub refresh_token_expires_at: Option<SystemTime>,
    pub profile_id: Option<String>,
    pub obtained_at: Option<SystemTime>,
}

/// The result of the latest refresh attempt, for readiness, status and error messages.
#[derive(Debug, Clone)]
pub struct RefreshOutcome {
    pub at: SystemTime,
    /// `None` on success; else what went wrong (already safe to show).
    pub error: Option<String>,
    /// Wise refused the grant: only a new `wisegate authorize` helps. No call to the
    /// token endpoint is made for this lineage until a new one arrives.
    pub grant_refused: bool,
    /// Wise's OAuth error code (`invalid_grant`), when it answered with one.
    pub error_code: Option<String>,
}

pub struct TokenManager {
    oauth: ArcSwap<OAuthClient>,
    /// Its account's refresh and 401 counters ([`Self::counting_into`]).
    pub(super) counters: LineageCounters,
    /// When a token was last obtained, so that a 401 soon after does not refresh again
    /// ([`super::rejection`]).
    pub(super) floor: RefreshFloor,
    pub(super) store: TokenStore,
    pub(super) refresh_before: Duration,
    /// The lineage in use; every new token goes through its `install`
    /// ([`Self::take`]), which also wakes the refresh schedule and whoever waits for
    /// another replica's refresh.
    pub(super) lineage: HeldLineage,
    /// Single flight within this process (the Redis lock makes it one in the group).
    pub(super) refresh_lock: tokio::sync::Mutex<()>,
    pub(super) outcome: ArcSwapOption<RefreshOutcome>,
    /// `limits.token_store_wait` in milliseconds: how long a request whose token Wise
    /// rejected waits for the shared store to answer or a newer lineage to arrive.
    pub(super) store_wait_ms: AtomicU64,
    /// Shared by every account's manager: the token belongs to the OAuth client.
    client: Arc<ClientToken>,
    /// `oauth.refresh_token_file`, kept for a shared store found empty later.
    pub(super) seed: Option<RefreshToken>,
    /// Why the last refresh could not be written to a file store, until one is.
    pub(super) store_failure: ArcSwapOption<String>,
    /// Since when the shared store has failed every look of a refresh (`None` while it
    /// answers): a replica refreshes alone only after a long stretch without it.
    pub(super) store_down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// The runtime refreshes run on: the one the manager was made on, which outlives the
    /// serving lanes (a lane's runtime ends with its connections at shutdown).
    pub(super) background: tokio::runtime::Handle,
    /// Where refresh outcomes are reported (`/status`'s time line).
    pub events: crate::history::EventSink,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Loads the stored lineage, if any. `refresh_before` is `oauth.refresh_before`.
    /// An empty store is seeded with `seed` (from `oauth.refresh_token_file`): the first
    /// refresh then starts the stored lineage. A shared store that cannot be reached is
    /// not fatal: the manager starts without a token and the sync task
    /// ([`super::sync::keep_in_sync`]) adopts the group's when Redis answers.
    pub async fn load(
        oauth: Arc<OAuthClient>,
        store: TokenStore,
        refresh_before: Duration,
        seed: Option<RefreshToken>,
    ) -> Result<TokenManager, StoreError> {
        let loaded = match store.load().await {
            Ok(loaded) => loaded,
            Err(error @ StoreError::Unreachable { .. }) => {
                tracing::error!("{error}; starting without a token until it answers");
                None
            }
            Err(error) => return Err(error),
        };
        let held = match loaded {
            Some(lineage) => Held::new(lineage.tokens, lineage.generation),
            None if store.trouble().is_some() => None,
            None => seed.as_ref().and_then(seeded),
        };
        Ok(TokenManager {
            oauth: ArcSwap::new(oauth),
            counters: LineageCounters::default(),
            floor: RefreshFloor::default(),
            store,
            refresh_before,
            lineage: HeldLineage::new(held),
            refresh_lock: tokio::sync::Mutex::new(()),
            outcome: ArcSwapOption::empty(),
            store_wait_ms: AtomicU64::new(millis(crate::config::DEFAULT_TOKEN_STORE_WAIT)),
            client: Arc::default(),
            seed,
            store_failure: ArcSwapOption::empty(),
            store_down_since: std::sync::Mutex::new(None),
            background: tokio::runtime::Handle::current(),
            events: Default::default(),
        })
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    /// `limits.token_store_wait`; applies from the next wait (also at reload).
    pub fn set_token_store_wait(&self, wait: Duration) {
        self.store_wait_ms.store(millis(wait), Ordering::Relaxed);
    }

    pub(super) fn token_store_wait(&self) -> Duration {
        Duration::from_millis(self.store_wait_ms.load(Ordering::Relaxed))
    }

    /// Installs `held` in the one place the lineage lives, if `arrival` allows it over
    /// the held one; a token obtained (refreshed or adopted) starts the 401 interval,
    /// and a newer lineage from elsewhere lifts a refused grant. Returns whether it
    /// was installed.
    pub(super) fn take(&self, held: Held, arrival: Arrival) -> bool {
        let installed = self.lineage.install(held, arrival);
        if installed && arrival != Arrival::Seed {
            self.floor.obtained();
        }
        let from_elsewhere = matches!(arrival, Arrival::Adopted | Arrival::Authorized);
        if installed && from_elsewhere && self.last_refresh().is_some_and(|o| o.grant_refused) {
            self.outcome.store(None);
        }
        installed
    }

    /// What is wrong with the token store (shared store unreachable), for readiness.
    pub fn store_trouble(&self) -> Option<String> {
        self.store.trouble()
    }

    /// The OAuth client in use (replaced on reload: new CA, secret or token URL).
    pub fn oauth(&self) -> Arc<OAuthClient> {
        self.oauth.load_full()
    }

    /// The OAuth client is the company's: every account's manager is handed the same.
    pub fn replace_oauth(&self, oauth: Arc<OAuthClient>) {
        self.oauth.store(oauth);
    }

    /// Uses `client` (another manager's [`Self::client_token`]) for client-credentials
    /// tokens: there is one such token for the OAuth client, whatever the account.
    pub fn with_client_token(mut self, client: Arc<ClientToken>) -> TokenManager {
        self.client = client;
        self
    }

    /// The client-credentials token this manager hands out (see [`ClientToken`]).
    pub fn client_token(&self) -> Arc<ClientToken> {
        self.client.clone()
    }

    /// Counts into `counters` (its account's series) from now on.
    pub fn counting_into(mut self, counters: LineageCounters) -> TokenManager {
        self.counters = counters;
        self
    }

    pub fn last_refresh(&self) -> Option<Arc<RefreshOutcome>> {
        self.outcome.load_full()
    }

    /// Wise's refusal of the grant, while a person must run `wisegate authorize`.
    pub fn authorization_required(&self) -> Option<Arc<RefreshOutcome>> {
        self.last_refresh().filter(|outcome| outcome.grant_refused)
    }

    /// Why the held token is in memory only (the file store could not be written).
    pub fn store_failure(&self) -> Option<Arc<String>> {
        self.store_failure.load_full()
    }

    /// The user's bearer header, if the current token is still valid: one atomic load.
    pub fn user_bearer(&self) -> Result<HeaderValue, CredentialError> {
        match self.lineage.load().as_ref() {
            Some(held) if held.usable(SystemTime::now()) => Ok(held.bearer.clone()),
            Some(held) => Err(self.unavailable(held)),
            None => match self.store.trouble() {
                Some(trouble) => Err(CredentialError::TokenUnavailable {
                    reason: format!(
                        "none obtained yet: {trouble}; requests get the group's token once it answers"
                    ),
                }),
                None => Err(CredentialError::NotAuthorized {
                    store: self.store.describe(),
                }),
            },
        }
    }

    /// The user's bearer header; when the held token has expired (a refresh was missed,
    /// e.g. after the host slept), one refresh is tried first.
    pub async fn user_bearer_or_refresh(self: &Arc<Self>) -> Result<HeaderValue, CredentialError> {
        match self.user_bearer() {
            // (With no token at all, the shared store is unreachable: the sync task
            // adopts the group's token when it answers; requests do not wait for it.)
            Err(CredentialError::TokenUnavailable { .. }) if self.lineage.load().is_some() => {
                let stale = self.lineage.load().map(|held| held.bearer.clone());
                self.refresh_detached(stale)
                    .await
                    .or_else(|_| self.user_bearer())
            }
            other => other,
        }
    }

    /// After Wise answered 401 to `failed`: if another request already replaced that
    /// token, the newer one; else one refresh (shared by all callers). The proxy asks
    /// [`Self::on_rejection`] first, which declines a refresh soon after the last one.
    /// Wise's 401 marks the held token stale when it is the one that failed: it is then
    /// never written back, nor refreshed unless the store confirms it
    /// ([`super::reconcile`]). While the shared store cannot tell, the request waits
    /// (at most `limits.token_store_wait`) for it or for a newer lineage.
    pub async fn replace_rejected(
        self: &Arc<Self>,
        failed: &HeaderValue,
    ) -> Result<HeaderValue, CredentialError> {
        if let Some(held) = self.lineage.load().filter(|held| held.bearer == *failed) {
            held.mark_rejected();
        }
        self.refresh_detached(Some(failed.clone()))
            .await
            .map_err(|error| match error {
                RefreshError::NotAuthorized { store } => CredentialError::NotAuthorized { store },
                other => CredentialError::TokenUnavailable {
                    reason: format!("Wise rejected it and the refresh failed: {other}"),
                },
            })
    }

    fn unavailable(&self, held: &Held) -> CredentialError {
        let expired = format!("it expired {} s ago", seconds_since(held.tokens.expires_at));
        let reason = match self.last_refresh() {
            Some(outcome) => match &outcome.error {
                Some(error) => format!("{expired}; the last refresh failed: {error}"),
                None => expired,
            },
            None => expired,
        };
        CredentialError::TokenUnavailable { reason }
    }

    /// A client-credentials bearer header (see [`ClientToken`]).
    pub async fn client_bearer(&self) -> Result<HeaderValue, CredentialError> {
        self.client.bearer(&self.oauth()).await
    }

    pub fn status(&self) -> TokenStatus {
        let held = self.lineage.load();
        let tokens = held.as_ref().map(|h| &h.tokens);
        TokenStatus {
            expires_at: tokens.map(|t| t.expires_at),
            refresh_token_expires_at: tokens.and_then(|t| t.refresh_token_expires_at),
            profile_id: tokens.and_then(|t| t.profile_id.clone()),
            obtained_at: tokens.map(|t| t.obtained_at),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn seconds_since(time: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(time)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
