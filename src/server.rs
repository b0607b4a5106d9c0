//! The app-facing listener (and the admin listener): plain HTTP/1.1 and h2c (prior
//! knowledge) on one port, at most `max_connections` connections (the longest idle make
//! room: [`crate::admission`]), header size limits, deadlines for a request's head and
//! for idle connections ([`crate::watchdog`]), a limit on how long an answer may stay
//! unread, a graceful drain on shutdown (stop accepting, let requests in flight
//! finish, within a grace), and what a connection writes in one run of its task sent
//! with one write (`server/gathered.rs`).

mod connection_settings;
mod gathered;

use crate::admission::{Admission, Admitted};
use crate::config::Limits;
use crate::lanes::{Lanes, Open};
use crate::slots::AppConnection;
use crate::watchdog::{Activity, Watchdog, Watched};
pub use connection_settings::app_http;
use connection_settings::ConnectionSettings;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;

/// What answers the requests of a connection: a function from a request and the app
/// connection it came on to the response.
pub trait Handler: Clone + Send + Sync + 'static {
    type Body: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static;
    type Answer: Future<Output = Response<Self::Body>> + Send + 'static;
    fn call(&self, request: Request<Incoming>, connection: AppConnection) -> Self::Answer;
}

impl<H, F, B> Handler for H
where
    H: Fn(Request<Incoming>, AppConnection) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static,
{
    type Body = B;
    type Answer = F;
    fn call(&self, request: Request<Incoming>, connection: AppConnection) -> F {
        self(request, connection)
    }
}

/// How a listener serves, fixed at start.
#[derive(Debug, Clone)]
pub struct Listening {
    /// `app` or `admin`, for logs.
    pub name: &'static str,
    pub limits: Limits,
    /// The longest the drain at shutdown may take.
    pub grace: Duration,
    /// Serving lanes ([`crate::lanes`]); 0: the caller's runtime.
    pub lanes: usize,
}

/// Serves `handler` on `listener` until `shutdown`, then drains for at most the grace.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    listening: Listening,
    shutdown: CancellationToken,
    handler: H,
) {
    let Listening {
        name,
        limits,
        grace,
        lanes,
    } = listening;
    let settings = Arc::new(ConnectionSettings::new(&limits));
    let admission = Admission::new(limits.max_connections);
    let lanes = (lanes > 0).then(|| {
        let settings = settings.clone();
        let handler = handler.clone();
        Lanes::start(lanes, move |connections| {
            serve_lane(connections, settings.clone(), handler.clone(), grace)
        })
    });
    let mut serving = Serving {
        settings,
        handler,
        lanes,
        connections: JoinSet::new(),
    };
    accept_until(&listener, &admission, &shutdown, &mut serving).await;
    drop(listener);
    admission.close_all();
    serving.drain(name, grace).await;
}

/// Where the acceptor puts the connections it admits: on a lane, or on its own runtime.
struct Serving<H: Handler> {
    settings: Arc<ConnectionSettings>,
    handler: H,
    lanes: Option<Lanes<Handed>>,
    /// The connections served on the acceptor's runtime.
    connections: JoinSet<()>,
}

/// Accepts and admits connections and hands them to `serving`, until `shutdown`.
async fn accept_until<H: Handler>(
    listener: &TcpListener,
    admission: &Arc<Admission>,
    shutdown: &CancellationToken,
    serving: &mut Serving<H>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            // Ended connections are reaped as they go.
            Some(_) = serving.connections.join_next() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // At max_connections the longest idle connection makes room; while every one is
        // busy, the newcomer waits here (and the next ones in the listen backlog).
        let (activity, admitted) = tokio::select! {
            _ = shutdown.cancelled() => break,
            admitted = admission.admit() => admitted,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            activity,
            _admitted: admitted,
        };
        serving.place(stream, connection);
    }
}

impl<H: Handler> Serving<H> {
    /// Serves `connection` on a lane, or here when there are no lanes or none takes it.
    fn place(&mut self, stream: TcpStream, connection: Connection) {
        let Some(lanes) = &self.lanes else {
            spawn_connection(
                &mut self.connections,
                &self.settings,
                stream,
                self.handler.clone(),
                connection,
            );
            return;
        };
        let peer = connection.peer;
        let handed = match stream.into_std() {
            Ok(stream) => lanes.dispatch((stream, connection)),
            Err(error) => {
                tracing::warn!(%peer, %error, "cannot hand a connection to a lane");
                return;
            }
        };
        // No lane could take it: served here.
        if let Err((stream, connection)) = handed {
            serve_handed(
                &mut self.connections,
                &self.settings,
                stream,
                self.handler.clone(),
                connection,
            );
        }
    }

