//! OAuth tokens: the client for Wise's token endpoint ([`client`]), where the lineage is
//! kept between runs ([`token_store`]: a file, [`file_store`], or Redis shared by
//! replicas, [`redis_store`]; what they hold, [`lineage`], in the one encoding of
//! `stored_tokens`), and the manager that hands the current credential to the request
//! path ([`manager`], whose doc walks the lineage step by step and says where each step
//! lives). With a shared store the group refreshes once for all ([`group`], under the
//! lock of [`lock`], by the rules of [`reconcile`], whose doc states the invariant) and
//! every replica follows the store ([`sync`]). A lineage written under a running process
//! is taken up by [`adopt`]. Every error of these is in [`error`].

pub mod adopt;
pub mod client;
mod client_token;
pub mod counters;
pub mod error;
pub mod file_store;
pub mod group;
mod held;
mod keep_fresh;
pub mod lineage;
pub mod lock;
pub mod manager;
mod on_rejection;
pub mod reconcile;
pub mod redis_connection;
pub mod redis_sentinel;
pub mod redis_store;
mod refresh;
pub mod rejection;
pub mod schedule;
mod stored_tokens;
pub mod sync;
pub mod token_store;
mod unreachable;

pub use client::{OAuthClient, OAuthError, TokenResponse};
pub use client_token::ClientToken;
pub use error::StoreError;
pub use file_store::FileStore;
pub use held::{bearer_header, token_set};
pub use lineage::{Lineage, TokenSet};
pub use manager::{CredentialError, TokenManager};
pub use redis_store::RedisStore;
pub use rejection::Rejection;
pub use token_store::TokenStore;
