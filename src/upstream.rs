//! One pooled HTTP client per upstream host: hyper-util's legacy client over
//! hyper-rustls, HTTP/2 where ALPN offers it, HTTP/1.1 keep-alive otherwise. Requests in
//! flight are bounded (`limits.max_upstream_requests`): over HTTP/1.1 each one holds a
//! connection, and without a bound a burst opens as many mTLS connections as requests.
//! Failures are classified here into [`UpstreamError`], whose messages say what failed
//! and where. What is sent is the caller's: a request body that fails is the caller's to
//! explain (it knows whose body it was), so nothing here looks inside it.

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
use rustls::{AlertDescription, ClientConfig};
use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a request could not be completed upstream. `target` is `host:port`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream could not be reached at {target}: {detail}; check upstream.mtls_url / legacy_url, DNS and that egress to it is allowed")]
    Connect { target: String, detail: String },
    #[error("{target} rejected our client certificate ({alert}): check mtls.cert_file is the certificate Wise issued for this client and that it is still active in the Developer Hub")]
    ClientCertRejected { target: String, alert: String },
    #[error("the TLS handshake with {target} failed: {detail}")]
    Tls { target: String, detail: String },
    #[error("{target} did not answer within {seconds} s (limits.upstream_timeout)")]
    Timeout { target: String, seconds: u64 },
    #[error("all {limit} request slots to {target} stayed busy for {seconds} s (limits.max_upstream_requests, limits.upstream_timeout): the upstream is slow or the app sends more at once than the limit allows: raise limits.max_upstream_requests or lower the app's concurrency")]
    Busy {
        target: String,
        limit: usize,
        seconds: u64,
    },
    /// The request's app connection (or client address) held its share of the slots.
    #[error("{holder} already held its {limit} request slots to {target} ({key}) and none of them came free within {seconds} s; the other slots are kept for other connections and clients: send less at once from there, or raise {key}")]
    ShareBusy {
        target: String,
        /// "this app connection" or "client address <ip>".
        holder: String,
        key: &'static str,
        limit: usize,
        seconds: u64,
    },
    #[error("the exchange with {target} failed: {detail}")]
    Other { target: String, detail: String },
    /// The connection broke (reset, broken pipe, closed) before any answer: the request
    /// may or may not have been processed.
    #[error("the connection to {target} broke before an answer ({detail}); on the mTLS host right after connecting this usually means it rejected our client certificate: check mtls.cert_file")]
    ConnectionLost { target: String, detail: String },
}

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
    clients: Arc<[Client<HttpsConnector<HttpConnector>, ProxyBody>]>,
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
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = || {
            let mut builder = match &settings.runtime {
                Some(runtime) => Client::builder(OnRuntime(runtime.clone())),
                None => Client::builder(TokioExecutor::new()),
            };
            builder
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(settings.idle_timeout)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_timeout(Duration::from_secs(10))
                // Fixed windows: an adaptive window can grow to 16 MiB per stream, which a
                // slow-reading app would leave buffered here (measured up to +15 MB per 100 MB
                // download); 1 MiB/8 MiB kept it at 1 MB with no loss at full speed.
                .http2_initial_stream_window_size(1024 * 1024)
                .http2_initial_connection_window_size(8 * 1024 * 1024)
                .build(connector.clone())
        };
        let clients = (0..=settings.lanes).map(|_| client()).collect();
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
            Err(error) => Err(self.classify(&error)),
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
    fn client(&self) -> &Client<HttpsConnector<HttpConnector>, ProxyBody> {
        let index = crate::lanes::current().map_or(0, |lane| lane + 1);
        &self.clients[index % self.clients.len()]
    }

    fn classify(&self, error: &hyper_util::client::legacy::Error) -> UpstreamError {
        let target = self.target.clone();
        let mut causes = Vec::new();
        collect_causes(error, &mut causes);
        for cause in &causes {
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return classify_tls(target, tls);
            }
            // Canceled: the connection closed before the request was written, so nothing
            // reached the upstream. On an mTLS host right after the handshake this is
            // how a rejected client certificate shows when the alert itself is lost.
            if cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_canceled)
            {
                return UpstreamError::Connect {
                    detail: "the connection closed before the request was sent (an mTLS host does this when it rejected our client certificate: check mtls.cert_file)".into(),
                    target,
                };
            }
        }
        let detail = causes
            .last()
            .map_or_else(|| error.to_string(), |cause| cause.to_string());
        // h2 keeps only the text of the I/O errors it sees, so an alert received on an
        // HTTP/2 connection (TLS 1.3 reports client-certificate verdicts after the
        // handshake) is recognised by rustls' wording.
        if let Some(alert) = detail.split("received fatal alert: ").nth(1) {
            if CLIENT_CERT_ALERTS
                .iter()
                .any(|known| format!("{known:?}") == alert.trim())
            {
                return UpstreamError::ClientCertRejected {
                    target,
                    alert: format!("TLS alert {}", alert.trim()),
                };
            }
        }
        let lost = causes.iter().any(|cause| {
            cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::BrokenPipe
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::UnexpectedEof
                )
            })
        }) || ["broken pipe", "connection reset", "connection closed"]
            .iter()
            .any(|words| detail.contains(words));
        if error.is_connect() {
            UpstreamError::Connect { target, detail }
        } else if lost {
            UpstreamError::ConnectionLost { target, detail }
        } else {
            UpstreamError::Other { target, detail }
        }
    }
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

/// Alerts a server sends when it does not accept the client certificate.
const CLIENT_CERT_ALERTS: [AlertDescription; 8] = [
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnknownCA,
    AlertDescription::CertificateUnknown,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateRevoked,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::AccessDenied,
];

fn classify_tls(target: String, error: &rustls::Error) -> UpstreamError {
    match error {
        rustls::Error::AlertReceived(alert) if CLIENT_CERT_ALERTS.contains(alert) => UpstreamError::ClientCertRejected {
            target,
            alert: format!("TLS alert {alert:?}"),
        },
        rustls::Error::InvalidCertificate(reason) => UpstreamError::Tls {
            detail: format!(
                "the server certificate of {target} is not trusted ({reason:?}); if Wise gave you a CA certificate, name it in upstream.ca_file"
            ),
            target,
        },
        other => UpstreamError::Tls {
            target,
            detail: other.to_string(),
        },
    }
}

/// Flattens an error's cause chain, looking inside `io::Error`s, whose `source()` skips
/// the error they wrap (where rustls puts its own).
fn collect_causes<'a>(
    error: &'a (dyn StdError + 'static),
    out: &mut Vec<&'a (dyn StdError + 'static)>,
) {
    let mut next = Some(error);
    while let Some(current) = next {
        out.push(current);
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                collect_causes(inner, out);
                return;
            }
        }
        next = current.source();
    }
}
