//! What `/status` says, as one serde type: the admin endpoint serialises it, the HTML
//! page renders it and `wisegate token status` reads it back from a running wisegate.
//! Fields are added, never renamed (the JSON is a contract); fields added later carry
//! `#[serde(default)]`, so that a newer command line can read an older wisegate.

use crate::history::{Hour, RouteHour};
use serde::{Deserialize, Serialize};

/// The whole status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub ready: bool,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
    pub rollback_all: bool,
    pub rollback_readiness: RollbackReadiness,
    pub config: ConfigStatus,
    /// The configured routes in order, then the default route.
    pub routes: Vec<RouteStatus>,
    /// The first account's token (the only one with the single-account keys).
    pub token: TokenStatus,
    /// Every account: its token, store and rollback state.
    #[serde(default)]
    pub accounts: Vec<AccountStatus>,
    pub client_certificate: CertificateStatus,
    /// The last hour's events and where it starts (each route has its own series).
    #[serde(default)]
    pub last_hour: Hour,
}

/// The last rollback-readiness probe (all `null` before the first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackReadiness {
    pub state: Option<String>,
    pub checked_at: Option<String>,
    pub detail: Option<String>,
    /// `null`: `rollback.probe_interval = "off"`.
    pub probe_interval_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub file: String,
    pub generation: u64,
    pub sha256: String,
    pub loaded_at: String,
    /// `null`: no reload since start.
    pub last_reload: Option<LastReload>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastReload {
    pub at: String,
    /// `success`, `failure` or `cert_rejected`.
    pub result: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    pub path: String,
    /// Empty: every method.
    pub methods: Vec<String>,
    pub mode: String,
    /// The mode requests take now (after `rollback.all`).
    pub effective_mode: String,
    pub shadow: bool,
    /// `null`: `fallback = false`.
    pub fallback: Option<FallbackStatus>,
    /// Answers by status class since start (kept across reloads by route name).
    pub responses: Responses,
    #[serde(default)]
    pub last_hour: RouteHour,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FallbackStatus {
    pub cooldown_s: u64,
    pub open: bool,
    /// Seconds until the next probe of the mTLS side, while open.
    pub probe_in_s: Option<u64>,
}

/// Answers per status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Responses {
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// The OAuth access token: expiry and the last refresh, never the token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenStatus {
    pub expires_at: Option<String>,
    pub expires_unix: Option<u64>,
    pub profile_id: Option<String>,
    /// `null`: no refresh since start.
    pub last_refresh: Option<LastRefresh>,
    /// `null` unless Wise refused the refresh token (`invalid_grant`): then only a person
    /// running `wisegate authorize` brings the OAuth routes back.
    #[serde(default)]
    pub authorization_required: Option<AuthorizationRequired>,
}

/// One account: its name, token, store and rollback state; never a token or a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub name: String,
    pub token: TokenStatus,
    /// The token store: a path, or the Redis URL without its password.
    pub store: String,
    /// `null` while the store answers; else what is wrong with it.
    pub store_trouble: Option<String>,
    /// This account alone goes the personal-token way.
    pub rollback: bool,
    /// Whether a personal token is configured for it.
    pub personal_token: bool,
    /// How many app token hashes select it.
    pub app_tokens: usize,
}

/// Wise refused the grant: when, its error code and what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequired {
    pub refused_at: String,
    pub error_code: String,
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRefresh {
    pub at: String,
    /// `null` when it succeeded.
    pub error: Option<String>,
    pub grant_refused: bool,
    /// Wise's `error` code when it refused the call (`invalid_grant`, ...).
    #[serde(default)]
    pub error_code: Option<String>,
}

impl LastRefresh {
    /// One line for `wisegate token status`.
    pub fn describe(&self) -> String {
        match &self.error {
            None => format!("succeeded at {}", self.at),
            Some(error) => format!("FAILED at {}: {error}", self.at),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateStatus {
    pub file: String,
    pub expires_at: String,
    pub expires_unix: u64,
}
