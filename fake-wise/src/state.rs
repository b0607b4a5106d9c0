//! The double's mutable state: authorization codes, tokens, the token-endpoint mode and
//! counters, and the record of API requests. Shared by every connection behind an `Arc`.
//!
//! One client, one or more users: each user has its own token lineage ([`Lineage`]), each
//! authorization code names its user, and the client has one app token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{
    FakeUser, FakeWiseConfig, RecordedRequest, ReuseCounts, TokenCalls, TokenEndpointMode,
};
use crate::lineage::{Issued, Lineage, Presented};

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

/// A valid credential: its kind, and the index of the user it belongs to (none for an
/// app token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Credential {
    pub kind: TokenKind,
    pub user: Option<usize>,
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

struct Tokens {
    /// Live codes: when each expires and the index of the user it names.
    codes: HashMap<String, (Instant, usize)>,
    /// One lineage per user, in the order of `Shared::users`.
    lineages: Vec<Lineage>,
    app_access: Option<Issued>,
}

/// Everything the listeners share.
pub(crate) struct Shared {
    pub config: FakeWiseConfig,
    /// The users ([`FakeWiseConfig::users`], or the one `default` user); at least one.
    pub users: Vec<FakeUser>,
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
        let users = config.resolved_users();
        let tokens = Tokens {
            codes: HashMap::new(),
            lineages: users.iter().map(|_| Lineage::default()).collect(),
            app_access: None,
        };
        Shared {
            config,
            users,
            tokens: Mutex::new(tokens),
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

    /// The index of the user with this name.
    pub(crate) fn user_index(&self, name: &str) -> Option<usize> {
        self.users.iter().position(|u| u.name == name)
    }

    /// The index of the user with this name; a test that names no user is wrong.
    pub(crate) fn expect_user(&self, name: &str) -> usize {
        self.user_index(name).unwrap_or_else(|| {
            panic!(
                "fake-wise has no user {name:?} (its users: {})",
                self.user_names()
            )
        })
    }

    /// The users' names, quoted and comma-separated (for messages).
    pub(crate) fn user_names(&self) -> String {
        let names: Vec<String> = self.users.iter().map(|u| format!("{:?}", u.name)).collect();
        names.join(", ")
    }

    /// A fresh code that starts a lineage for the user at `user`.
    pub(crate) fn issue_code(&self, user: usize) -> String {
        let code = hex(&rand::random::<[u8; 20]>());
        let mut t = lock(&self.tokens);
        let now = Instant::now();
        t.codes.retain(|_, (expires, _)| *expires > now);
        t.codes.insert(code.clone(), (now + CODE_LIFETIME, user));
        code
    }

    fn new_user_access(&self) -> Issued {
        Issued::new(
            self.config.user_token_shape,
            self.config.access_token_lifetime,
        )
    }

    /// Spends a code: a new refresh-token lineage and a new user access token for the
    /// user it names.
    pub(crate) fn exchange_code(&self, code: &str) -> Option<Grant> {
        let mut t = lock(&self.tokens);
        let (expires, user) = t.codes.remove(code)?;
        if Instant::now() >= expires {
            return None;
        }
        let refresh = random_uuid();
        let access = self.new_user_access();
        let lineage = &mut t.lineages[user];
        lineage.refresh = Some(refresh.clone());
        lineage.user_access = Some(access.clone());
        Some(Grant {
            access_token: access.token,
            refresh_token: Some(refresh),
        })
    }

    /// Refreshes the lineage the token belongs to: a new user access token (that user's
    /// earlier ones die), maybe a new refresh token. A spent refresh token is counted,
    /// and with reuse detection revokes that lineage's grant.
    pub(crate) fn refresh(&self, refresh_token: &str) -> Option<Grant> {
        let mut t = lock(&self.tokens);
        let found =
            t.lineages
                .iter()
                .enumerate()
                .find_map(|(i, l)| match l.presented(refresh_token) {
                    Presented::Foreign => None,
                    presented => Some((i, presented)),
                });
        let (user, presented) = found?;
        let lineage = &mut t.lineages[user];
        if let Presented::Spent = presented {
            lineage.reused(self.config.revoke_grant_on_reuse);
            return None;
        }
        if self.config.rotate_refresh_token {
            lineage.spent.insert(refresh_token.to_owned());
            lineage.refresh = Some(random_uuid());
        }
        let access = self.new_user_access();
        lineage.user_access = Some(access.clone());
        Some(Grant {
            access_token: access.token,
            refresh_token: lineage.refresh.clone(),
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

    /// A valid, unexpired OAuth access token (a user's or the app's).
    pub(crate) fn oauth_credential(&self, token: &str) -> Option<Credential> {
        let t = lock(&self.tokens);
        let user = t
            .lineages
            .iter()
            .position(|l| l.user_access.as_ref().is_some_and(|i| i.valid(token)));
        if user.is_some() {
            Some(Credential {
                kind: TokenKind::User,
                user,
            })
        } else if t.app_access.as_ref().is_some_and(|i| i.valid(token)) {
            Some(Credential {
                kind: TokenKind::App,
                user: None,
            })
        } else {
            None
        }
    }

    /// The user whose personal token this is.
    pub(crate) fn personal_credential(&self, token: &str) -> Option<Credential> {
        let user = self.users.iter().position(|u| u.personal_token == token)?;
        Some(Credential {
            kind: TokenKind::Personal,
            user: Some(user),
        })
    }

    /// The user's newest user access token, if it is still valid.
    pub(crate) fn current_access_token(&self, user: usize) -> Option<String> {
        let t = lock(&self.tokens);
        t.lineages[user].user_access.as_ref()?.current()
    }

    /// The newest client-credentials token, if it is still valid.
    pub(crate) fn current_app_token(&self) -> Option<String> {
        lock(&self.tokens).app_access.as_ref()?.current()
    }

    pub(crate) fn invalidate_access_tokens(&self, user: usize) {
        lock(&self.tokens).lineages[user].user_access = None;
    }

    pub(crate) fn revoke_grant(&self, user: usize) {
        lock(&self.tokens).lineages[user].revoke();
    }

    /// One user's reuse counts.
    pub(crate) fn reuse_of(&self, user: usize) -> ReuseCounts {
        lock(&self.tokens).lineages[user].reuse
    }

    /// The reuse counts of every lineage together.
    pub(crate) fn reuse(&self) -> ReuseCounts {
        let t = lock(&self.tokens);
        t.lineages
            .iter()
            .fold(ReuseCounts::default(), |sum, l| ReuseCounts {
                spent_refresh_tokens_presented: sum.spent_refresh_tokens_presented
                    + l.reuse.spent_refresh_tokens_presented,
                grants_revoked: sum.grants_revoked + l.reuse.grants_revoked,
            })
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
#[path = "state_tests.rs"]
mod tests;
