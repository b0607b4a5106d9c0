//! One pooled HTTP client per upstream host: hyper-util's legacy client over
//! hyper-rustls, HTTP/2 where ALPN offers it, HTTP/1.1 keep-alive otherwise. Requests in
//! flight are bounded (`limits.max_upstream_requests`): over HTTP/1.1 each one holds a
//! connection, and without a bound a burst opens as many mTLS connections as requests.
//! Until a host's protocol is known, its connects take turns ([`ProbeGate`]), so that a
//! burst on a cold pool makes one HTTP/2 connection, not one per request.
//! Failures are classified here into [`UpstreamError`], whose messages say what failed
//! and where. What is sent is the caller's: a request body that fails is the caller's to
//! explain (it knows whose body it was), so nothing here looks inside it.

mod failure;
mod probe;

pub use failure::UpstreamError;
pub use probe::ProbeGate;

use crate::body::{Progress, ProxyBody};
use crate::slots::{AppConnection, Full, Slot, SlotBounds, Slots};
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::ClientConfig;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Settings an upstream client is built with.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub idle_timeout: Duration,
    /// Requests in flight at once, and how many of them one app connection or client
    /// may have; more wait for a slot (within `timeout`).
    pub slots: SlotBounds,
    /// Serving lanes: each gets its own connections ([`crate::lanes`]).
    pub lanes: usize,
    /// The runtime every connection's task runs on; `None`: the runtime of the request
    /// that opened it (a lane's, for a lane's own connections).
    pub runtime: Option<tokio::runtime::Handle>,
}

/// A pooled client of [`client`]: its connects go through a [`ProbeGate`].
pub type UpstreamClient<B> = Client<ProbeGate<HttpsConnector<HttpConnector>>, B>;

/// Spawns connection tasks on one runtime, whichever runtime the request came from.
#[derive(Clone)]
struct OnRuntime(tokio::runtime::Handle);

impl<F> hyper::rt::Executor<F> for OnRuntime
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}

/// A pooled client bound to one `https://host:port`.
#[derive(Clone)]
pub struct Upstream {
    /// One client (and so one pool of connections) per lane, the first for callers
    /// outside the lanes.
    clients: Arc<[UpstreamClient<ProxyBody>]>,
    authority: Authority,
    target: String,
    timeout: Duration,
    slots: Arc<Slots>,
}

/// A response body from an upstream; it holds the request's slot until it ends or is
/// dropped (over HTTP/1.1 the connection is busy until then).
#[derive(Debug)]
pub struct UpstreamBody {
    body: Incoming,
    _slot: Slot,
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("target", &self.target)
            .finish()
    }
}

