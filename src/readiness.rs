//! Readiness: whether wisegate should get traffic now (`/readyz`, `/status`,
//! `wisegate_ready`), and what is wrong without stopping requests yet (`degraded`).
//! Ready when the process is not shutting down, the client certificate is valid and
//! every credential some route needs now (after `rollback.all`) is usable.

use crate::app::Snapshot;
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
    let modes = needed_modes(&snapshot);
    if modes.contains(&Mode::OAuthMtls) {
        match shared.tokens.authorization_required() {
            Some(outcome) => reasons.push(format!(
                "the OAuth grant was refused at {} ({}): a person must run `wisegate authorize`; no token call is made until a new authorization arrives ({})",
                crate::timestamps::rfc3339(outcome.at),
                outcome.error_code.as_deref().unwrap_or("invalid_grant"),
                outcome.error.as_deref().unwrap_or("invalid_grant")
            )),
            _ => {
                if let Err(error) = shared.tokens.user_bearer() {
                    reasons.push(error.to_string());
                }
            }
        }
    }
    if modes.contains(&Mode::PersonalToken) && snapshot.personal_bearer.is_none() {
        reasons.push("routes need the personal token but none is configured".to_owned());
    }
    reasons
}

/// What is wrong without stopping requests (yet): the shared token store cannot be
/// reached, so no refresh happens while the held token lasts; or the file store could
/// not be written, so the held token lives in memory only.
pub fn degraded_reasons(shared: &Shared) -> Vec<String> {
    let mut reasons: Vec<String> = shared.tokens.store_trouble().into_iter().collect();
    if let Some(failure) = shared.tokens.store_failure() {
        reasons.push(format!(
            "{failure}: the current token is kept in memory only and a restart would lose it"
        ));
    }
    reasons
}

/// The modes some request could take now: each route's effective mode, the default
/// route's included.
fn needed_modes(snapshot: &Snapshot) -> Vec<Mode> {
    let rollback = snapshot.config.rollback_all;
    let mut modes = Vec::new();
    for route in snapshot.config.routes.all() {
        let mode = route.effective(rollback).mode;
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    modes
}
