//! The token manager owns the user's current access token (and its refresh token) and
//! the client-credentials token, and hands the request path a ready `Authorization`
//! header value. The hot path is one `ArcSwap` load; it never waits on I/O while a
//! valid token is held. An expired token is never handed out.

use super::client::{OAuthClient, OAuthError, TokenResponse};
use super::schedule;
use super::store::{FileStore, StoreError, TokenSet};
use crate::metrics::ResultLabels;
use crate::secret::{AccessToken, RefreshToken};
use arc_swap::{ArcSwap, ArcSwapOption};
use http::HeaderValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why no credential can be attached to a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    #[error("no OAuth token is stored in {store}: run `wisegate authorize` once to obtain one")]
    NotAuthorized { store: String },
    #[error("the OAuth access token expired and could not be refreshed: {reason}")]
    TokenUnavailable { reason: String },
    #[error("no client-credentials token could be obtained: {reason}")]
    ClientTokenUnavailable { reason: String },
    #[error("the personal token is not available: {reason}")]
    PersonalTokenMissing { reason: String },
}

/// A token with its ready-made header value.
#[derive(Debug)]
struct Held {
    tokens: TokenSet,
    bearer: HeaderValue,
}

impl Held {
    fn new(tokens: TokenSet) -> Option<Held> {
        let bearer = bearer_header(&tokens.access_token)?;
        Some(Held { tokens, bearer })
    }

    fn usable(&self, now: SystemTime) -> bool {
        self.tokens.expires_at > now
    }

    fn lifetime(&self) -> Duration {
        self.tokens
            .expires_at
            .duration_since(self.tokens.obtained_at)
            .unwrap_or(Duration::ZERO)
    }
}

/// `Bearer <token>`, marked sensitive so hyper's HPACK never indexes it.
pub fn bearer_header(token: &AccessToken) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

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
    /// Wise refused the grant: only a new `wisegate authorize` helps.
    pub grant_refused: bool,
}

