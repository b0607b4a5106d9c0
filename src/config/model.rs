//! The validated configuration: [`Config`] and its sections, as `validate` builds them
//! and everything else reads them. The limits are in `limits.rs`, the accounts in
//! `account.rs`, the token stores in `store.rs`.

use super::account::{self, AccountConfig, Accounts};
use super::limits::Limits;
use crate::route::RouteTable;
use http::Uri;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    pub limits: Limits,
    pub rollback_all: bool,
    /// How often the legacy host is probed (rollback readiness); `None`: "off".
    pub rollback_probe_interval: Option<std::time::Duration>,
    pub routes: RouteTable,
    pub log: Log,
    /// The `[[account]]` tables, or the one account of the single-account keys (its
    /// token store, refresh token file and personal token).
    pub accounts: Accounts,
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
    pub token_url: Uri,
    pub authorize_url: String,
    pub refresh_before: Duration,
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

impl Config {
    /// The accounts this config serves, in file order: the `[[account]]` tables, or the
    /// one `default` account of the single-account keys.
    pub fn accounts(&self) -> Vec<AccountConfig> {
        self.accounts.as_slice().to_vec()
    }

    /// Whether the accounts are `[[account]]` tables (each named in what is shown), not
    /// the single-account keys.
    pub fn has_account_tables(&self) -> bool {
        matches!(self.accounts, Accounts::Tables(_))
    }

    /// The account `--account NAME` names (`None`: the only one), or what to pass.
    pub fn account(&self, name: Option<&str>) -> Result<AccountConfig, String> {
        account::find(&self.accounts(), name, &self.file)
    }
}
