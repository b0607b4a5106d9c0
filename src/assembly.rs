//! Assembles the running parts from a validated config: the client identity and its
//! resolver, the upstream clients, an account's personal token, SCA key and token
//! manager (the accounts themselves are [`crate::account`]'s). A [`Snapshot`] is
//! everything else the request path needs from one config; it is built whole (and so
//! validated whole) before it is published.

use crate::config::{AccountConfig, Config, PersonalTokenConfig, SecretSource, TokenStoreConfig};
use crate::route::Mode;
use crate::route_counts::{self, RouteCounts};
use crate::sca::ScaSigner;
use crate::secret::{self, ClientSecret, PersonalToken, RefreshToken, SecretFileError};
use crate::slots::SlotBounds;
use crate::tls::{self, ClientCertResolver, ClientIdentity, TlsError};
use crate::token::{FileStore, OAuthClient, RedisStore, StoreError, TokenManager, TokenStore};
use crate::upstream::{Upstream, UpstreamSettings};
use http::{HeaderValue, Method};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SecretFile(#[from] SecretFileError),
    #[error("{message}")]
    Sca { message: String },
    #[error("the environment variable {var} named by oauth.client_secret_env is not set or empty")]
    SecretEnv { var: String },
}

/// The client secret from its file or environment variable.
pub fn client_secret(source: &SecretSource) -> Result<ClientSecret, BuildError> {
    match source {
        SecretSource::File(file) => Ok(ClientSecret::new(secret::read_file(
            "the client secret",
            file,
        )?)),
        SecretSource::Env(var) => match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Ok(ClientSecret::new(value)),
            _ => Err(BuildError::SecretEnv { var: var.clone() }),
        },
    }
}

/// Upstream settings from `config`, with a client per serving lane (`lanes`; 0 for
/// callers outside the lanes).
fn settings(config: &Config, lanes: usize) -> UpstreamSettings {
    UpstreamSettings {
        connect_timeout: config.limits.upstream_connect_timeout,
        timeout: config.limits.upstream_timeout,
        idle_timeout: config.limits.idle_timeout,
        slots: SlotBounds {
            all: config.limits.max_upstream_requests,
            per_connection: config.limits.max_upstream_requests_per_connection,
            per_client: config
                .listen
                .is_gateway()
                .then_some(config.limits.max_upstream_requests_per_client),
        },
        lanes,
        runtime: None,
    }
}

/// The client identity, checked, and a resolver presenting it.
pub fn load_identity(config: &Config) -> Result<Arc<ClientCertResolver>, TlsError> {
    let identity = ClientIdentity::load(&config.mtls.cert_file, &config.mtls.key_file)?;
    if let Err(expired) = identity.check_current() {
        tracing::error!(
            "{expired}; wisegate starts, but is not ready and answers mTLS routes with 502"
        );
    }
    Ok(ClientCertResolver::new(identity))
}

/// The OAuth client for `config`'s token endpoint, over mTLS.
pub fn oauth_client(
    config: &Config,
    resolver: &Arc<ClientCertResolver>,
) -> Result<OAuthClient, BuildError> {
    let roots = tls::root_store(config.upstream.ca_file.as_deref())?;
    let upstream = Upstream::new(
        &config.oauth.token_url,
        tls::client_config(roots, Some(resolver.clone())),
        // Token calls are rare: one client. Its connections live on the background
        // runtime (where this is built), also when a lane opened them for a
        // client-credentials fetch: a refresh reusing one must outlive the lanes at
        // shutdown.
        UpstreamSettings {
            runtime: tokio::runtime::Handle::try_current().ok(),
            ..settings(config, 0)
        },
    );
    Ok(OAuthClient::new(
        upstream,
        config.oauth.token_url.clone(),
        config.oauth.client_id.clone(),
        client_secret(&config.oauth.client_secret)?,
    ))
}

/// The token store of the config's first account (the only one with the
/// single-account keys); see [`store_of`].
pub fn token_store(config: &Config) -> Result<TokenStore, BuildError> {
    store_of(&config.accounts()[0].token_store)
}

/// The token store `store` names (a Redis store connects lazily).
pub fn store_of(store: &TokenStoreConfig) -> Result<TokenStore, BuildError> {
    match store {
        TokenStoreConfig::File(path) => Ok(TokenStore::File(FileStore::new(path))),
        TokenStoreConfig::Redis(redis) => {
            let ca_pem = match &redis.ca_file {
                Some(file) => Some(std::fs::read(file).map_err(|error| SecretFileError {
                    what: "the Redis CA certificates",
                    file: file.clone(),
                    message: error.to_string(),
                })?),
                None => None,
            };
            Ok(TokenStore::Redis(Arc::new(RedisStore::open(
                redis, ca_pem,
            )?)))
        }
    }
}

/// The token manager of the config's first account (the only one with the
/// single-account keys), with its stored lineage loaded.
pub async fn token_manager(
    config: &Config,
    resolver: &Arc<ClientCertResolver>,
) -> Result<TokenManager, BuildError> {
    let oauth = Arc::new(oauth_client(config, resolver)?);
    account_token_manager(config, &config.accounts()[0], oauth).await
}

