//! Listening and serving: one accept loop per listener, a task per connection (TLS
//! handshake where the listener has TLS, then HTTP/1.1 or HTTP/2 with hyper-util's auto
//! builder), request dispatch by listener, and the `x-trace-id` on every response.
//! Everything stops when the stop channel's sender is dropped.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::api::{self, ConnInfo};
use crate::body::RespBody;
use crate::config::HostKind;
use crate::state::{hex, Shared};
use crate::{authorize, token};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a listener serves.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Role {
    /// The mTLS API host, with the token endpoint.
    Mtls,
    /// The legacy (personal token) host.
    Legacy,
    /// The authorize page.
    Authorize,
}

/// Accepts connections until `stop` fires or its sender is dropped.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    role: Role,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return,
        };
        let Ok((tcp, peer)) = accepted else {
            // Out of file descriptors and the like: back off a little and go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = ConnInfo {
                        client_cert_der: None,
                        peer: Some(peer),
                    };
                    serve(tcp, conn, role, shared, stop).await
                }
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let client_cert_der = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .map(|cert| cert.as_ref().to_vec());
                    let conn = ConnInfo {
                        client_cert_der,
                        peer: Some(peer),
                    };
                    serve(stream, conn, role, shared, stop).await;
                }
            }
        });
    }
}

/// Serves HTTP on one connection until it ends or `stop` fires.
async fn serve<IO>(
    io: IO,
    conn: ConnInfo,
    role: Role,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(conn);
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let conn = conn.clone();
        async move {
            let mut resp = dispatch(&shared, role, &conn, req).await;
            let trace_id = hex(&rand::random::<[u8; 16]>());
            if let Ok(value) = HeaderValue::from_str(&trace_id) {
                resp.headers_mut().insert("x-trace-id", value);
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = connection => {}
        _ = stop.changed() => {}
    }
}

async fn dispatch(
    shared: &Shared,
    role: Role,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Response<RespBody> {
    match role {
        Role::Authorize => authorize::handle(shared, &req),
        Role::Mtls if token::is_token_path(req.uri().path()) => token::handle(shared, req).await,
        Role::Mtls => api::handle(shared, HostKind::Mtls, conn, req).await,
        Role::Legacy => api::handle(shared, HostKind::Legacy, conn, req).await,
    }
}
