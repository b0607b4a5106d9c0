//! How the listener serves its connections, fixed at start: HTTP/1.1 and h2c on one
//! port with the header size bounds, HTTP/2 flow-control windows, the watchdog's
//! deadlines and the write timeout.

use crate::config::Limits;
use crate::watchdog::{Timeouts, MAX_ABANDONED_STREAMS};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use std::time::Duration;

/// HTTP/2 flow-control window of one app stream: what the app may send ahead of wisegate.
const APP_STREAM_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 flow-control window of one app connection, shared by its streams.
const APP_CONNECTION_WINDOW: u32 = 8 * APP_STREAM_WINDOW;

/// How app connections are served, fixed at start: HTTP/1.1 and h2c with `limits`'
/// header size bounds, the watchdog's deadlines and `limits.response_write_timeout`.
pub(super) struct ConnectionSettings {
    pub(super) http: auto::Builder<TokioExecutor>,
    pub(super) timeouts: Timeouts,
    pub(super) write_timeout: Duration,
}

impl ConnectionSettings {
    pub(super) fn new(limits: &Limits) -> ConnectionSettings {
        let http = app_http(limits);
        ConnectionSettings {
            http,
            timeouts: Timeouts {
                header_read: limits.header_read_timeout,
                idle: limits.idle_timeout,
            },
            write_timeout: limits.response_write_timeout,
        }
    }
}

/// The HTTP/1.1 and h2c server settings of app connections under `limits`: header size
/// bounds, timers, keep-alive pings and HTTP/2 flow-control windows (also what the
/// benchmark's `bare` proxy serves with).
pub fn app_http(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        // The watchdog bounds heads: hyper's own deadline starts as a connection goes
        // idle, so it closed idle keep-alive connections after header_read_timeout.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // The same count the request guard holds h2c requests to.
        .max_headers(crate::headers::MAX_HEADER_FIELDS)
        .keep_alive(true);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        // hyper's default connection window equals one stream's (1 MiB): a single upload
        // wisegate cannot read yet (waiting for an upstream slot or a token) took it all
        // and every other stream of the connection stalled into 408. Eight streams' worth,
        // as towards Wise: buffered request data stays bounded per connection.
        .initial_stream_window_size(APP_STREAM_WINDOW)
        .initial_connection_window_size(APP_CONNECTION_WINDOW)
        // Streams reset before they are accepted (h2's default, made explicit); those
        // abandoned after are counted by the watchdog against the same number.
        .max_pending_accept_reset_streams(MAX_ABANDONED_STREAMS as usize);
    http
}
