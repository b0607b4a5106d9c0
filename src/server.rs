//! The app-facing listener: plain HTTP/1.1 and h2c (prior knowledge) on one port, a
//! bounded number of connections, header size and read-time limits, a limit on how long
//! an answer may stay unread, and a graceful drain on shutdown (stop accepting, let
//! requests in flight finish, within a grace).

use crate::config::Limits;
use crate::lanes::{Lanes, Open};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;

/// What answers the requests of a connection: a function from request to response.
pub trait Handler: Clone + Send + Sync + 'static {
    type Body: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;
    type Answer: Future<Output = Response<Self::Body>> + Send + 'static;
    fn call(&self, request: Request<Incoming>) -> Self::Answer;
}

impl<H, F, B> Handler for H
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static,
{
    type Body = B;
    type Answer = F;
    fn call(&self, request: Request<Incoming>) -> F {
        self(request)
    }
}

/// Serves `handler` on `listener` until `shutdown`, then drains for at most `grace`.
/// With `lanes` > 0 the connections are served on that many lanes ([`crate::lanes`]),
/// else on the caller's runtime.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    limits: Limits,
    grace: Duration,
    shutdown: CancellationToken,
    lanes: usize,
    handler: H,
) {
    let settings = Arc::new(ConnectionSettings::new(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let lanes = (lanes > 0).then(|| {
        let settings = settings.clone();
        let handler = handler.clone();
        Lanes::start(lanes, move |connections| {
            serve_lane(connections, settings.clone(), handler.clone(), grace)
        })
    });
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Some(lanes) = &lanes else {
            spawn_connection(&settings, &graceful, stream, peer, handler.clone(), permit);
            continue;
        };
        let handed = match stream.into_std() {
            Ok(stream) => lanes.dispatch((stream, peer, permit)),
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot hand a connection to a lane");
                continue;
            }
        };
        // No lane could take it: served here.
        if let Err((stream, peer, permit)) = handed {
            serve_handed(&settings, &graceful, stream, peer, handler.clone(), permit);
        }
    }
    drop(listener);
    let drained = async {
        match lanes {
            Some(lanes) => tokio::join!(graceful.shutdown(), lanes.finish()).0,
            None => graceful.shutdown().await,
        }
    };
    tokio::select! {
        _ = drained => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!(grace_s = grace.as_secs(), "shutdown grace elapsed with requests still in flight"),
    }
}

/// A lane: serves the connections handed to it until the acceptor stops, then drains
/// them for at most `grace`.
async fn serve_lane<H: Handler>(
    mut connections: UnboundedReceiver<(Handed, Open)>,
    settings: Arc<ConnectionSettings>,
    handler: H,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    while let Some(((stream, peer, permit), open)) = connections.recv().await {
        serve_handed(
            &settings,
            &graceful,
            stream,
            peer,
            handler.clone(),
            (permit, open),
        );
    }
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}

/// A connection accepted by the acceptor, on its way to a lane: the socket (taken off
/// the acceptor's runtime), the peer and its `max_connections` permit.
type Handed = (std::net::TcpStream, SocketAddr, OwnedSemaphorePermit);

/// [`spawn_connection`] for a socket handed over from another runtime.
fn serve_handed<H: Handler, T: Send + 'static>(
    settings: &ConnectionSettings,
    graceful: &GracefulShutdown,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    handler: H,
    hold: T,
) {
    match TcpStream::from_std(stream) {
        Ok(stream) => spawn_connection(settings, graceful, stream, peer, handler, hold),
        Err(error) => tracing::warn!(%peer, %error, "cannot serve a connection"),
    }
}

/// Serves one connection on the current runtime; `hold` (its connection permit) is
/// dropped when it ends.
fn spawn_connection<H: Handler, T: Send + 'static>(
    settings: &ConnectionSettings,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    peer: SocketAddr,
    handler: H,
    hold: T,
) {
    // Who the request came from, for its share of the upstream slots.
    let connection = crate::slots::AppConnection::new(peer);
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(connection);
        let response = handler.call(request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    // An app that leaves its answer unread (its socket full) for write_timeout loses the
    // connection, and the answer's upstream slot is freed.
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(settings.write_timeout));
    let connection = settings
        .http
        .serve_connection(TokioIo::new(Box::pin(stream)), service)
        .into_owned();
    let connection = graceful.watch(connection);
    let write_timeout = settings.write_timeout;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            if timed_out(&*error) {
                tracing::warn!(%peer, "the app made no room for its answer for {} (limits.response_write_timeout): connection closed; check why the app stops reading, or raise the limit if it reads large answers slowly", humantime::format_duration(write_timeout));
            } else {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        }
        drop(hold);
    });
}

/// Whether `error` comes from the write timeout (an `io::Error` of kind `TimedOut`).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// HTTP/2 flow-control window of one app stream: what the app may send ahead of wisegate.
const APP_STREAM_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 flow-control window of one app connection, shared by its streams.
const APP_CONNECTION_WINDOW: u32 = 8 * APP_STREAM_WINDOW;

/// How app connections are served, fixed at start: HTTP/1.1 and h2c with `limits`'
/// header size and read-time bounds, and `limits.response_write_timeout`.
struct ConnectionSettings {
    http: auto::Builder<TokioExecutor>,
    write_timeout: Duration,
}

impl ConnectionSettings {
    fn new(limits: &Limits) -> ConnectionSettings {
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
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
            .initial_connection_window_size(APP_CONNECTION_WINDOW);
        ConnectionSettings {
            http,
            write_timeout: limits.response_write_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn the_write_timeout_is_told_apart_from_other_connection_errors() {
        let timed_out_inside = Wrapped(std::io::ErrorKind::TimedOut.into());
        assert!(timed_out(&timed_out_inside));
        let reset = Wrapped(std::io::ErrorKind::ConnectionReset.into());
        assert!(!timed_out(&reset));
    }
}
