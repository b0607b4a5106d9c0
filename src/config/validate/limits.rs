//! The `[limits]` section: sizes, timeouts and connection counts, each with a safe
//! default; the slot shares (`slot_limits.rs`) and the 401 refresh floor
//! (`token_limits.rs`) have files of their own.

use super::checker::Checker;
use super::slot_limits;
use super::token_limits::{min_refresh_interval_on_401, token_store_wait};
use crate::config::raw::RawLimits;
use crate::config::Limits;
use std::time::Duration;

/// Validates `[limits]`; `gateway`: the listener is not loopback-only (see
/// [`slot_limits::slot_limits`]).
pub(super) fn limits(c: &mut Checker<'_>, raw: &RawLimits, gateway: bool) -> Limits {
    let defaults = Limits::default();
    let upstream_timeout = c.duration(
        "limits.upstream_timeout",
        raw.upstream_timeout.as_deref(),
        defaults.upstream_timeout,
    );
    let mut limits = Limits {
        request_body_timeout: request_body_timeout(
            c,
            raw.request_body_timeout.as_deref(),
            upstream_timeout,
        ),
        upstream_timeout,
        max_header_bytes: c.positive(
            "limits.max_header_bytes",
            raw.max_header_bytes,
            defaults.max_header_bytes as u64,
        ) as usize,
        max_body_bytes: c.positive(
            "limits.max_body_bytes",
            raw.max_body_bytes,
            defaults.max_body_bytes,
        ),
        response_write_timeout: c.duration(
            "limits.response_write_timeout",
            raw.response_write_timeout.as_deref(),
            defaults.response_write_timeout,
        ),
        header_read_timeout: c.duration(
            "limits.header_read_timeout",
            raw.header_read_timeout.as_deref(),
            defaults.header_read_timeout,
        ),
        upstream_connect_timeout: c.duration(
            "limits.upstream_connect_timeout",
            raw.upstream_connect_timeout.as_deref(),
            defaults.upstream_connect_timeout,
        ),
        idle_timeout: c.duration(
            "limits.idle_timeout",
            raw.idle_timeout.as_deref(),
            defaults.idle_timeout,
        ),
        max_connections: c.positive(
            "limits.max_connections",
            raw.max_connections,
            defaults.max_connections as u64,
        ) as usize,
        max_upstream_requests: c.positive(
            "limits.max_upstream_requests",
            raw.max_upstream_requests,
            defaults.max_upstream_requests as u64,
        ) as usize,
        min_refresh_interval_on_401: min_refresh_interval_on_401(
            c,
            raw.min_refresh_interval_on_401.as_deref(),
        ),
        token_store_wait: token_store_wait(c, raw.token_store_wait.as_deref()),
        ..defaults
    };
    slot_limits::slot_limits(c, raw, gateway, &mut limits);
    limits
}

/// `limits.request_body_timeout`: shorter than `upstream_timeout` (a body stalled longer
/// would be reported as Wise's timeout); by default 30 s, or half of a shorter
/// `upstream_timeout`.
fn request_body_timeout(
    c: &mut Checker<'_>,
    text: Option<&str>,
    upstream_timeout: Duration,
) -> Duration {
    let key = "limits.request_body_timeout";
    let default = Limits::default()
        .request_body_timeout
        .min(upstream_timeout / 2)
        .max(Duration::from_millis(1));
    let limit = c.duration(key, text, default);
    if text.is_some() && limit >= upstream_timeout {
        c.problem(
            key,
            format!(
                "must be shorter than limits.upstream_timeout ({}): a body stalled longer would be reported as Wise's timeout; shorten it or raise limits.upstream_timeout",
                humantime::format_duration(upstream_timeout)
            ),
        );
        return default;
    }
    limit
}
