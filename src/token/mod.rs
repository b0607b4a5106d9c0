//! OAuth tokens: the client for Wise's token endpoint ([`client`]), where the lineage is
//! kept between runs ([`store`]), and the manager that hands the current credential to
//! the request path ([`manager`]).

pub mod client;
pub mod manager;
pub mod schedule;
pub mod store;

pub use client::{OAuthClient, OAuthError, TokenResponse};
pub use manager::{CredentialError, TokenManager};
pub use store::{FileStore, StoreError, TokenSet};
