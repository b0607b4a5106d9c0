//! How a lineage's tokens are written down: one JSON encoding, [`StoredTokens`], that
//! both stores hold (the Redis store under its `tokens` field, the file store as the
//! whole file). Version 1, times in whole milliseconds since the Unix epoch (`*_ms`),
//! since tokens may be short-lived.
//!
//! These are the bytes Redis has held since the shared store exists: during a rolling
//! deploy replicas of the previous release read and write them beside this one, so no
//! field may change, and none be added, without a new version that every running
//! release can read. (Token files of earlier releases hold times in seconds; the file
//! store still reads them, [`super::file_store`].)

use super::lineage::TokenSet;
use crate::secret::{AccessToken, RefreshToken};
use crate::timestamps::{from_unix_millis, unix_millis};
use serde::{Deserialize, Serialize};

/// The one version written, and the only one read.
pub(super) const VERSION: u32 = 1;

/// A [`TokenSet`] as stored. No `Debug`: it holds the tokens in the clear.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredTokens {
    pub(super) version: u32,
    pub(super) access_token: String,
    pub(super) access_token_expires_at_ms: u64,
    pub(super) refresh_token: Option<String>,
    pub(super) refresh_token_expires_at_ms: Option<u64>,
    pub(super) profile_id: Option<String>,
    pub(super) obtained_at_ms: u64,
}

impl StoredTokens {
    pub(super) fn new(tokens: &TokenSet) -> StoredTokens {
        StoredTokens {
            version: VERSION,
            access_token: tokens.access_token.expose().to_owned(),
            access_token_expires_at_ms: unix_millis(tokens.expires_at),
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            refresh_token_expires_at_ms: tokens.refresh_token_expires_at.map(unix_millis),
            profile_id: tokens.profile_id.clone(),
            obtained_at_ms: unix_millis(tokens.obtained_at),
        }
    }

    /// The tokens; what is wrong (never a token) for an unknown version or an empty
    /// access token.
    pub(super) fn into_tokens(self) -> Result<TokenSet, String> {
        if self.version != VERSION || self.access_token.is_empty() {
            return Err(format!(
                "unsupported version {} or empty access token",
                self.version
            ));
        }
        Ok(TokenSet {
            access_token: AccessToken::new(self.access_token),
            expires_at: from_unix_millis(self.access_token_expires_at_ms),
            refresh_token: self.refresh_token.map(RefreshToken::new),
            refresh_token_expires_at: self.refresh_token_expires_at_ms.map(from_unix_millis),
            profile_id: self.profile_id,
            obtained_at: from_unix_millis(self.obtained_at_ms),
        })
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Tokens with times in milliseconds (the Redis store's tests use them too).
    pub(crate) fn sample() -> TokenSet {
        TokenSet {
            access_token: AccessToken::new("access-1"),
            expires_at: from_unix_millis(2_000_000_000_123),
            refresh_token: Some(RefreshToken::new("refresh-1")),
            refresh_token_expires_at: None,
            profile_id: Some("42".into()),
            obtained_at: from_unix_millis(1_999_999_998_123),
        }
    }

    /// The bytes replicas of the previous release read from Redis, field for field.
    #[test]
    fn the_encoding_is_the_one_redis_has_always_held() {
        let json = serde_json::to_string(&StoredTokens::new(&sample())).unwrap();
        assert_eq!(
            json,
            r#"{"version":1,"access_token":"access-1","access_token_expires_at_ms":2000000000123,"refresh_token":"refresh-1","refresh_token_expires_at_ms":null,"profile_id":"42","obtained_at_ms":1999999998123}"#
        );
        let read: StoredTokens = serde_json::from_str(&json).unwrap();
        assert_eq!(read.into_tokens().unwrap(), sample());
    }

    #[test]
    fn an_unknown_version_or_an_empty_access_token_is_refused_without_quoting_tokens() {
        let mut other = StoredTokens::new(&sample());
        other.version = 2;
        let error = other.into_tokens().unwrap_err();
        assert!(error.contains("unsupported version 2"), "{error}");
        assert!(!error.contains("refresh-1"), "{error}");
        let mut empty = StoredTokens::new(&sample());
        empty.access_token.clear();
        assert!(empty.into_tokens().is_err());
        let unknown_field = r#"{"version":1,"access_token":"a","access_token_expires_at_ms":1,"refresh_token":null,"refresh_token_expires_at_ms":null,"profile_id":null,"obtained_at_ms":1,"extra":1}"#;
        assert!(serde_json::from_str::<StoredTokens>(unknown_field).is_err());
    }
}
