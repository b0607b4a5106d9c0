//! The keys that share out the upstream request slots ([`crate::slots`]) and the floor
//! under a request body's rate ([`crate::body_stall`]). The shares default to fractions of
//! `limits.max_upstream_requests`, so a smaller or larger pool keeps the same fairness.

use super::checker::Checker;
use crate::config::raw::RawLimits;
use crate::config::Limits;

/// Fills in `limits`' shares and rate floor from `raw`; `limits.max_upstream_requests`
/// is already checked. In sidecar mode (`gateway` false) the one app may hold every slot
/// over one connection (an h2c app, or a local mesh proxy multiplexing onto one) unless
/// the key says otherwise; in gateway mode one connection gets a quarter by default.
pub(super) fn slot_limits(
    c: &mut Checker<'_>,
    raw: &RawLimits,
    gateway: bool,
    limits: &mut Limits,
) {
    let all = limits.max_upstream_requests;
    limits.max_upstream_requests_per_connection = share(
        c,
        "limits.max_upstream_requests_per_connection",
        raw.max_upstream_requests_per_connection,
        all,
        if gateway { 4 } else { 1 },
    );
    limits.max_upstream_requests_per_client = share(
        c,
        "limits.max_upstream_requests_per_client",
        raw.max_upstream_requests_per_client,
        all,
        2,
    );
    limits.request_body_min_rate = raw
        .request_body_min_rate
        .unwrap_or(Limits::default().request_body_min_rate);
}

/// A share of `all` slots: at most `all`; by default `all / divisor` (at least 1).
fn share(c: &mut Checker<'_>, key: &str, value: Option<u64>, all: usize, divisor: usize) -> usize {
    let default = (all / divisor).max(1);
    let share = c.positive(key, value, default as u64);
    match usize::try_from(share) {
        Ok(share) if share <= all => share,
        _ => {
            c.problem(
                key,
                format!("is larger than limits.max_upstream_requests ({all}), so it would bound nothing: lower it, or leave it out for {default} (1/{divisor} of max_upstream_requests)"),
            );
            default
        }
    }
}
