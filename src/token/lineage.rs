//! What every token store holds: the user's tokens ([`TokenSet`]) and their generation
//! ([`Lineage`]). Below both stores ([`super::file_store`], [`super::redis_store`]) and
//! the choice between them ([`super::token_store`]); how they are written down is
//! [`super::stored_tokens`]'s.

use crate::secret::{AccessToken, RefreshToken};
use std::time::SystemTime;

/// The user's tokens as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: AccessToken,
    pub expires_at: SystemTime,
    pub refresh_token: Option<RefreshToken>,
    pub refresh_token_expires_at: Option<SystemTime>,
    pub profile_id: Option<String>,
    pub obtained_at: SystemTime,
}

/// A lineage as a store holds it: the tokens and their generation. A file store's
/// generation is always 0; the Redis store counts one up with every new token, so replicas
/// can tell a newer lineage from the one they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub tokens: TokenSet,
    pub generation: u64,
}
