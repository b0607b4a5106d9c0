//! The double's mutable state: authorization codes, tokens, the token-endpoint mode and
//! counters, and the record of API requests. Shared by every connection behind an `Arc`.
//!
//! One client, one user: at most one valid user access token (each new one replaces the
//! last, as Wise's refresh does), one refresh token lineage, one app token.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{FakeWiseConfig, RecordedRequest, ReuseCounts, TokenCalls, TokenEndpointMode};
use crate::token_shape::TokenShape;

/// How long an authorization code stays usable.
const CODE_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Which kind of token a bearer credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    User,
    App,
    Personal,
}

impl TokenKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenKind::User => "user",
            TokenKind::App => "app",
            TokenKind::Personal => "personal",
        }
    }
}

/// Which grant a token-endpoint call used (for the counters).
#[derive(Clone, Copy, Debug)]
pub(crate) enum GrantKind {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

/// The outcome of a successful grant.
pub(crate) struct Grant {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

#[derive(Clone)]
struct Issued {
    token: String,
    expires: Instant,
}

impl Issued {
    fn new(shape: TokenShape, lifetime: Duration) -> Issued {
        Issued {
            token: shape.generate(),
            expires: Instant::now() + lifetime,
        }
    }

    fn valid(&self, token: &str) -> bool {
        self.token == token && Instant::now() < self.expires
    }
}

#[derive(Default)]
struct Tokens {
    codes: HashMap<String, Instant>,
    user_access: Option<Issued>,
    refresh: Option<String>,
    /// Refresh tokens a refresh rotated away: presenting one again is reuse.
    spent: HashSet<String>,
    reuse: ReuseCounts,
    app_access: Option<Issued>,
}

/// Everything the listeners share.
pub(crate) struct Shared {
    pub config: FakeWiseConfig,
    tokens: Mutex<Tokens>,
    mode: Mutex<TokenEndpointMode>,
    calls: Mutex<TokenCalls>,
    in_flight: AtomicU64,
    /// API requests whose head has arrived and whose answer is not made yet.
    api_in_progress: AtomicU64,
    requests: Mutex<Vec<RecordedRequest>>,
    pub sca: crate::sca::Challenges,
    /// Wise has enforced mTLS for this client: the legacy host refuses personal tokens.
    pub mtls_enforced: std::sync::atomic::AtomicBool,
    /// wisegate's rollback-readiness probes seen (not in `requests`).
    probes: AtomicU64,
}

/// Locks a mutex, ignoring poisoning (the data stays consistent between statements).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random token shaped like a UUID v4.
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Lower-case hex of some bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Shared {
    pub(crate) fn new(config: FakeWiseConfig) -> Shared {
        Shared {
            config,
            tokens: Mutex::default(),
            mode: Mutex::default(),
            calls: Mutex::default(),
            in_flight: AtomicU64::new(0),
            api_in_progress: AtomicU64::new(0),
            requests: Mutex::default(),
            sca: crate::sca::Challenges::default(),
            mtls_enforced: std::sync::atomic::AtomicBool::new(false),
            probes: AtomicU64::new(0),
        }
    }

    pub(crate) fn issue_code(&self) -> String {
        let code = hex(&rand::random::<[u8; 20]>());
        let mut t = lock(&self.tokens);
        let now = Instant::now();
        t.codes.retain(|_, expires| *expires > now);
        t.codes.insert(code.clone(), now + CODE_LIFETIME);
        code
    }

    /// Spends a code: a new refresh-token lineage and a new user access token.
    pub(crate) fn exchange_code(&self, code: &str) -> Option<Grant> {
        let mut t = lock(&self.tokens);
        let expires = t.codes.remove(code)?;
        if Instant::now() >= expires {
            return None;
        }
        let refresh = random_uuid();
        t.refresh = Some(refresh.clone());
        let access = Issued::new(
            self.config.user_token_shape,
            self.config.access_token_lifetime,
        );
        t.user_access = Some(access.clone());
        Some(Grant {
            access_token: access.token,
            refresh_token: Some(refresh),
        })
    }

    /// Refreshes: a new user access token (earlier ones die), maybe a new refresh token.
    /// A spent refresh token is counted, and with reuse detection revokes the grant.
    pub(crate) fn refresh(&self, refresh_token: &str) -> Option<Grant> {
        let mut t = lock(&self.tokens);
        if t.spent.contains(refresh_token) {
            t.reuse.spent_refresh_tokens_presented += 1;
            if self.config.revoke_grant_on_reuse && t.refresh.is_some() {
                t.reuse.grants_revoked += 1;
                t.user_access = None;
                t.refresh = None;
            }
            return None;
        }
        if t.refresh.as_deref() != Some(refresh_token) {
            return None;
        }
        if self.config.rotate_refresh_token {
            t.spent.insert(refresh_token.to_owned());
            t.refresh = Some(random_uuid());
        }
        let access = Issued::new(
            self.config.user_token_shape,
            self.config.access_token_lifetime,
        );
        t.user_access = Some(access.clone());
        Some(Grant {
            access_token: access.token,
            refresh_token: t.refresh.clone(),
        })
    }

    /// A new app token; earlier app tokens die.
    pub(crate) fn client_credentials(&self) -> Grant {
        let access = Issued::new(
            self.config.app_token_shape,
            self.config.access_token_lifetime,
        );
        lock(&self.tokens).app_access = Some(access.clone());
        Grant {
            access_token: access.token,
            refresh_token: None,
        }
    }

    /// The kind of a valid, unexpired OAuth access token (user or app).
    pub(crate) fn oauth_token_kind(&self, token: &str) -> Option<TokenKind> {
        let t = lock(&self.tokens);
        if t.user_access.as_ref().is_some_and(|i| i.valid(token)) {
            Some(TokenKind::User)
        } else if t.app_access.as_ref().is_some_and(|i| i.valid(token)) {
            Some(TokenKind::App)
        } else {
            None
        }
    }

    pub(crate) fn current_access_token(&self) -> Option<String> {
        let t = lock(&self.tokens);
        t.user_access
            .as_ref()
            .filter(|i| Instant::now() < i.expires)
            .map(|i| i.token.clone())
    }

    /// The newest client-credentials token, if it is still valid.
    pub(crate) fn current_app_token(&self) -> Option<String> {
        let t = lock(&self.tokens);
        t.app_access
            .as_ref()
            .filter(|i| Instant::now() < i.expires)
            .map(|i| i.token.clone())
    }

    pub(crate) fn invalidate_access_tokens(&self) {
        lock(&self.tokens).user_access = None;
    }

    pub(crate) fn revoke_grant(&self) {
        let mut t = lock(&self.tokens);
        t.user_access = None;
        t.refresh = None;
    }

    pub(crate) fn reuse(&self) -> ReuseCounts {
        lock(&self.tokens).reuse
    }

    pub(crate) fn mode(&self) -> TokenEndpointMode {
        *lock(&self.mode)
    }

    pub(crate) fn set_mode(&self, mode: TokenEndpointMode) {
        *lock(&self.mode) = mode;
    }

    /// Counts one token-endpoint call: `Some(grant)` when it issued a token.
    pub(crate) fn count_token_call(&self, grant: Option<GrantKind>) {
        let mut c = lock(&self.calls);
        match grant {
            Some(GrantKind::AuthorizationCode) => c.authorization_code += 1,
            Some(GrantKind::RefreshToken) => c.refresh_token += 1,
            Some(GrantKind::ClientCredentials) => c.client_credentials += 1,
            None => c.failed += 1,
        }
    }

    pub(crate) fn token_calls(&self) -> TokenCalls {
        *lock(&self.calls)
    }

    /// Marks a token-endpoint request as in flight until the guard drops.
    pub(crate) fn enter_token_call(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut c = lock(&self.calls);
        c.max_concurrent = c.max_concurrent.max(now);
        InFlight(self)
    }

    /// Counts an API request as in progress until the guard drops.
    pub(crate) fn enter_api_request(&self) -> ApiInProgress<'_> {
        self.api_in_progress.fetch_add(1, Ordering::SeqCst);
        ApiInProgress(self)
    }