pub struct TokenManager {
    oauth: ArcSwap<OAuthClient>,
    /// `wisegate_token_refresh_total{result}`, registered by the metrics.
    refreshes: Family<ResultLabels, Counter>,
    store: FileStore,
    refresh_before: Duration,
    user: ArcSwapOption<Held>,
    refresh_lock: tokio::sync::Mutex<()>,
    outcome: ArcSwapOption<RefreshOutcome>,
    /// Wakes the refresh schedule when the held token changes.
    changed: tokio::sync::Notify,
    client: ArcSwapOption<Held>,
    client_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// Loads the stored lineage, if any. `refresh_before` is `oauth.refresh_before`.
    /// An empty store is seeded with `seed` (from `oauth.refresh_token_file`): the first
    /// refresh then starts the stored lineage.
    pub fn load(
        oauth: OAuthClient,
        store: FileStore,
        refresh_before: Duration,
        seed: Option<RefreshToken>,
    ) -> Result<TokenManager, StoreError> {
        let stored = match store.load()? {
            Some(tokens) => Some(tokens),
            None => seed.map(|refresh_token| {
                tracing::info!(
                    "the token store is empty: seeding it from oauth.refresh_token_file"
                );
                TokenSet {
                    access_token: AccessToken::new(""),
                    expires_at: SystemTime::UNIX_EPOCH,
                    refresh_token: Some(refresh_token),
                    refresh_token_expires_at: None,
                    profile_id: None,
                    obtained_at: SystemTime::UNIX_EPOCH,
                }
            }),
        };
        let user = stored.and_then(Held::new).map(Arc::new);
        Ok(TokenManager {
            oauth: ArcSwap::from_pointee(oauth),
            refreshes: Family::default(),
            store,
            refresh_before,
            user: ArcSwapOption::new(user),
            refresh_lock: tokio::sync::Mutex::new(()),
            outcome: ArcSwapOption::empty(),
            changed: tokio::sync::Notify::new(),
            client: ArcSwapOption::empty(),
            client_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn store(&self) -> &FileStore {
        &self.store
    }

    /// The OAuth client in use (replaced on reload: new CA, secret or token URL).
    pub fn oauth(&self) -> Arc<OAuthClient> {
        self.oauth.load_full()
    }

    pub fn replace_oauth(&self, oauth: OAuthClient) {
        self.oauth.store(Arc::new(oauth));
    }

    /// The refresh counter family, for the metrics registry.
    pub fn refresh_counter(&self) -> Family<ResultLabels, Counter> {
        self.refreshes.clone()
    }

    pub fn last_refresh(&self) -> Option<Arc<RefreshOutcome>> {
        self.outcome.load_full()
    }

    /// The user's bearer header, if the current token is still valid: one atomic load.
    pub fn user_bearer(&self) -> Result<HeaderValue, CredentialError> {
        let held = self.user.load();
        match held.as_ref() {
            Some(held) if held.usable(SystemTime::now()) => Ok(held.bearer.clone()),
            Some(held) => Err(self.unavailable(held)),
            None => Err(CredentialError::NotAuthorized {
                store: self.store.path().display().to_string(),
            }),
        }
    }

    /// The user's bearer header; when the held token has expired (a refresh was missed,
    /// e.g. after the host slept), one refresh is tried first.
    pub async fn user_bearer_or_refresh(&self) -> Result<HeaderValue, CredentialError> {
        match self.user_bearer() {
            Err(CredentialError::TokenUnavailable { .. }) => {
                let stale = self.user.load_full().map(|held| held.bearer.clone());
                self.refresh_unless_replaced(stale.as_ref())
                    .await
                    .or_else(|_| self.user_bearer())
            }
            other => other,
        }
    }

    /// After Wise answered 401 to `failed`: if another request already replaced that
    /// token, the newer one; else one refresh (shared by all callers).
    pub async fn replace_rejected(
        &self,
        failed: &HeaderValue,
    ) -> Result<HeaderValue, CredentialError> {
        self.refresh_unless_replaced(Some(failed))
            .await
            .map_err(|error| match error {
                RefreshError::NotAuthorized { store } => CredentialError::NotAuthorized { store },
                other => CredentialError::TokenUnavailable {
                    reason: other.to_string(),
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

    /// Single flight: the first caller refreshes, the others wait for the lock and then
    /// find the new token. `stale` is the token the caller saw; if the held one differs
    /// and is valid, it is returned without a call to Wise.
    async fn refresh_unless_replaced(
        &self,
        stale: Option<&HeaderValue>,
    ) -> Result<HeaderValue, RefreshError> {
        let _guard = self.refresh_lock.lock().await;
        let current = self
            .user
            .load_full()
            .ok_or_else(|| RefreshError::NotAuthorized {
                store: self.store.path().display().to_string(),
            })?;
        if stale.is_some_and(|stale| *stale != current.bearer) && current.usable(SystemTime::now())
        {
            return Ok(current.bearer.clone());
        }
        // Once Wise refused the grant, asking again cannot help: no hammering.
        if stale.is_some() {
            if let Some(outcome) = self.last_refresh().filter(|o| o.grant_refused) {
                return Err(RefreshError::GrantRefused {
                    message: outcome.error.clone().unwrap_or_default(),
                });
            }
        }
        let result = self.refresh_locked(&current).await;
        let (error, grant_refused) = match &result {
            Ok(_) => (None, false),
            Err(
                RefreshError::OAuth(OAuthError::InvalidGrant { .. }) | RefreshError::NoRefreshToken,
            ) => (result.as_ref().err().map(ToString::to_string), true),
            Err(error) => (Some(error.to_string()), false),
        };
        let result_label = if error.is_none() {
            "success"
        } else {
            "failure"
        };
        self.refreshes
            .get_or_create(&ResultLabels::of(result_label))
            .inc();
        match &error {
            Some(message) if grant_refused => tracing::error!("token refresh refused: {message}"),
            Some(message) => tracing::warn!("token refresh failed: {message}"),
            None => tracing::info!("access token refreshed"),
        }
        self.outcome.store(Some(Arc::new(RefreshOutcome {
            at: SystemTime::now(),
            error,
            grant_refused,
        })));
        result
    }

    async fn refresh_locked(&self, current: &Held) -> Result<HeaderValue, RefreshError> {
        let refresh_token = current
            .tokens
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let response = self.oauth().refresh(&refresh_token).await?;
        let mut tokens = token_set(response, current.tokens.profile_id.clone());
        // Keep whatever refresh token came back; Wise may or may not rotate it.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token);
            tokens.refresh_token_expires_at = current.tokens.refresh_token_expires_at;
        }
        let held = Held::new(tokens).ok_or(RefreshError::Unusable)?;
        // Persist first, so a crash cannot lose the lineage. If the store cannot be
        // written the new token is still used: Wise has already invalidated the old one.
        let store = self.store.clone();
        let to_save = held.tokens.clone();
        let saved = tokio::task::spawn_blocking(move || store.save(&to_save)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!("{error}; the new token is kept in memory only"),
            Err(error) => tracing::error!("saving the token store failed: {error}"),
        }
        let bearer = held.bearer.clone();
        self.user.store(Some(Arc::new(held)));
        self.changed.notify_waiters();
        Ok(bearer)
    }

    /// A client-credentials bearer header, requested when none is held or it is about to
    /// expire; concurrent callers share one request.
    pub async fn client_bearer(&self) -> Result<HeaderValue, CredentialError> {
        let margin = Duration::from_secs(60);
        let fresh = |held: &Option<Arc<Held>>| {
            held.as_ref()
                .filter(|h| h.usable(SystemTime::now() + margin.min(h.lifetime() / 2)))
                .map(|h| h.bearer.clone())
        };
        if let Some(bearer) = fresh(&self.client.load_full()) {
            return Ok(bearer);
        }
        let _guard = self.client_lock.lock().await;
        if let Some(bearer) = fresh(&self.client.load_full()) {
            return Ok(bearer);
        }
        let response = match self.oauth().client_credentials().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!("client-credentials token request failed: {error}");
                // Keep serving the held token while it is valid.
                return match self.client.load_full() {
                    Some(held) if held.usable(SystemTime::now()) => Ok(held.bearer.clone()),
                    _ => Err(CredentialError::ClientTokenUnavailable {
                        reason: error.to_string(),
                    }),
                };
            }
        };
        let held = Held::new(token_set(response, None)).ok_or_else(|| {
            CredentialError::ClientTokenUnavailable {
                reason: "the token endpoint returned a token that cannot be sent in a header"
                    .into(),
            }
        })?;
        let bearer = held.bearer.clone();
        self.client.store(Some(Arc::new(held)));
        Ok(bearer)
    }

    /// Persists a new user lineage (from `authorize`) and then uses it.
    pub fn install(&self, tokens: TokenSet) -> Result<(), StoreError> {
        self.store.save(&tokens)?;
        self.user.store(Held::new(tokens).map(Arc::new));
        self.outcome.store(None);
        self.changed.notify_waiters();
        Ok(())
    }

    pub fn status(&self) -> TokenStatus {
        let held = self.user.load();
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
        loop {
            let changed = self.changed.notified();
            let wait = match self.user.load_full() {
                Some(_) if self.last_refresh().is_some_and(|o| o.grant_refused) => None,
                Some(_) if failures > 0 => Some(schedule::backoff(failures, rand::random())),
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
                _ = changed => { failures = 0; continue; }
                _ = async { match wait { Some(wait) => tokio::time::sleep(wait).await, None => std::future::pending().await } } => {}
            }
            let stale = self.user.load_full().map(|held| held.bearer.clone());
            match self.refresh_unless_replaced(stale.as_ref()).await {
                Ok(_) => failures = 0,
                Err(_) => failures = failures.saturating_add(1),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no OAuth token is stored in {store}: run `wisegate authorize` once to obtain one")]
    NotAuthorized { store: String },
    #[error("the stored lineage has no refresh token: run `wisegate authorize` again")]
    NoRefreshToken,
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the token endpoint returned an access token that cannot be sent in a header")]
    Unusable,
    #[error("{message}")]
    GrantRefused { message: String },
}

/// A token response as a storable set.
pub fn token_set(response: TokenResponse, profile_id: Option<String>) -> TokenSet {
    TokenSet {
        access_token: response.access_token,
        expires_at: response.expires_at,
        refresh_token: response.refresh_token,
        refresh_token_expires_at: response.refresh_token_expires_at,
        profile_id,
        obtained_at: response.received_at,
    }
}

fn seconds_since(time: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(time)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