    /// Lets the connections (its own and the lanes') finish, for at most `grace`.
    async fn drain(self, name: &'static str, grace: Duration) {
        let Serving {
            lanes,
            mut connections,
            ..
        } = self;
        let drained = async {
            let own = async { while connections.join_next().await.is_some() {} };
            match lanes {
                Some(lanes) => tokio::join!(own, lanes.finish()).0,
                None => own.await,
            }
        };
        // (`connections` still open past the grace are dropped with the join set.)
        match tokio::time::timeout(grace, drained).await {
            Ok(()) if name == "app" => tracing::info!("all app connections drained"),
            Ok(()) => tracing::debug!(listener = name, "all connections drained"),
            Err(_) => tracing::warn!(
                listener = name,
                grace_s = grace.as_secs(),
                "shutdown grace elapsed with requests still in flight"
            ),
        }
    }
}

/// A lane: serves the connections handed to it until the acceptor stops, then drains
/// them for at most `grace`.
async fn serve_lane<H: Handler>(
    mut handed: UnboundedReceiver<(Handed, Open)>,
    settings: Arc<ConnectionSettings>,
    handler: H,
    grace: Duration,
) {
    let mut connections = JoinSet::new();
    loop {
        let ((stream, connection), open) = tokio::select! {
            Some(_) = connections.join_next() => continue,
            next = handed.recv() => match next {
                Some(next) => next,
                None => break,
            },
        };
        serve_handed(
            &mut connections,
            &settings,
            stream,
            handler.clone(),
            (connection, open),
        );
    }
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(grace, drained).await;
}

/// An admitted connection: its peer, what it does and its place under `max_connections`.
struct Connection {
    peer: SocketAddr,
    activity: Arc<Activity>,
    _admitted: Admitted,
}

/// A connection accepted by the acceptor, on its way to a lane: the socket, taken off
/// the acceptor's runtime.
type Handed = (std::net::TcpStream, Connection);

/// What a connection's task holds until it ends: its [`Connection`], and on a lane its
/// place in the lane's count too.
trait Held: Send + 'static {
    fn connection(&self) -> &Connection;
}

impl Held for Connection {
    fn connection(&self) -> &Connection {
        self
    }
}

impl Held for (Connection, Open) {
    fn connection(&self) -> &Connection {
        &self.0
    }
}

/// [`spawn_connection`] for a socket handed over from another runtime.
fn serve_handed<H: Handler>(
    connections: &mut JoinSet<()>,
    settings: &ConnectionSettings,
    stream: std::net::TcpStream,
    handler: H,
    held: impl Held,
) {
    match TcpStream::from_std(stream) {
        Ok(stream) => spawn_connection(connections, settings, stream, handler, held),
        Err(error) => {
            tracing::warn!(peer = %held.connection().peer, %error, "cannot serve a connection")
        }
    }
}

/// Serves one connection on the current runtime; `held` is dropped when it ends.
fn spawn_connection<H: Handler>(
    connections: &mut JoinSet<()>,
    settings: &ConnectionSettings,
    stream: TcpStream,
    handler: H,
    held: impl Held,
) {
    let connection = held.connection();
    let (peer, activity) = (connection.peer, connection.activity.clone());
    let requests = activity.clone();
    // Who the request came from, for its share of the upstream slots. Handed to the
    // handler with each request, not put in the request's extensions: inserting there
    // costs three allocations per request (the map, its table, the boxed value).
    let app_connection = AppConnection::new(peer);
    let service = service_fn(move |request: Request<Incoming>| {
        let pending = requests.request_started(request.version());
        // A connection that abandons streams may be resetting each one right away: its
        // new streams yield once first, so a stream already reset (hyper looks when the
        // answer is not ready) is dropped before it takes an upstream slot or connects.
        let look_first = requests.abandons_streams();
        let response = handler.call(request, app_connection);
        async move {
            if look_first {
                tokio::task::yield_now().await;
            }
            let response = response.await;
            Ok::<_, Infallible>(response.map(|body| pending.answered(body)))
        }
    });
    // An app that leaves its answer unread (its socket full) for write_timeout loses the
    // connection, and the answer's upstream slot is freed.
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(settings.write_timeout));
    // Its writes are gathered and sent once per run of its task ([`gathered`]).
    let (io, sender) = gathered::gather(Box::pin(stream));
    let io = Watched::new(io, activity.clone());
    let served = settings
        .http
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let served = gathered::Gathering::new(served, sender);
    let watched = Watchdog::new(served, activity, settings.timeouts, peer);
    let write_timeout = settings.write_timeout;
    connections.spawn(async move {
        match watched.await {
            Some(Err(error)) if timed_out(&*error) => {
                tracing::warn!(%peer, "the app made no room for its answer for {} (limits.response_write_timeout): connection closed; check why the app stops reading, or raise the limit if it reads large answers slowly", humantime::format_duration(write_timeout));
            }
            Some(Err(error)) => tracing::debug!(%peer, %error, "connection ended with an error"),
            Some(Ok(())) => {}
            None => tracing::debug!(%peer, "connection dropped: it did not close when asked"),
        }
        drop(held);
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