    pub(crate) fn api_requests_in_progress(&self) -> u64 {
        self.api_in_progress.load(Ordering::SeqCst)
    }

    /// Records an API request; wisegate's rollback-readiness probes (known by their
    /// User-Agent) are only counted, so that `requests()` is what the app's traffic
    /// brought.
    pub(crate) fn record(&self, request: RecordedRequest) {
        let probe = request.headers.iter().any(|(name, value)| {
            name == "user-agent" && value.contains("(rollback readiness probe)")
        });
        if probe {
            self.probes.fetch_add(1, Ordering::SeqCst);
            return;
        }
        lock(&self.requests).push(request);
    }

    pub(crate) fn probes(&self) -> u64 {
        self.probes.load(Ordering::SeqCst)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.requests).clear();
    }
}

/// An API request being handled (see [`Shared::enter_api_request`]).
pub(crate) struct ApiInProgress<'a>(&'a Shared);

impl Drop for ApiInProgress<'_> {
    fn drop(&mut self) {
        self.0.api_in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A token-endpoint request being handled (see [`Shared::enter_token_call`]).
pub(crate) struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = random_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }

    #[test]
    fn refresh_replaces_access_token() {
        let s = Shared::new(FakeWiseConfig::default());
        let code = s.issue_code();
        let g = s.exchange_code(&code).unwrap();
        assert!(s.exchange_code(&code).is_none());
        let r = s.refresh(g.refresh_token.as_deref().unwrap()).unwrap();
        assert_eq!(s.oauth_token_kind(&g.access_token), None);
        assert_eq!(s.oauth_token_kind(&r.access_token), Some(TokenKind::User));
        assert_eq!(r.refresh_token, g.refresh_token);
        assert_eq!(s.reuse(), ReuseCounts::default());
    }

    #[test]
    fn a_spent_refresh_token_presented_again_revokes_the_grant() {
        let s = Shared::new(FakeWiseConfig {
            rotate_refresh_token: true,
            revoke_grant_on_reuse: true,
            ..FakeWiseConfig::default()
        });
        let g = s.exchange_code(&s.issue_code()).unwrap();
        let spent = g.refresh_token.unwrap();
        let r = s.refresh(&spent).unwrap();
        let current = r.refresh_token.unwrap();
        assert_ne!(current, spent, "rotated");
        assert!(s.refresh("never-issued").is_none());
        assert_eq!(s.reuse(), ReuseCounts::default(), "unknown is not reuse");
        assert!(s.refresh(&spent).is_none());
        assert_eq!(s.oauth_token_kind(&r.access_token), None, "revoked");
        assert!(s.refresh(&current).is_none(), "the whole grant is revoked");
        let reuse = s.reuse();
        assert_eq!(reuse.spent_refresh_tokens_presented, 1);
        assert_eq!(reuse.grants_revoked, 1);
    }

    #[test]
    fn without_reuse_detection_a_spent_token_is_only_counted() {
        let s = Shared::new(FakeWiseConfig {
            rotate_refresh_token: true,
            ..FakeWiseConfig::default()
        });
        let g = s.exchange_code(&s.issue_code()).unwrap();
        let spent = g.refresh_token.unwrap();
        let r = s.refresh(&spent).unwrap();
        assert!(s.refresh(&spent).is_none());
        assert_eq!(s.oauth_token_kind(&r.access_token), Some(TokenKind::User));
        assert!(s.refresh(r.refresh_token.as_deref().unwrap()).is_some());
        assert_eq!(s.reuse().spent_refresh_tokens_presented, 1);
        assert_eq!(s.reuse().grants_revoked, 0);
    }
}
