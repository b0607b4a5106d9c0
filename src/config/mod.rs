//! Configuration: the TOML file read into [`raw::RawConfig`] (serde), then validated
//! into a typed [`Config`]. Every problem is reported at once, unknown keys
//! (`unknown.rs`) beside wrong values, each with the file, line and key, so a broken
//! config is fixed in one go. Relative paths are resolved against the config file's
//! folder. The keys a reload cannot apply are listed once, in `restart.rs`.

pub mod account;
mod locate;
pub mod raw;
pub mod restart;
mod sentinel_url;
mod store;
mod unknown;
mod validate;

use crate::route::RouteTable;
use http::Uri;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use account::{AccountConfig, PersonalTokenConfig, DEFAULT_ACCOUNT};
pub use sentinel_url::{is_sentinel_url, SentinelUrl, SENTINEL_EXAMPLE};
pub use store::{RedisStoreConfig, RedisUrl, TokenStoreConfig};
pub use validate::validate;

/// Which of Wise's environments the default hosts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub fn mtls_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://api-mtls.wise-sandbox.com",
            Environment::Production => "https://api-mtls.transferwise.com",
        }
    }

    pub fn legacy_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://api.wise-sandbox.com",
            Environment::Production => "https://api.wise.com",
        }
    }

    pub fn authorize_url(self) -> &'static str {
        match self {
            Environment::Sandbox => "https://wise-sandbox.com/oauth/authorize/",
            Environment::Production => "https://wise.com/oauth/authorize/",
        }
    }
}

/// A validated configuration snapshot.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (absolute when it was given so).
    pub file: PathBuf,
    /// The SHA-256 (hex) of the text this was parsed from: the audit trail's identity.
    pub sha256: String,
    pub environment: Environment,
    pub listen: Listen,
    pub admin: Admin,
    pub upstream: Upstream,
    pub mtls: Mtls,
    pub oauth: OAuth,
    pub personal_token: Option<PersonalTokenConfig>,
    pub limits: Limits,
    pub rollback_all: bool,
    /// How often the legacy host is probed (rollback readiness); `None`: "off".
    pub rollback_probe_interval: Option<std::time::Duration>,
    pub routes: RouteTable,
    pub log: Log,
    /// The `[[account]]` tables as validated; empty with the single-account keys (read
    /// both through [`Config::accounts`]).
    pub account_tables: Vec<AccountConfig>,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub address: SocketAddr,
    pub shutdown_grace: Duration,
    /// Serving lanes (threads); `None`: one per available core.
    pub threads: Option<usize>,
}

impl Listen {
    /// Gateway mode: the listener is not loopback-only, so clients have addresses of their
    /// own (in sidecar mode every connection comes from loopback).
    pub fn is_gateway(&self) -> bool {
        !self.address.ip().is_loopback()
    }
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub address: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// `https://host[:port]`, no path.
    pub mtls_url: Uri,
    pub legacy_url: Uri,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Mtls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Where the client secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone)]
pub struct OAuth {
    pub client_id: String,
    pub client_secret: SecretSource,
    pub redirect_uri: String,
    /// `oauth.token_store`: a file, or a shared Redis store for several replicas.
    pub token_store: TokenStoreConfig,
    /// A read-only file holding a refresh token that seeds an empty token store.
    pub refresh_token_file: Option<PathBuf>,
    pub token_url: Uri,
    pub authorize_url: String,
    pub refresh_before: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    /// The longest the app may pause while sending a request body.
    pub request_body_timeout: Duration,
    /// The longest the app may leave an answer unread before its connection is closed.
    pub response_write_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Requests in flight to each upstream host at once.
    pub max_upstream_requests: usize,
    /// How many of those one app connection may hold (h2c carries many streams).
    pub max_upstream_requests_per_connection: usize,
    /// How many of those one client address may hold, in gateway mode only.
    pub max_upstream_requests_per_client: usize,
    /// The slowest a request body may arrive, in bytes per second of waiting for it, over
    /// each `request_body_timeout` of waiting; 0: no floor.
    pub request_body_min_rate: u64,
    /// How long after a token was obtained a 401 from Wise does not refresh it again.
    pub min_refresh_interval_on_401: Duration,
    /// How long a request whose token Wise rejected waits for the shared token store to
    /// answer, or a newer lineage to arrive, before it gets 503.
    pub token_store_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            response_write_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_connections: 4096,
            max_upstream_requests: 256,
            max_upstream_requests_per_connection: 64,
            max_upstream_requests_per_client: 128,
            request_body_min_rate: 1024,
            min_refresh_interval_on_401:
                crate::token::rejection::DEFAULT_MIN_REFRESH_INTERVAL_ON_401,
            token_store_wait: crate::token::manager::DEFAULT_TOKEN_STORE_WAIT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Log {
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `wisegate=debug`.
    pub level: String,
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key as written in the file (`oauth.client_id`, `route[1].mode`).
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Everything wrong with a config file, reported at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "invalid config {} ({count} problem{})",
            self.file.display(),
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {}", self.file.display())?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            if problem.key.is_empty() {
                write!(f, ": {}", problem.message)?;
            } else {
                write!(f, ": {}: {}", problem.key, problem.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Config {
    /// The accounts this config serves, in file order: the `[[account]]` tables, or the
    /// one `default` account of the single-account keys.
    pub fn accounts(&self) -> Vec<AccountConfig> {
        if !self.account_tables.is_empty() {
            return self.account_tables.clone();
        }
        vec![AccountConfig {
            name: DEFAULT_ACCOUNT.to_owned(),
            app_token_sha256: Vec::new(),
            token_store: self.oauth.token_store.clone(),
            refresh_token_file: self.oauth.refresh_token_file.clone(),
            personal_token: self.personal_token.clone(),
            rollback: false,
        }]
    }

    /// The account `--account NAME` names (`None`: the only one), or what to pass.
    pub fn account(&self, name: Option<&str>) -> Result<AccountConfig, String> {
        account::find(&self.accounts(), name, &self.file)
    }

    /// Reads and validates a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_owned(),
            problems: vec![Problem {
                key: String::new(),
                line: None,
                message: format!("cannot read the config file: {error}"),
            }],
        })?;
        Config::parse(file, &text)
    }

    /// Validates config text as if it had been read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut problems = unknown::unknown_keys(text);
        let refused = |mut problems: Vec<Problem>| {
            problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
            ConfigError {
                file: file.to_owned(),
                problems,
            }
        };
        let raw: raw::RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(error) => {
                problems.push(Problem {
                    key: String::new(),
                    line: error.span().map(|span| locate::line_of(text, span.start)),
                    message: error.message().to_owned(),
                });
                return Err(refused(problems));
            }
        };
        match validate(file, raw) {
            Ok(mut config) if problems.is_empty() => {
                config.sha256 = sha256_hex(text.as_bytes());
                Ok(config)
            }
            Ok(_) => Err(refused(problems)),
            Err(invalid) => {
                problems.extend(invalid.into_iter().map(|problem| Problem {
                    line: locate::line_of_key(text, &problem.key),
                    ..problem
                }));
                Err(refused(problems))
            }
        }
    }
}
