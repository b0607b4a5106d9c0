//! Several Wise accounts through one wisegate. Each account (an `[[account]]` table, or
//! the one `default` account of the single-account keys) has its own OAuth lineage (its
//! own [`crate::token::TokenManager`]: store, refresh schedule, single flight, 401
//! replay, readiness), its personal token, SCA key and rollback flag; the OAuth client
//! and its client-credentials token are the company's and shared by all.
//!
//! - [`set`]: one [`Account`] and the [`AccountSet`] of a config, published in
//!   [`crate::Shared`] and swapped whole on reload.
//! - [`select`]: which account a request is for, from the SHA-256 of the app's
//!   `Authorization: Bearer` token compared in constant time with every configured hash.
//!   With one account every request is its own (any credential is replaced); with
//!   several, no match is refused with `unknown_account` before anything is sent.
//! - [`build`]: the accounts of a config, reusing the running managers of accounts whose
//!   lineage did not change (a reload leaves their tokens and requests untouched).
//! - [`reload`]: a config reload's part: the new set built beside the running one, then
//!   published at once.
//! - [`tasks`]: each account's background tasks (refresh schedule, shared-store sync),
//!   stopped when the account goes.

pub mod build;
pub mod reload;
pub mod select;
pub mod set;
pub mod tasks;

pub use select::{hash_token, hash_token_hex, UnknownAccount};
pub use set::{Account, AccountSet};
