//! A config reload's part for the accounts: the new set is built beside the running one
//! ([`super::build`]: unchanged lineages keep their managers), then published at once.
//! New accounts start their background tasks; removed ones stop theirs, and their
//! requests get `unknown_account` from the swap on. Every manager, kept or new, takes
//! up the new OAuth client and the limits that apply to tokens.

use super::build::{build, Built, Company};
use super::tasks;
use crate::assembly::BuildError;
use crate::config::Config;
use crate::token::OAuthClient;
use crate::Shared;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The accounts of `config`, built against the running ones; nothing is published.
pub async fn prepare(
    shared: &Shared,
    config: &Config,
    oauth: OAuthClient,
) -> Result<(Built, Company), BuildError> {
    let company = Company {
        oauth: Arc::new(oauth),
        client_token: shared.company.load().client_token.clone(),
    };
    let running = shared.accounts.load_full();
    let built = build(config, &company, Some(&running), &shared.metrics.lineages).await?;
    Ok((built, company))
}

/// Publishes what [`prepare`] built; new accounts' tasks run until `shutdown`.
pub fn publish(
    shared: &Shared,
    config: &Config,
    (built, company): (Built, Company),
    shutdown: &CancellationToken,
) {
    for account in built.set.iter() {
        let tokens = &account.tokens;
        tokens.replace_oauth(company.oauth.clone());
        tokens.set_min_refresh_interval_on_401(config.limits.min_refresh_interval_on_401);
        tokens.set_token_store_wait(config.limits.token_store_wait);
    }
    for account in &built.added {
        account
            .tokens
            .events
            .attach(shared.history.timeline().clone());
        // The tasks end on the account's stop or the shutdown; nothing waits for them.
        drop(tasks::start(account, shutdown));
        tracing::warn!(account = &*account.name, store = %account.tokens.store().describe(), "account added");
    }
    shared.company.store(Arc::new(company));
    shared.accounts.store(Arc::new(built.set));
    tasks::stop(&built.removed);
}