/// The token manager of `account`, with its stored lineage loaded, using `oauth` (the
/// company's client, shared by every account).
pub async fn account_token_manager(
    config: &Config,
    account: &AccountConfig,
    oauth: Arc<OAuthClient>,
) -> Result<TokenManager, BuildError> {
    let seed = match &account.refresh_token_file {
        Some(file) => Some(RefreshToken::new(secret::read_file(
            "the refresh token seed",
            file,
        )?)),
        None => None,
    };
    let manager = TokenManager::load(
        oauth,
        store_of(&account.token_store)?,
        config.oauth.refresh_before,
        seed,
    )
    .await?;
    manager.set_min_refresh_interval_on_401(config.limits.min_refresh_interval_on_401);
    manager.set_token_store_wait(config.limits.token_store_wait);
    Ok(manager)
}

/// `Bearer <personal token>` from `personal`'s token file, marked sensitive.
pub fn personal_bearer(personal: &PersonalTokenConfig) -> Result<HeaderValue, BuildError> {
    let token = PersonalToken::new(secret::read_file(
        "the personal token",
        &personal.token_file,
    )?);
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
        SecretFileError {
            what: "the personal token",
            file: personal.token_file.clone(),
            message: "it holds characters that cannot go in a header".into(),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The SCA signer of `personal`'s `sca_key_file`, when one is set.
pub fn sca_signer(personal: &PersonalTokenConfig) -> Result<Option<ScaSigner>, BuildError> {
    personal
        .sca_key_file
        .as_ref()
        .map(|file| ScaSigner::load(file).map_err(|message| BuildError::Sca { message }))
        .transpose()
}

/// Everything the request path reads from one config.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Config,
    pub mtls: Upstream,
    pub legacy: Upstream,
    pub generation: u64,
    /// When this snapshot was built (for `/status`).
    pub loaded_at: std::time::SystemTime,
    /// Answers by status class, per route of `config.routes.all()` (the default route
    /// last), for `/status`.
    pub counts: Vec<RouteCounts>,
    /// The route names as metric labels, in the same order as `counts`.
    pub labels: Vec<Arc<str>>,
    /// The routes' last hour for `/status`, in the same order (set by `run` and the
    /// reload from [`crate::history::History::series_for`]; empty elsewhere).
    pub series: Vec<Arc<crate::history::RouteSeries>>,
}

/// The route a request takes under a snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Selected<'a> {
    /// The route's name (also its metric label).
    pub label: &'a Arc<str>,
    /// Index into [`Snapshot::counts`].
    pub index: usize,
    /// The effective mode, after the rollback flag ([`crate::route::Route::effective`]).
    pub mode: Mode,
    pub shadow: bool,
    /// The cool-down when the route falls back to the personal token.
    pub fallback: Option<std::time::Duration>,
}

impl Snapshot {
    /// `lanes`: the serving lanes running (see [`crate::lanes`]), 0 outside `run`.
    pub fn build(
        config: Config,
        resolver: &Arc<ClientCertResolver>,
        generation: u64,
        lanes: usize,
    ) -> Result<Snapshot, BuildError> {
        let roots = tls::root_store(config.upstream.ca_file.as_deref())?;
        let mtls = Upstream::new(
            &config.upstream.mtls_url,
            tls::client_config(roots.clone(), Some(resolver.clone())),
            settings(&config, lanes),
        );
        let legacy = Upstream::new(
            &config.upstream.legacy_url,
            tls::client_config(roots, None),
            settings(&config, lanes),
        );
        Ok(Snapshot {
            mtls,
            legacy,
            generation,
            loaded_at: std::time::SystemTime::now(),
            counts: RouteCounts::for_table(&config.routes),
            labels: config
                .routes
                .all()
                .iter()
                .map(|route| Arc::from(route.name.as_str()))
                .collect(),
            series: Vec::new(),
            config,
        })
    }

    /// The route a request takes, with what it does now (the rollback applied: all of
    /// it, or `account_rollback`, the request's account alone).
    pub fn route(&self, method: &Method, path: &str, account_rollback: bool) -> Selected<'_> {
        let (index, route) = self.config.routes.find(method, path);
        let now = route.effective(self.config.rollback_all || account_rollback);
        Selected {
            label: &self.labels[index],
            index,
            mode: now.mode,
            shadow: now.shadow,
            fallback: now.fallback,
        }
    }

    /// Takes over `old`'s answer counts for the routes that kept their name.
    pub fn carry_counts_from(&self, old: &Snapshot) {
        route_counts::carry_over(
            &old.config.routes,
            &old.counts,
            &self.config.routes,
            &self.counts,
        );
    }

    /// The last-hour series of the route labelled `label`.
    pub fn series_of(&self, label: &str) -> Option<&Arc<crate::history::RouteSeries>> {
        let index = self.labels.iter().position(|l| &**l == label)?;
        self.series.get(index)
    }

    pub fn upstream(&self, mode: Mode) -> &Upstream {
        match mode {
            Mode::OAuthMtls | Mode::OAuthClient => &self.mtls,
            Mode::PersonalToken => &self.legacy,
        }
    }
}
