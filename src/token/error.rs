//! The token module's errors: why no credential can be attached ([`CredentialError`]),
//! why a refresh did not happen ([`RefreshError`]), what Wise's token endpoint answered
//! ([`OAuthError`]) and what is wrong with a token store ([`StoreError`]). Each message
//! says what to do; none holds a token.

use crate::upstream::UpstreamError;
use http::StatusCode;
use std::path::PathBuf;

/// Why no credential can be attached to a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialError {
    #[error("no OAuth token is stored in {store}: run `wisegate authorize` once to obtain one")]
    NotAuthorized { store: String },
    #[error("no valid OAuth access token: {reason}")]
    TokenUnavailable { reason: String },
    #[error("no client-credentials token could be obtained: {reason}")]
    ClientTokenUnavailable { reason: String },
    #[error("the personal token is not available: {reason}")]
    PersonalTokenMissing { reason: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no OAuth token is stored in {store}: run `wisegate authorize` once to obtain one")]
    NotAuthorized { store: String },
    #[error("the stored lineage has no refresh token: run `wisegate authorize` again")]
    NoRefreshToken,
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error("the token endpoint returned an access token that cannot be sent in a header")]
    Unusable,
    /// The shared store cannot be used, and refreshing alone would fork the lineage.
    #[error("{message}")]
    StoreUnavailable { message: String },
    /// The last refresh's failure, not asked again: it failed while this caller waited,
    /// or Wise refused the grant.
    #[error("{message}")]
    AlreadyFailed { message: String },
    /// The refresh task ended without an outcome (shutdown, or the task failed).
    #[error("the token refresh was interrupted ({detail}): wisegate is shutting down or the refresh task failed; the app may retry")]
    Interrupted { detail: String },
}

impl RefreshError {
    /// The OAuth error code Wise answered with (or what stands for it), for `/status`.
    pub(super) fn code(&self) -> Option<String> {
        match self {
            RefreshError::OAuth(OAuthError::InvalidGrant { .. }) => Some("invalid_grant".into()),
            RefreshError::OAuth(OAuthError::InvalidClient { .. }) => Some("invalid_client".into()),
            RefreshError::OAuth(OAuthError::Refused { error, .. }) => error.clone(),
            RefreshError::NoRefreshToken => Some("no_refresh_token".into()),
            _ => None,
        }
    }

    /// Whether this failure came from a call to the token endpoint (counted and kept as
    /// the last refresh outcome), as opposed to no call being made.
    pub(super) fn is_attempt(&self) -> bool {
        matches!(
            self,
            RefreshError::OAuth(_) | RefreshError::Unusable | RefreshError::NoRefreshToken
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the token endpoint could not be used: {0}")]
    Transport(#[from] UpstreamError),
    #[error("Wise refused the grant (invalid_grant{}): the refresh token or code is invalid, expired, revoked or already used; run `wisegate authorize` again", describe(.description))]
    InvalidGrant { description: Option<String> },
    #[error("Wise refused the client credentials (invalid_client{}): check oauth.client_id and the client secret", describe(.description))]
    InvalidClient { description: Option<String> },
    #[error("the token endpoint answered {status}{}{}", .error.as_deref().map(|e| format!(" {e}")).unwrap_or_default(), describe(.description))]
    Refused {
        status: StatusCode,
        error: Option<String>,
        description: Option<String>,
    },
    #[error(
        "the token endpoint answered {status} with a body that is not a token response ({detail})"
    )]
    Malformed { status: StatusCode, detail: String },
}

fn describe(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the token store {file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("the token store {file} is corrupt ({message}): move it aside and run `wisegate authorize` again")]
    Corrupt { file: PathBuf, message: String },
    #[error("cannot write the token store {file}: {message}")]
    Write { file: PathBuf, message: String },
    /// `store` is the Redis URL without its password.
    #[error("the shared token store {store} cannot be reached: {message}")]
    Unreachable { store: String, message: String },
    #[error("the shared token store {store} cannot be used: {message}")]
    Unusable { store: String, message: String },
    #[error("the shared token store {store} holds something that is not a token lineage under {key} ({message}): delete that key and run `wisegate authorize` again")]
    CorruptShared {
        store: String,
        key: String,
        message: String,
    },
}
