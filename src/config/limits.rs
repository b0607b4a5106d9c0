//! `[limits]` as validated: sizes, timeouts and how many requests at once, with the
//! defaults of every key.

use std::time::Duration;

/// The default of `limits.min_refresh_interval_on_401` (see `crate::token::rejection`).
pub const DEFAULT_MIN_REFRESH_INTERVAL_ON_401: Duration = Duration::from_secs(30);

/// The default of `limits.token_store_wait` (see `crate::token::group`).
pub const DEFAULT_TOKEN_STORE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub header_read_timeout: Duration,
    /// The longest the app may pause while sending a request body.
    pub request_body_timeout: Duration,
    /// The longest the app may leave an answer unread before its connection is closed.
    pub response_write_timeout: Duration,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Requests in flight to each upstream host at once.
    pub max_upstream_requests: usize,
    /// How many of those one app connection may hold (h2c carries many streams).
    pub max_upstream_requests_per_connection: usize,
    /// How many of those one client address may hold, in gateway mode only.
    pub max_upstream_requests_per_client: usize,
    /// The slowest a request body may arrive, in bytes per second of waiting for it, over
    /// each `request_body_timeout` of waiting; 0: no floor.
    pub request_body_min_rate: u64,
    /// How long after a token was obtained a 401 from Wise does not refresh it again.
    pub min_refresh_interval_on_401: Duration,
    /// How long a request whose token Wise rejected waits for the shared token store to
    /// answer, or a newer lineage to arrive, before it gets 503.
    pub token_store_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_body_bytes: 32 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(30),
            response_write_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(90),
            max_connections: 4096,
            max_upstream_requests: 256,
            max_upstream_requests_per_connection: 64,
            max_upstream_requests_per_client: 128,
            request_body_min_rate: 1024,
            min_refresh_interval_on_401: DEFAULT_MIN_REFRESH_INTERVAL_ON_401,
            token_store_wait: DEFAULT_TOKEN_STORE_WAIT,
        }
    }
}
