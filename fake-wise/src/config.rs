//! The public value types of the double: its configuration and users, the token-endpoint
//! failure modes, the token-call counters and the record of one API request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::token_shape::TokenShape;

/// How the double is set up. `Default` gives the values the tests and the demo use.
#[derive(Clone, Debug)]
pub struct FakeWiseConfig {
    /// The OAuth client id (`wisegate-test`).
    pub client_id: String,
    /// The OAuth client secret (`test-secret-0123456789`).
    pub client_secret: String,
    /// The one registered redirect URI (`http://127.0.0.1:8765/callback`).
    pub redirect_uri: String,
    /// The personal token the legacy host accepts (`personal-token-abcdef`): the user
    /// `default`'s, when [`FakeWiseConfig::users`] is empty.
    pub personal_token: String,
    /// How long access tokens live (43199 s, like Wise).
    pub access_token_lifetime: Duration,
    /// Whether a refresh returns a new refresh token, invalidating the old one (false).
    pub rotate_refresh_token: bool,
    /// What user access tokens look like ([`TokenShape::Uuid`]).
    pub user_token_shape: TokenShape,
    /// What client-credentials (app) access tokens look like ([`TokenShape::Uuid`]);
    /// Wise's are becoming JWEs of 500-800+ characters ([`TokenShape::Jwe`]).
    pub app_token_shape: TokenShape,
    /// Refresh-token reuse detection (false): presenting a refresh token that an earlier
    /// refresh already spent revokes the whole grant (its refresh token and every access
    /// token of the lineage die), as RFC 9700 allows a server that rotates refresh tokens
    /// to do. Spent tokens presented are counted either way ([`ReuseCounts`]).
    pub revoke_grant_on_reuse: bool,
    /// The profile id the authorize page hands out (12345): the user `default`'s, when
    /// [`FakeWiseConfig::users`] is empty.
    pub profile_id: u64,
    /// The Wise users who can authorize the client, each with its own personal token,
    /// profile and token lineage (none: one user named `default` with
    /// [`FakeWiseConfig::personal_token`] and [`FakeWiseConfig::profile_id`]). The first
    /// is the one the authorize page and the methods without `_for` mean.
    pub users: Vec<FakeUser>,
    /// The RSA public key (SPKI PEM) registered for SCA signatures on `/test/sca` (none).
    pub sca_public_key_pem: Option<String>,
    /// The HTTP versions both TLS hosts offer by ALPN ([`HttpVersions::Both`]).
    pub http_versions: HttpVersions,
    /// How much of each API request's body [`RecordedRequest::body`] keeps (64 KiB):
    /// enough to assert on what arrived, bounded so that large uploads cost no memory.
    pub recorded_body_limit: usize,
    /// The ports the three listeners bind on 127.0.0.1 (all 0: any free port). Fixed
    /// ports let a rehearsal's `wisegate.toml` stay valid across restarts.
    pub ports: ListenPorts,
}

/// One Wise user (a business account's owner) who can authorize the OAuth client: the
/// authorization codes made for it start its own token lineage, and the legacy host
/// takes its personal token.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// Its name, as in the authorize page's `?user=NAME` and the echo's `user`.
    pub name: String,
    /// The personal token the legacy host accepts for it.
    pub personal_token: String,
    /// The profile id the authorize page hands out for it.
    pub profile_id: u64,
}

impl FakeUser {
    /// A user with a random personal token (shaped like Wise's, a UUID) and a profile id
    /// no other `FakeUser::new` of this process, nor the default 12345, has.
    pub fn new(name: &str) -> FakeUser {
        static NEXT_PROFILE: AtomicU64 = AtomicU64::new(20_001);
        FakeUser {
            name: name.to_owned(),
            personal_token: crate::state::random_uuid(),
            profile_id: NEXT_PROFILE.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// The personal token stays out of `Debug` output.
impl std::fmt::Debug for FakeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUser")
            .field("name", &self.name)
            .field("profile_id", &self.profile_id)
            .finish_non_exhaustive()
    }
}

/// The ports of the three listeners; 0 picks a free one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenPorts {
    /// The mTLS API host.
    pub mtls: u16,
    /// The legacy host.
    pub legacy: u16,
    /// The authorize page.
    pub authorize: u16,
}

impl Default for FakeWiseConfig {
    fn default() -> Self {
        FakeWiseConfig {
            client_id: "wisegate-test".to_owned(),
            client_secret: "test-secret-0123456789".to_owned(),
            redirect_uri: "http://127.0.0.1:8765/callback".to_owned(),
            personal_token: "personal-token-abcdef".to_owned(),
            access_token_lifetime: Duration::from_secs(43199),
            rotate_refresh_token: false,
            user_token_shape: TokenShape::Uuid,
            app_token_shape: TokenShape::Uuid,
            revoke_grant_on_reuse: false,
            profile_id: 12345,
            users: Vec::new(),
            sca_public_key_pem: None,
            http_versions: HttpVersions::default(),
            recorded_body_limit: 64 * 1024,
            ports: ListenPorts::default(),
        }
    }
}

impl FakeWiseConfig {
    /// The users the double serves: [`FakeWiseConfig::users`], or when that is empty the
    /// one user `default` with [`FakeWiseConfig::personal_token`] and
    /// [`FakeWiseConfig::profile_id`].
    pub fn resolved_users(&self) -> Vec<FakeUser> {
        if !self.users.is_empty() {
            return self.users.clone();
        }
        vec![FakeUser {
            name: "default".to_owned(),
            personal_token: self.personal_token.clone(),
            profile_id: self.profile_id,
        }]
    }

