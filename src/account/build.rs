//! The accounts of a config, built before they are published. An account whose lineage
//! settings (name, token store; with the single-account keys the name alone, as
//! `oauth.token_store` takes effect after a restart) are those of a running account keeps that account's
//! token manager and background tasks: same lineage, no refresh, requests in flight
//! unaffected; its hashes, personal token, SCA key and rollback flag apply at once. A
//! new account gets a manager of its own (its store loaded; no lineage yet only means
//! it needs `wisegate authorize --account NAME`). Every manager shares the company's
//! OAuth client and its one client-credentials token.

use super::set::{Account, AccountSet};
use crate::assembly::{self, BuildError};
use crate::config::Config;
use crate::lineage_metrics::LineageMetrics;
use crate::token::{ClientToken, OAuthClient};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the OAuth client owns, shared by every account.
#[derive(Clone)]
pub struct Company {
    pub oauth: Arc<OAuthClient>,
    pub client_token: Arc<ClientToken>,
}

impl std::fmt::Debug for Company {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Company").finish_non_exhaustive()
    }
}

/// A config's accounts, and how they differ from the running ones.
#[derive(Debug)]
pub struct Built {
    pub set: AccountSet,
    /// Accounts with a new manager (their background tasks are not started yet).
    pub added: Vec<Arc<Account>>,
    /// Running accounts the config no longer has (or whose lineage changed).
    pub removed: Vec<Arc<Account>>,
}

/// Builds `config`'s accounts, reusing `running`'s managers where the lineage is the
/// same. Fails on an unreadable personal token, SCA key or token store (nothing is
/// published then).
/// New managers count into `metrics`' series of their account.
pub async fn build(
    config: &Config,
    company: &Company,
    running: Option<&AccountSet>,
    metrics: &LineageMetrics,
) -> Result<Built, BuildError> {
    let mut accounts = Vec::new();
    let mut added = Vec::new();
    // `oauth.token_store` (the single-account keys) takes effect after a restart, as
    // documented; an `[[account]]`'s token_store is a new lineage at once.
    let store_after_restart = !config.has_account_tables();
    for mut account_config in config.accounts() {
        let personal_bearer = account_config
            .personal_token
            .as_ref()
            .map(assembly::personal_bearer)
            .transpose()?;
        let sca = match &account_config.personal_token {
            Some(personal) => assembly::sca_signer(personal)?,
            None => None,
        };
        let kept = running
            .and_then(|set| set.get(&account_config.name))
            .filter(|old| {
                old.config.same_lineage(&account_config)
                    || (store_after_restart && old.config.app_token_sha256.is_empty())
            });
        if let Some(old) = kept {
            account_config.token_store = old.config.token_store.clone();
            account_config.refresh_token_file = old.config.refresh_token_file.clone();
        }
        let (tokens, stop, new) = match kept {
            Some(old) => (old.tokens.clone(), old.stop.clone(), false),
            None => {
                let manager =
                    assembly::account_token_manager(config, &account_config, company.oauth.clone())
                        .await?
                        .with_client_token(company.client_token.clone())
                        .counting_into(metrics.counters_for(&account_config.name));
                (Arc::new(manager), CancellationToken::new(), true)
            }
        };
        let account = Arc::new(Account {
            name: Arc::from(account_config.name.as_str()),
            config: account_config,
            tokens,
            personal_bearer,
            sca,
            stop,
        });
        if new {
            added.push(account.clone());
        }
        accounts.push(account);
    }
    let set = AccountSet::new(accounts);
    let removed = running
        .map(|old| {
            old.iter()
                .filter(|account| {
                    set.get(&account.name)
                        .is_none_or(|new| !Arc::ptr_eq(&new.tokens, &account.tokens))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(Built {
        set,
        added,
        removed,
    })
}
