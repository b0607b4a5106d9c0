//! Each account's background tasks: its refresh schedule
//! ([`crate::token::TokenManager::keep_fresh`]) and, with a shared store, following the
//! group ([`crate::token::sync::keep_in_sync`]). They run until the account's `stop`
//! (a reload removed the account) or the process's shutdown.

use super::set::Account;
use crate::token;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts `account`'s tasks; they end on its `stop` or on `shutdown`.
pub fn start(account: &Arc<Account>, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
    let stop = account.stop.clone();
    let shutdown = shutdown.clone();
    let both = CancellationToken::new();
    let either = both.clone();
    let watcher = tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = shutdown.cancelled() => {}
        }
        either.cancel();
    });
    let tokens = account.tokens.clone();
    vec![
        watcher,
        tokio::spawn(tokens.clone().keep_fresh(both.clone())),
        tokio::spawn(token::sync::keep_in_sync(tokens, both)),
    ]
}

/// Stops the tasks of accounts a reload removed.
pub fn stop(removed: &[Arc<Account>]) {
    for account in removed {
        tracing::warn!(
            account = &*account.name,
            "account removed or its token store changed: its old lineage's tasks stop"
        );
        account.stop.cancel();
    }
}
