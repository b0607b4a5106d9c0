//! Readiness: whether wisegate should get traffic now (`/readyz`, `/status`,
//! `wisegate_ready`), and what is wrong without stopping requests yet (`degraded`).
//! Ready when the process is not shutting down, the client certificate is valid and
//! every credential some route needs now (after `rollback.all` and the account's
//! `rollback`) is usable.
//!
//! With several accounts, one that cannot serve (its grant refused, no lineage yet, no
//! personal token) does not make the process unready while another can: every replica
//! serves the same accounts, so failing readiness for one would take every replica out
//! of service and stop the healthy accounts too. Such accounts are listed in
//! [`unavailable_accounts`] (and `wisegate_authorization_required{account}`); only when
//! no account can serve is the process unready.

use crate::account::Account;
use crate::assembly::Snapshot;
use crate::route::Mode;
use crate::Shared;
use std::sync::atomic::Ordering;

/// Why wisegate should not get traffic now; empty when it should.
pub fn not_ready_reasons(shared: &Shared) -> Vec<String> {
    let mut reasons = Vec::new();
    if shared.shutting_down.load(Ordering::Relaxed) {
        reasons.push("shutting down".to_owned());
    }
    let snapshot = shared.snapshot.load();
    let identity = shared.resolver.current();
    if identity.check_current().is_err() {
        reasons.push(format!(
            "the client certificate {} has expired",
            identity.cert_file.display()
        ));
    }
    let accounts = shared.accounts.load();
    let several = accounts.len() > 1;
    let failing: Vec<Vec<String>> = accounts
        .iter()
        .map(|account| account_reasons(&snapshot, account, several))
        .collect();
    // One account serving is enough (see the module doc).
    if failing.iter().all(|account| !account.is_empty()) {
        reasons.extend(failing.into_iter().flatten());
    }
    reasons
}

/// With several accounts, while at least one can serve: why each of the others cannot,
/// each sentence naming its account. Empty otherwise (then [`not_ready_reasons`] has
/// them).
pub fn unavailable_accounts(shared: &Shared) -> Vec<String> {
    let snapshot = shared.snapshot.load();
    let accounts = shared.accounts.load();
    if accounts.len() < 2 {
        return Vec::new();
    }
    let failing: Vec<Vec<String>> = accounts
        .iter()
        .map(|account| account_reasons(&snapshot, account, true))
        .collect();
    if failing.iter().all(|account| !account.is_empty()) {
        return Vec::new();
    }
    failing.into_iter().flatten().collect()
}

/// Why `account` cannot serve the routes as they are now; with `several` accounts each
/// sentence starts with the account's name and names `--account`.
pub fn account_reasons(snapshot: &Snapshot, account: &Account, several: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    let modes = needed_modes(snapshot, account.rollback());
    let authorize = match several {
        true => format!("wisegate authorize --account {}", account.name),
        false => "wisegate authorize".to_owned(),
    };
    if modes.contains(&Mode::OAuthMtls) {
        match account.tokens.authorization_required() {
            Some(outcome) => reasons.push(format!(
                "the OAuth grant was refused at {} ({}): a person must run `{authorize}`; no token call is made until a new authorization arrives ({})",
                crate::timestamps::rfc3339(outcome.at),
                outcome.error_code.as_deref().unwrap_or("invalid_grant"),
                outcome.error.as_deref().unwrap_or("invalid_grant")
            )),
            _ => {
                if let Err(error) = account.tokens.user_bearer() {
                    let mut reason = error.to_string();
                    if several {
                        reason = reason.replace("`wisegate authorize`", &format!("`{authorize}`"));
                    }
                    reasons.push(reason);
                }
            }
        }
    }
    if modes.contains(&Mode::PersonalToken) && account.personal_bearer.is_none() {
        reasons.push("routes need the personal token but none is configured".to_owned());
    }
    if several {
        for reason in &mut reasons {
            *reason = format!("account {}: {reason}", account.name);
        }
    }
    reasons
}

/// What is wrong without stopping requests (yet): the shared token store cannot be
/// reached, so no refresh happens while the held token lasts; or the file store could
/// not be written, so the held token lives in memory only.
pub fn degraded_reasons(shared: &Shared) -> Vec<String> {
    let accounts = shared.accounts.load();
    let several = accounts.len() > 1;
    let mut reasons = Vec::new();
    for account in accounts.iter() {
        let named = |reason: String| match several {
            true => format!("account {}: {reason}", account.name),
            false => reason,
        };
        reasons.extend(account.tokens.store_trouble().map(named));
        if let Some(failure) = account.tokens.store_failure() {
            reasons.push(named(format!(
                "{failure}: the current token is kept in memory only and a restart would lose it"
            )));
        }
    }
    reasons
}

/// The modes some request of an account could take now: each route's effective mode,
/// the default route's included (`account_rollback`: the account's own rollback).
fn needed_modes(snapshot: &Snapshot, account_rollback: bool) -> Vec<Mode> {
    let rollback = snapshot.config.rollback_all || account_rollback;
    let mut modes = Vec::new();
    for route in snapshot.config.routes.all() {
        let mode = route.effective(rollback).mode;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    modes
}