impl Upstream {
    /// `base` must be an `https://host[:port]` URL (checked by config validation).
    pub fn new(base: &Uri, tls: ClientConfig, settings: UpstreamSettings) -> Upstream {
        let connector = connector(tls, settings.connect_timeout);
        let runtime = settings.runtime.as_ref();
        let clients = (0..=settings.lanes)
            .map(|_| {
                let connect_timeout = settings.connect_timeout;
                client(
                    connector.clone(),
                    connect_timeout,
                    settings.idle_timeout,
                    runtime,
                )
            })
            .collect();
        let authority = base
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("invalid"));
        let port = base.port_u16().unwrap_or(443);
        let target = format!("{}:{port}", base.host().unwrap_or("invalid"));
        Upstream {
            clients,
            authority,
            target,
            timeout: settings.timeout,
            slots: Arc::new(Slots::new(settings.slots)),
        }
    }

    /// `host:port`, for messages and logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The host name alone, for `Host` headers and logs.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The upstream URI for a path and query, kept byte for byte.
    pub fn uri_for(&self, path_and_query: Option<&PathAndQuery>) -> Uri {
        uri(&self.authority, path_and_query)
    }

    /// Sends a request (its URI made by [`Upstream::uri_for`]) and waits for the response
    /// head: waiting for a free slot and for the head together at most `upstream_timeout`.
    pub async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        self.send_watched(request, None, None).await
    }

    /// Like [`Upstream::send`]; with `streamed`, the progress of a body being streamed,
    /// `upstream_timeout` counts from the body's last part (a long upload that keeps
    /// moving is not a silent upstream; a stalled app is `request_body_timeout`'s
    /// business, which validation keeps shorter). `from`: the app connection the request
    /// came on, whose share of the slots it takes.
    pub async fn send_watched(
        &self,
        request: Request<ProxyBody>,
        streamed: Option<&Progress>,
        from: Option<&AppConnection>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        let slot = self
            .slots
            .acquire(from, deadline)
            .await
            .map_err(|full| self.busy(full))?;
        let mut response = self.client().request(request);
        let answered = loop {
            match tokio::time::timeout_at(deadline, &mut response).await {
                Ok(answered) => break answered,
                Err(_) => match streamed.map(|progress| progress.last_moved() + self.timeout) {
                    Some(later) if later > deadline => deadline = later,
                    _ => {
                        return Err(UpstreamError::Timeout {
                            target: self.target.clone(),
                            seconds: self.timeout.as_secs(),
                        })
                    }
                },
            }
        };
        match answered {
            Ok(response) => Ok(response.map(|body| UpstreamBody { body, _slot: slot })),
            Err(error) => Err(failure::classify(self.target.clone(), &error)),
        }
    }

    /// The answer when a bound on the slots stayed full for `upstream_timeout`.
    fn busy(&self, full: Full) -> UpstreamError {
        let (target, seconds) = (self.target.clone(), self.timeout.as_secs());
        let (holder, key, limit) = match full {
            Full::All { limit } => {
                return UpstreamError::Busy {
                    target,
                    limit,
                    seconds,
                }
            }
            Full::Connection { limit } => (
                "this app connection".to_owned(),
                "limits.max_upstream_requests_per_connection",
                limit,
            ),
            Full::Client { limit, address } => (
                format!("client address {}", crate::slots::client_text(address)),
                "limits.max_upstream_requests_per_client",
                limit,
            ),
        };
        UpstreamError::ShareBusy {
            target,
            holder,
            key,
            limit,
            seconds,
        }
    }

    /// This lane's client: a lane's requests share that lane's upstream connection.
    fn client(&self) -> &UpstreamClient<ProxyBody> {
        let index = crate::lanes::current().map_or(0, |lane| lane + 1);
        &self.clients[index % self.clients.len()]
    }
}

/// The connector of every upstream client: TCP with `connect_timeout` and no Nagle, then
/// TLS with `tls` (the client certificate), HTTP/2 or HTTP/1.1 by ALPN.
pub fn connector(tls: ClientConfig, connect_timeout: Duration) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http)
}

/// One pooled client over `connector` for one upstream host (one pool of connections,
/// whose connects take turns at a [`ProbeGate`], waiting at most `connect_timeout` for
/// one another): keep-alive pings and fixed HTTP/2 windows; its connections' tasks run on
/// `runtime`, or on the runtime of the request that opened them. Also what the
/// benchmark's `bare` proxy forwards with.
pub fn client<B>(
    connector: HttpsConnector<HttpConnector>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    runtime: Option<&tokio::runtime::Handle>,
) -> UpstreamClient<B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let mut builder = match runtime {
        Some(runtime) => Client::builder(OnRuntime(runtime.clone())),
        None => Client::builder(TokioExecutor::new()),
    };
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_timeout)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        // Fixed windows: an adaptive window can grow to 16 MiB per stream, which a
        // slow-reading app would leave buffered here (measured up to +15 MB per 100 MB
        // download); 1 MiB/8 MiB kept it at 1 MB with no loss at full speed.
        .http2_initial_stream_window_size(1024 * 1024)
        .http2_initial_connection_window_size(8 * 1024 * 1024)
        .build(ProbeGate::new(connector, connect_timeout))
}

/// `https://<authority><path and query>`, the path and query kept byte for byte; `/`
/// when there is none.
pub fn uri(authority: &Authority, path_and_query: Option<&PathAndQuery>) -> Uri {
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(Scheme::HTTPS);
    parts.authority = Some(authority.clone());
    parts.path_and_query = Some(
        path_and_query
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}
