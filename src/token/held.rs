//! A token as the manager holds it: the token set with its ready-made `Authorization`
//! value and its generation in the shared store; how token responses and the refresh
//! token seed become one.

use super::client::TokenResponse;
use super::store::{Lineage, TokenSet};
use crate::secret::{AccessToken, RefreshToken};
use http::HeaderValue;
use std::time::{Duration, SystemTime};

/// A token with its ready-made header value and its generation in the shared store
/// (0 with a file store, or for a seed that was never refreshed).
#[derive(Debug)]
pub(super) struct Held {
    pub(super) tokens: TokenSet,
    pub(super) bearer: HeaderValue,
    pub(super) generation: u64,
}

impl Held {
    pub(super) fn new(tokens: TokenSet, generation: u64) -> Option<Held> {
        let bearer = bearer_header(&tokens.access_token)?;
        Some(Held {
            tokens,
            bearer,
            generation,
        })
    }

    pub(super) fn lineage(&self) -> Lineage {
        Lineage {
            tokens: self.tokens.clone(),
            generation: self.generation,
        }
    }

    pub(super) fn usable(&self, now: SystemTime) -> bool {
        self.tokens.expires_at > now
    }

    pub(super) fn lifetime(&self) -> Duration {
        self.tokens
            .expires_at
            .duration_since(self.tokens.obtained_at)
            .unwrap_or(Duration::ZERO)
    }
}

/// `Bearer <token>`, marked sensitive so hyper's HPACK never indexes it.
pub fn bearer_header(token: &AccessToken) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A lineage that only has the refresh token from `oauth.refresh_token_file`: its
/// empty access token has expired long ago, so the first refresh starts the lineage.
pub(super) fn seeded(refresh_token: &RefreshToken) -> Option<Held> {
    tracing::info!("the token store is empty: seeding it from oauth.refresh_token_file");
    let seed = TokenSet {
        access_token: AccessToken::new(""),
        expires_at: SystemTime::UNIX_EPOCH,
        refresh_token: Some(refresh_token.clone()),
        refresh_token_expires_at: None,
        profile_id: None,
        obtained_at: SystemTime::UNIX_EPOCH,
    };
    Held::new(seed, 0)
}

/// A token response as a storable set.
pub fn token_set(response: TokenResponse, profile_id: Option<String>) -> TokenSet {
    TokenSet {
        access_token: response.access_token,
        expires_at: response.expires_at,
        refresh_token: response.refresh_token,
        refresh_token_expires_at: response.refresh_token_expires_at,
        profile_id,
        obtained_at: response.received_at,
    }
}
