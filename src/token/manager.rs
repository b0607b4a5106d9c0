//! The token manager owns the user's current access token (and its refresh token) and
//! the client-credentials token, and hands the request path a ready `Authorization`
//! header value. The hot path is one `ArcSwap` load; it never waits on I/O while a
//! valid token is held. An expired token is never handed out.

use super::client::{OAuthClient, OAuthError, TokenResponse};
use super::store::{FileStore, StoreError, TokenSet};
use crate::secret::AccessToken;
use arc_swap::ArcSwapOption;
use http::HeaderValue;
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

pub struct TokenManager {
    oauth: OAuthClient,
    store: FileStore,
    user: ArcSwapOption<Held>,
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
    /// Loads the stored lineage, if any.
    pub fn load(oauth: OAuthClient, store: FileStore) -> Result<TokenManager, StoreError> {
        let user = store.load()?.and_then(Held::new).map(Arc::new);
        Ok(TokenManager {
            oauth,
            store,
            user: ArcSwapOption::new(user),
            client: ArcSwapOption::empty(),
            client_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn store(&self) -> &FileStore {
        &self.store
    }

    pub fn oauth(&self) -> &OAuthClient {
        &self.oauth
    }

    /// The user's bearer header, if the current token is still valid.
    pub fn user_bearer(&self) -> Result<HeaderValue, CredentialError> {
        let held = self.user.load();
        match held.as_ref() {
            Some(held) if held.usable(SystemTime::now()) => Ok(held.bearer.clone()),
            Some(held) => Err(CredentialError::TokenUnavailable {
                reason: format!("it expired {} s ago", seconds_since(held.tokens.expires_at)),
            }),
            None => Err(CredentialError::NotAuthorized {
                store: self.store.path().display().to_string(),
            }),
        }
    }

    /// A client-credentials bearer header, requested when none is held or it is about to
    /// expire; concurrent callers share one request.
    pub async fn client_bearer(&self) -> Result<HeaderValue, CredentialError> {
        let margin = Duration::from_secs(60);
        let fresh = |held: &Option<Arc<Held>>| {
            held.as_ref()
                .filter(|h| h.usable(SystemTime::now() + margin))
                .map(|h| h.bearer.clone())
        };
        if let Some(bearer) = fresh(&self.client.load_full()) {
            return Ok(bearer);
        }
        let _guard = self.client_lock.lock().await;
        if let Some(bearer) = fresh(&self.client.load_full()) {
            return Ok(bearer);
        }
        let response = self.oauth.client_credentials().await.map_err(|error| {
            CredentialError::ClientTokenUnavailable {
                reason: error.to_string(),
            }
        })?;
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

    /// Persists a new user lineage (from `authorize` or a refresh) and then uses it.
    pub fn install(&self, tokens: TokenSet) -> Result<(), StoreError> {
        self.store.save(&tokens)?;
        self.user.store(Held::new(tokens).map(Arc::new));
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

    /// Exchanges a refresh of the stored lineage now, persisting the result first.
    pub async fn refresh_now(&self) -> Result<(), RefreshError> {
        let current = self
            .user
            .load_full()
            .ok_or_else(|| RefreshError::NotAuthorized {
                store: self.store.path().display().to_string(),
            })?;
        let refresh_token = current
            .tokens
            .refresh_token
            .clone()
            .ok_or(RefreshError::NoRefreshToken)?;
        let response = self.oauth.refresh(&refresh_token).await?;
        let tokens = token_set(response, current.tokens.profile_id.clone());
        let tokens = TokenSet {
            refresh_token: tokens.refresh_token.clone().or(Some(refresh_token)),
            ..tokens
        };
        self.install(tokens)?;
        Ok(())
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