    /// Every problem with [`FakeWiseConfig::users`]: empty or repeated names, repeated
    /// personal tokens (the legacy host could not tell whose it is).
    pub(crate) fn user_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (i, user) in self.users.iter().enumerate() {
            let earlier = &self.users[..i];
            if user.name.is_empty() {
                problems.push(format!("users[{i}] has an empty name"));
            }
            if earlier.iter().any(|u| u.name == user.name) {
                problems.push(format!("users[{i}]: the name {:?} is taken", user.name));
            }
            if earlier
                .iter()
                .any(|u| u.personal_token == user.personal_token)
            {
                problems.push(format!(
                    "users[{i}] ({:?}) has the personal token of an earlier user",
                    user.name
                ));
            }
        }
        problems
    }
}

/// Which HTTP versions the TLS hosts offer by ALPN: a client that offers none of them
/// fails the handshake, as with a server that speaks only those.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HttpVersions {
    /// `h2` and `http/1.1`, the server's choice in that order (as Wise's hosts do).
    #[default]
    Both,
    /// `http/1.1` only: an HTTP/1.1 upstream.
    Http1Only,
    /// `h2` only: an HTTP/2 upstream.
    Http2Only,
}

impl HttpVersions {
    /// The ALPN protocol ids offered, in order of preference.
    pub fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            HttpVersions::Both => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            HttpVersions::Http1Only => vec![b"http/1.1".to_vec()],
            HttpVersions::Http2Only => vec![b"h2".to_vec()],
        }
    }
}

/// How the token endpoint behaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenEndpointMode {
    /// Follows the OAuth rules.
    #[default]
    Normal,
    /// 503 with a JSON error body.
    Unavailable,
    /// 200 `text/html` `<html>oops</html>`.
    Garbage,
    /// 200 with an empty body.
    Empty,
    /// Normal, but the answer comes after this delay.
    Slow(Duration),
    /// 503 as `Unavailable`, after this delay.
    SlowUnavailable(Duration),
    /// The grant is made at once, its answer sent after this delay: Wise processed the
    /// call, the answer is slow to arrive (a client that gives up meanwhile loses it).
    SlowAnswer(Duration),
}

/// Counts of token-endpoint calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCalls {
    /// Successful `authorization_code` grants.
    pub authorization_code: u64,
    /// Successful `refresh_token` grants.
    pub refresh_token: u64,
    /// Successful `client_credentials` grants.
    pub client_credentials: u64,
    /// Calls that issued no token (errors, and the Unavailable/Garbage/Empty modes).
    pub failed: u64,
    /// The most token-endpoint requests ever handled at the same time.
    pub max_concurrent: u64,
}

/// What the token endpoint saw of refresh-token reuse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReuseCounts {
    /// Refresh grants that presented a refresh token an earlier refresh had spent
    /// (rotated away). With reuse detection each one revoked the grant.
    pub spent_refresh_tokens_presented: u64,
    /// Grants revoked because a spent refresh token was presented.
    pub grants_revoked: u64,
}

/// Which host a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// The mutual-TLS API host (OAuth bearer tokens).
    Mtls,
    /// The legacy host (personal token).
    Legacy,
}

impl HostKind {
    /// `"mtls"` or `"legacy"`, as in the echo body.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKind::Mtls => "mtls",
            HostKind::Legacy => "legacy",
        }
    }
}

/// One API request as the double saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The host it reached.
    pub host: HostKind,
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target's path and query, as received.
    pub path_and_query: String,
    /// The target's authority: HTTP/2's `:authority` (an HTTP/1.1 request has none unless
    /// it came in absolute form).
    pub authority: Option<String>,
    /// Header names (lower case) and values, in the order hyper keeps them, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// Trailer fields after the body (chunked trailers, HTTP/2 trailing HEADERS), like
    /// `headers`; empty when none came.
    pub trailers: Vec<(String, String)>,
    /// The length of the request body.
    pub body_len: u64,
    /// The request body's first bytes, at most [`FakeWiseConfig::recorded_body_limit`].
    pub body: Vec<u8>,
    /// The SHA-256 of the request body, lower-case hex.
    pub body_sha256: String,
    /// The leaf certificate the client presented on the connection, DER.
    pub client_cert_der: Option<Vec<u8>>,
    /// The client's address and port: requests with the same came over one connection.
    pub peer: Option<std::net::SocketAddr>,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub http_version: String,
    /// The user whose user access token or personal token the request carried (none for
    /// an app token, or when no valid credential came), as in the echo's `user`.
    pub user: Option<String>,
    /// The status the double answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order (name compared case-insensitively).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `text` appears anywhere in what arrived: the target, any header or
    /// trailer name or value, or the recorded body (to prove a secret never reached it).
    pub fn contains(&self, text: &str) -> bool {
        let fields = self.headers.iter().chain(&self.trailers);
        self.path_and_query.contains(text)
            || self.authority.as_deref().is_some_and(|a| a.contains(text))
            || fields
                .flat_map(|(n, v)| [n, v])
                .any(|part| part.contains(text))
            || self
                .body
                .windows(text.len().max(1))
                .any(|window| window == text.as_bytes())
    }
}
