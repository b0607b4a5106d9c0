//! `fake-wise`: a double of Wise's API for wisegate's tests, demo and benchmarks.
//!
//! [`FakeWise::start`] opens three listeners on `127.0.0.1`:
//!
//! - the **mTLS API host** (TLS, client certificate required): the OAuth token endpoint
//!   `POST [/YYYYQn]/oauth/token`, and any other path as an API call that needs a valid user
//!   or app access token;
//! - the **legacy host** (TLS, no client certificate): any path as an API call that needs
//!   the personal token;
//! - the **authorize page** (plain HTTP): approves at once and redirects with a code.
//!
//! One OAuth client, one or more Wise users ([`FakeWiseConfig::users`], by default one
//! named `default`): each user has a personal token, a profile id and its own token
//! lineage. An authorization code names its user (`?user=NAME` on the authorize page,
//! [`FakeWise::issue_code_for`]); a refresh replaces only that user's access token, and
//! reuse detection and revocation act on that lineage alone. The client-credentials (app)
//! token is the client's, one for all users. The methods without `_for` mean the first
//! user.
//!
//! API calls answer a JSON echo of what arrived (`host`, `method`, `path_and_query`,
//! `headers`, `body_len`, `body_sha256`, `token_kind`, and `user`: whose user access or
//! personal token it was, null for an app token), and are recorded as they arrived,
//! authenticated or not ([`FakeWise::requests`]: head, every header field, trailers, the
//! body's first bytes), so tests can assert on exactly what reached Wise over HTTP/1.1 or
//! HTTP/2 ([`HttpVersions`] picks what ALPN offers). Special paths: `/test/download?bytes=N`,
//! `/test/stall?bytes=N` (N of 2N announced bytes, then nothing), `/test/status/{code}`
//! (also `101`, an unsolicited upgrade no client asked for),
//! `/test/slow?ms=N`, `/v1/authenticated/playground`.
//! Every response carries `x-trace-id`. Test certificates come from [`pki::TestCa`].
//!
//! # Layout
//!
//! - `config`: the public value types (config, users, modes, counters, recorded requests)
//! - `pki`: the run-time test PKI
//! - `state`: codes, tokens, counters, the request record; `lineage`: one user's tokens
//! - `tls`: rustls server configurations
//! - `server`: accept loops, connections, dispatch
//! - `token`: the token endpoint; `token_shape`: what the access tokens look like
//! - `api`: API calls on both hosts
//! - `authorize`: the authorize page
//! - `body`: response bodies, downloads, request-body hashing

mod api;
mod authorize;
mod body;
mod config;
mod lineage;
pub mod pki;
mod sca;
mod server;
mod state;
mod tls;
mod token;
mod token_shape;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use config::{
    FakeUser, FakeWiseConfig, HostKind, HttpVersions, ListenPorts, RecordedRequest, ReuseCounts,
    TokenCalls, TokenEndpointMode,
};
pub use pki::{CertKeyPem, TestCa};
pub use token_shape::{TokenShape, JWE_MIN_LENGTH};

use server::Role;
use state::Shared;

/// A running Wise double. Dropping it (or [`FakeWise::shutdown`]) stops its listeners.
pub struct FakeWise {
    shared: Arc<Shared>,
    mtls: SocketAddr,
    legacy: SocketAddr,
    authorize: SocketAddr,
    stop: Option<watch::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeWise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWise")
            .field("mtls", &self.mtls)
            .field("legacy", &self.legacy)
            .field("authorize", &self.authorize)
            .finish_non_exhaustive()
    }
}

