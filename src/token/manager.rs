//! The token manager owns the user's current access token (and its refresh token) and
//! the client-credentials token ([`super::client_token`]), and hands the request path a ready `Authorization`
//! header value. The hot path is one `ArcSwap` load; it never waits on I/O while a
//! valid token is held. An expired token is never handed out.
//!
//! With a file store this process owns the lineage and refreshes it alone. With a shared
//! (Redis) store the group refreshes once for all: see [`super::group`] for the lock,
//! adopting other replicas' tokens, and what happens while Redis is away.

use super::client::OAuthClient;
use super::client_token::ClientToken;
use super::counters::LineageCounters;
use super::error::OAuthError;
use super::error::StoreError;
pub use super::error::{CredentialError, RefreshError};
use super::held::{bearer_header, seeded, token_set, Arrival, Held, HeldLineage};
use super::lineage::Lineage;
use super::lock::LockGuard;
use super::rejection::RefreshFloor;
use super::schedule;
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
    refresh_before: Duration,
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
    store_failure: ArcSwapOption<String>,
    /// Since when the shared store has failed every look of a refresh (`None` while it
    /// answers): a replica refreshes alone only after a long stretch without it.
    pub(super) store_down_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// The runtime refreshes run on: the one the manager was made on, which outlives the
    /// serving lanes (a lane's runtime ends with its connections at shutdown).
    background: tokio::runtime::Handle,
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
            store_wait_ms: AtomicU64::new(millis(DEFAULT_TOKEN_STORE_WAIT)),
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

    /// Whether this process is refreshing right now.
    pub(super) fn refresh_in_flight(&self) -> bool {
        self.refresh_lock.try_lock().is_err()
    }

    /// [`Self::refresh_unless_replaced`] as a task of its own, on the background
    /// runtime. A request's future is dropped when its app hangs up; a refresh dropped
    /// after Wise answered would lose the new tokens and, where Wise rotates refresh
    /// tokens, the whole lineage. (The task also keeps this rare, large future out of
    /// every request's future.)
    async fn refresh_detached(
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

    /// Single flight: the first caller refreshes, the others wait for the lock and then
    /// find the new token. `stale` is the token the caller saw; if the held one differs
    /// and is valid, it is returned without a call to Wise. With a shared store, a newer
    /// token another replica stored is adopted instead of refreshing.
    async fn refresh_unless_replaced(
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

    /// Refreshes the stored lineage now (`wisegate token refresh`).
    pub async fn refresh_now(&self) -> Result<(), RefreshError> {
        self.refresh_unless_replaced(None).await.map(|_| ())
    }

    /// Keeps the user token fresh until `shutdown`: refreshes at
    /// `expires_at - min(refresh_before, lifetime / 2)` minus a little jitter, retries
    /// transient failures with capped exponential backoff, and stops asking Wise once the
    /// grant is refused (until a new token is installed).
    pub async fn keep_fresh(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut failures: u32 = 0;
        let mut store_waits = false;
        loop {
            let changed = self.lineage.changed();
            let wait = match self.lineage.load() {
                Some(_) if self.last_refresh().is_some_and(|o| o.grant_refused) => None,
                Some(_) if store_waits => Some(STORE_RETRY),
                Some(held) if failures > 0 => Some(self.retry_wait(&held, failures)),
                Some(held) => Some(schedule::refresh_delay(
                    held.tokens.obtained_at,
                    held.tokens.expires_at,
                    SystemTime::now(),
                    self.refresh_before,
                    rand::random(),
                )),
                None => None,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changed => { (failures, store_waits) = (0, false); continue; }
                _ = async { match wait { Some(wait) => tokio::time::sleep(wait).await, None => std::future::pending().await } } => {}
            }
            let stale = self.lineage.load().map(|held| held.bearer.clone());
            match self.refresh_unless_replaced(stale.as_ref()).await {
                Ok(_) => (failures, store_waits) = (0, false),
                // The shared store did not answer or did not confirm the lineage yet: no
                // call to Wise was made, so look again soon rather than backing off
                // towards the token's expiry.
                Err(RefreshError::StoreUnavailable { .. }) => store_waits = true,
                Err(_) => (failures, store_waits) = (failures.saturating_add(1), false),
            }
        }
    }
}

/// How a refresh request was satisfied.
pub(super) enum Obtained {
    /// This process called Wise.
    Refreshed(HeaderValue),
    /// Another replica had refreshed: its token, from the shared store.
    Adopted(HeaderValue),
}

/// How soon the refresh schedule looks again after the shared store did not answer.
const STORE_RETRY: Duration = Duration::from_millis(250);

/// The default of `limits.token_store_wait`.
pub const DEFAULT_TOKEN_STORE_WAIT: Duration = Duration::from_secs(5);

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn seconds_since(time: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(time)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
