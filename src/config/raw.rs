//! The config file as written: serde types that mirror the TOML one to one. Nothing is
//! checked here beyond the shape; `validate/` turns this into a typed
//! [`crate::config::Config`]. Unknown keys are ignored by serde and reported, all of
//! them with their sections, by `unknown.rs`, whose list of known keys is these types'
//! fields.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub environment: Option<String>,
    #[serde(default)]
    pub listen: RawListen,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub upstream: RawUpstream,
    pub mtls: Option<RawMtls>,
    pub oauth: Option<RawOAuth>,
    pub personal_token: Option<RawPersonalToken>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub rollback: RawRollback,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default, rename = "route")]
    pub routes: Vec<RawRoute>,
    #[serde(default, rename = "account")]
    pub accounts: Vec<RawAccount>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawListen {
    pub address: Option<String>,
    #[serde(default)]
    pub allow_non_loopback: bool,
    pub shutdown_grace: Option<String>,
    pub threads: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAdmin {
    pub address: Option<String>,
    #[serde(default)]
    pub allow_non_loopback: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawUpstream {
    pub mtls_url: Option<String>,
    pub legacy_url: Option<String>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawMtls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawOAuth {
    pub client_id: Option<String>,
    pub client_secret_file: Option<String>,
    pub client_secret_env: Option<String>,
    pub redirect_uri: Option<String>,
    pub token_store: Option<String>,
    pub redis_password_file: Option<String>,
    pub redis_key_prefix: Option<String>,
    pub redis_ca_file: Option<String>,
    pub redis_sentinel_password_file: Option<String>,
    pub refresh_token_file: Option<String>,
    pub token_url: Option<String>,
    pub authorize_url: Option<String>,
    pub refresh_before: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawPersonalToken {
    pub token_file: Option<String>,
    pub sca_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    pub max_header_bytes: Option<u64>,
    pub max_body_bytes: Option<u64>,
    pub header_read_timeout: Option<String>,
    pub request_body_timeout: Option<String>,
    pub response_write_timeout: Option<String>,
    pub upstream_connect_timeout: Option<String>,
    pub upstream_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u64>,
    pub max_upstream_requests: Option<u64>,
    pub max_upstream_requests_per_connection: Option<u64>,
    pub max_upstream_requests_per_client: Option<u64>,
    pub request_body_min_rate: Option<u64>,
    pub min_refresh_interval_on_401: Option<String>,
    pub token_store_wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRollback {
    #[serde(default)]
    pub all: bool,
    pub probe_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLog {
    pub format: Option<String>,
    pub level: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawRoute {
    pub name: Option<String>,
    pub path: Option<String>,
    pub methods: Option<Vec<String>>,
    pub mode: Option<String>,
    #[serde(default)]
    pub shadow: bool,
    #[serde(default)]
    pub fallback: bool,
    pub fallback_cooldown: Option<String>,
}

/// One `[[account]]`: a Wise account served through this wisegate, chosen by the app's
/// token (its SHA-256 in `app_token_sha256`).
#[derive(Debug, Deserialize)]
pub struct RawAccount {
    pub name: Option<String>,
    pub app_token_sha256: Option<Vec<String>>,
    pub token_store: Option<String>,
    pub personal_token_file: Option<String>,
    pub sca_key_file: Option<String>,
    #[serde(default)]
    pub rollback: bool,
}
