//! One [`Account`] (its lineage, personal-token side and rollback flag) and the
//! [`AccountSet`] of a config, in the config's order. The set is published whole in
//! [`crate::Shared`]; a request loads it once and keeps the account it selected.

use super::select::{matching, UnknownAccount};
use crate::config::AccountConfig;
use crate::sca::ScaSigner;
use crate::token::TokenManager;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// One Wise account served by this wisegate.
pub struct Account {
    /// Its name, as in metrics, logs and `--account`.
    pub name: Arc<str>,
    /// Its config (lineage settings, hashes, personal token, rollback).
    pub config: AccountConfig,
    /// Its lineage; kept across reloads while name and store stay the same.
    pub tokens: Arc<TokenManager>,
    /// `Bearer <this account's personal token>`, when it has one.
    pub personal_bearer: Option<HeaderValue>,
    /// Signs SCA challenges on the legacy host with this account's key.
    pub sca: Option<ScaSigner>,
    /// Stops the lineage's background tasks; shared by the managers' account versions
    /// (a reload that keeps the lineage keeps its tasks).
    pub stop: CancellationToken,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("store", &self.tokens.store().describe())
            .field("personal_token", &self.personal_bearer.is_some())
            .field("rollback", &self.config.rollback)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Whether this account alone goes the personal-token way.
    pub fn rollback(&self) -> bool {
        self.config.rollback
    }
}

/// The accounts of one config, in its order (at least one).
#[derive(Debug)]
pub struct AccountSet {
    accounts: Vec<Arc<Account>>,
}

impl AccountSet {
    /// `accounts` in config order; never empty (a config has at least one account).
    pub fn new(accounts: Vec<Arc<Account>>) -> AccountSet {
        AccountSet { accounts }
    }

    /// The account a request with `headers` is for: the only one, or the one whose
    /// `app_token_sha256` holds the hash of its bearer token.
    pub fn select(&self, headers: &HeaderMap) -> Result<&Arc<Account>, UnknownAccount> {
        if let [only] = self.accounts.as_slice() {
            return Ok(only);
        }
        let hashes = self
            .accounts
            .iter()
            .map(|account| account.config.app_token_sha256.as_slice());
        matching(headers, hashes).map(|index| &self.accounts[index])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.iter()
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Account>> {
        self.accounts.iter().find(|account| &*account.name == name)
    }

    /// The first account (the only one with the single-account keys).
    pub fn first(&self) -> &Arc<Account> {
        &self.accounts[0]
    }

    /// The names, in config order, for messages.
    pub fn names(&self) -> String {
        self.accounts
            .iter()
            .map(|account| &*account.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
