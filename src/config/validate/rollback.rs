//! The `[rollback]` section (`all`, `probe_interval`), and the check across sections that
//! whatever sends requests to the legacy host (the rollback, a personal-token route, a
//! fallback, a shadow copy of an OAuth route) has a `[personal_token]` to send.

use super::checker::Checker;
use crate::config::raw::RawRollback;
use crate::config::PersonalTokenConfig;
use crate::route::{Mode, RouteTable};
use std::time::Duration;

/// `rollback.all` and `rollback.probe_interval` (`None`: "off").
pub(super) fn rollback(c: &mut Checker<'_>, raw: &RawRollback) -> (bool, Option<Duration>) {
    let probe_interval = match raw.probe_interval.as_deref() {
        Some("off") => None,
        other => Some(c.duration("rollback.probe_interval", other, Duration::from_secs(600))),
    };
    (raw.all, probe_interval)
}

/// A problem on the first key that sends requests to the legacy host when there is
/// no personal token to send.
pub(super) fn personal_token_needed(
    c: &mut Checker<'_>,
    personal_token: Option<&PersonalTokenConfig>,
    rollback_all: bool,
    routes: &RouteTable,
) {
    if personal_token.is_some() {
        return;
    }
    if let Some(key) = legacy_use(rollback_all, routes) {
        c.problem(
            key,
            "sends requests the personal-token way, but there is no [personal_token] section with token_file: add one, or remove this setting",
        );
    }
}

/// The first key that sends requests to the legacy host (which then needs a personal
/// token), if any.
pub(super) fn legacy_use(rollback_all: bool, routes: &RouteTable) -> Option<String> {
    let personal_route = routes
        .routes()
        .iter()
        .position(|r| r.mode == Mode::PersonalToken);
    // Shadow copies of OAuth routes and fallbacks go to the legacy host too.
    let legacy_use = routes
        .routes()
        .iter()
        .position(|r| r.fallback.is_some() || (r.shadow && r.mode != Mode::PersonalToken));
    match (rollback_all, personal_route, legacy_use) {
        (true, _, _) => Some("rollback.all".to_owned()),
        (false, Some(index), _) => Some(format!("route[{index}].mode")),
        (false, None, Some(index)) => Some(format!(
            "route[{index}].{}",
            if routes.routes()[index].fallback.is_some() {
                "fallback"
            } else {
                "shadow"
            }
        )),
        (false, None, None) => None,
    }
}