impl FakeWise {
    /// Starts the three listeners on `127.0.0.1` (ports from [`FakeWiseConfig::ports`],
    /// by default any free one). `server` is the certificate and key
    /// of both TLS hosts; the mTLS host accepts client certificates issued by `client_ca_pem`.
    pub async fn start(
        config: FakeWiseConfig,
        server: &CertKeyPem,
        client_ca_pem: &str,
    ) -> std::io::Result<FakeWise> {
        let versions = config.http_versions;
        let mtls_tls = TlsAcceptor::from(tls::mtls_config(server, client_ca_pem, versions)?);
        let legacy_tls = TlsAcceptor::from(tls::legacy_config(server, versions)?);
        let bind = |port| TcpListener::bind((Ipv4Addr::LOCALHOST, port));
        let ports = config.ports;
        let mtls_l = bind(ports.mtls).await?;
        let legacy_l = bind(ports.legacy).await?;
        let authorize_l = bind(ports.authorize).await?;
        let problems = config.user_problems();
        if !problems.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("FakeWiseConfig::users: {}", problems.join("; ")),
            ));
        }
        let shared = Arc::new(Shared::new(config));
        let (stop, stop_rx) = watch::channel(());
        let mut fake = FakeWise {
            shared: shared.clone(),
            mtls: mtls_l.local_addr()?,
            legacy: legacy_l.local_addr()?,
            authorize: authorize_l.local_addr()?,
            stop: Some(stop),
            tasks: Vec::new(),
        };
        let listeners = [
            (mtls_l, Some(mtls_tls), Role::Mtls),
            (legacy_l, Some(legacy_tls), Role::Legacy),
            (authorize_l, None, Role::Authorize),
        ];
        for (listener, tls, role) in listeners {
            fake.tasks.push(tokio::spawn(server::accept_loop(
                listener,
                tls,
                role,
                shared.clone(),
                stop_rx.clone(),
            )));
        }
        Ok(fake)
    }

    /// The mTLS API host, `https://127.0.0.1:PORT`.
    pub fn mtls_url(&self) -> String {
        format!("https://{}", self.mtls)
    }

    /// The legacy host, `https://127.0.0.1:PORT`.
    pub fn legacy_url(&self) -> String {
        format!("https://{}", self.legacy)
    }

    /// The authorize page, `http://127.0.0.1:PORT/oauth/authorize/`.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/oauth/authorize/", self.authorize)
    }

    /// The ports it listens on (to start again on the same ones).
    pub fn ports(&self) -> ListenPorts {
        ListenPorts {
            mtls: self.mtls.port(),
            legacy: self.legacy.port(),
            authorize: self.authorize.port(),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &FakeWiseConfig {
        &self.shared.config
    }

    /// The users it serves ([`FakeWiseConfig::resolved_users`]), the first first.
    pub fn users(&self) -> &[FakeUser] {
        &self.shared.users
    }

    /// A fresh single-use authorization code for the first user, as if it had approved
    /// (30 minutes).
    pub fn issue_code(&self) -> String {
        self.shared.issue_code(0)
    }

    /// A fresh single-use authorization code for the user named `user`: exchanging it
    /// starts (or restarts) that user's lineage.
    ///
    /// # Panics
    ///
    /// If no user has that name (the message lists the users).
    pub fn issue_code_for(&self, user: &str) -> String {
        self.shared.issue_code(self.shared.expect_user(user))
    }

    /// The first user's newest user access token, if it is still valid.
    pub fn current_access_token(&self) -> Option<String> {
        self.shared.current_access_token(0)
    }

    /// The newest user access token of the user named `user`, if it is still valid
    /// (none for a name no user has).
    pub fn current_access_token_for(&self, user: &str) -> Option<String> {
        self.shared
            .current_access_token(self.shared.user_index(user)?)
    }

    /// The newest client-credentials (app) access token, if it is still valid. It is the
    /// client's, shared by every user.
    pub fn current_app_token(&self) -> Option<String> {
        self.shared.current_app_token()
    }

    /// The first user's access tokens become invalid (as if another party had refreshed).
    pub fn invalidate_access_tokens(&self) {
        self.shared.invalidate_access_tokens(0);
    }

    /// The access tokens of the user named `user` become invalid; other users' stay.
    ///
    /// # Panics
    ///
    /// If no user has that name.
    pub fn invalidate_access_tokens_for(&self, user: &str) {
        self.shared
            .invalidate_access_tokens(self.shared.expect_user(user));
    }

    /// The first user's grant is revoked: its refresh token and user access tokens stop
    /// working. App (client-credentials) tokens are not tied to a user's grant and stay
    /// valid.
    pub fn revoke_grant(&self) {
        self.shared.revoke_grant(0);
    }

    /// The grant of the user named `user` is revoked; other users' tokens stay valid.
    ///
    /// # Panics
    ///
    /// If no user has that name.
    pub fn revoke_grant_for(&self, user: &str) {
        self.shared.revoke_grant(self.shared.expect_user(user));
    }

    /// Wise enforces mTLS for this client from now on (`true`): the legacy host refuses
    /// the personal token with 403, as it does once a client has moved to mTLS.
    pub fn set_mtls_enforced(&self, enforced: bool) {
        self.shared
            .mtls_enforced
            .store(enforced, std::sync::atomic::Ordering::Relaxed);
    }

    /// How the token endpoint behaves from now on.
    pub fn set_token_endpoint(&self, mode: TokenEndpointMode) {
        self.shared.set_mode(mode);
    }

    /// Token-endpoint call counts so far.
    pub fn token_calls(&self) -> TokenCalls {
        self.shared.token_calls()
    }

    /// Spent refresh tokens presented so far, and grants revoked for it
    /// ([`FakeWiseConfig::revoke_grant_on_reuse`]), over every user's lineage.
    pub fn reuse(&self) -> ReuseCounts {
        self.shared.reuse()
    }

    /// The reuse counts of the lineage of the user named `user` alone.
    ///
    /// # Panics
    ///
    /// If no user has that name.
    pub fn reuse_for(&self, user: &str) -> ReuseCounts {
        self.shared.reuse_of(self.shared.expect_user(user))
    }

    /// Every API request on the mTLS and legacy hosts (not token calls, nor wisegate's
    /// rollback-readiness probes: see [`FakeWise::probes`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// API requests whose head has arrived and that are not answered yet (e.g. their body
    /// is still coming): what holds a request slot of the client right now.
    pub fn api_requests_in_progress(&self) -> u64 {
        self.shared.api_requests_in_progress()
    }

    /// How many rollback-readiness probes wisegate sent (they are not in `requests`).
    pub fn probes(&self) -> u64 {
        self.shared.probes()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Stops the listeners and waits for the accept loops to end. Open connections are
    /// closed.
    pub async fn shutdown(mut self) {
        self.stop.take();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for FakeWise {
    fn drop(&mut self) {
        self.stop.take();
        for task in &self.tasks {
            task.abort();
        }
    }
}
