//! Bench-only floor of wisegate's request path (the `bench-bare-proxy` example, a
//! `bench/run` candidate): the same stack as wisegate, with nothing of wisegate's own.
//!
//! Same as wisegate with its default limits: mimalloc, one current-thread runtime per
//! core (a lane) with its own upstream client, and wisegate's own builders for both
//! sides, so the library settings cannot drift apart: [`wisegate::server::app_http`]
//! (HTTP/1.1 and h2c towards the app: timers, header bounds, HTTP/2 windows and
//! keep-alive pings) and [`wisegate::upstream::connector`] and
//! [`wisegate::upstream::client`] (hyper-util's legacy client over hyper-rustls: mTLS,
//! HTTP/2 by ALPN, windows, pings, connect and idle timeouts). Left out: config
//! validation, routes, tokens, header hygiene beyond `Host`, hop-by-hop fields and a
//! static `Authorization`, slots, deadlines, metrics, logs, the watchdog, gathered writes
//! and the admin server (a bare 200 on the admin address, for `/readyz`). The lanes share
//! the listen port through `SO_REUSEPORT` instead of wisegate's acceptor. Built as an
//! example, it gets the dev-dependencies' features (tokio's `test-util`), if anything a
//! little dearer than a binary would be.
//!
//! Measured beside wisegate, its CPU per request is what the libraries cost; the rest of
//! wisegate's is wisegate's. It reads the listen, admin, upstream and certificate paths
//! from a wisegate config: `bench-bare-proxy run --config FILE`.

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{header, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use wisegate::config::Limits;
use wisegate::upstream;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Body = UnsyncBoxBody<Bytes, hyper::Error>;
type Upstream = upstream::UpstreamClient<Incoming>;

/// What is read from the wisegate config.
struct Settings {
    listen: SocketAddr,
    admin: SocketAddr,
    upstream: Uri,
    tls: rustls::ClientConfig,
}

fn main() {
    let settings = match settings() {
        Ok(settings) => Arc::new(settings),
        Err(problem) => {
            eprintln!("bench-bare-proxy: {problem}");
            std::process::exit(2);
        }
    };
    let lanes = std::thread::available_parallelism().map_or(1, usize::from);
    // A lane ends only when it fails: the first to end takes the process with it, so the
    // proxy never runs on fewer lanes than it says.
    let (ended, first_end) = std::sync::mpsc::channel();
    for lane in 0..lanes {
        let (settings, ended) = (settings.clone(), ended.clone());
        std::thread::spawn(move || {
            let lane_run = std::panic::AssertUnwindSafe(|| run_lane(&settings, lane == 0));
            let outcome = std::panic::catch_unwind(lane_run);
            let _ = ended.send(match outcome {
                Ok(Ok(())) => format!("lane {lane} ended"),
                Ok(Err(problem)) => problem,
                Err(_) => format!("lane {lane} panicked"),
            });
        });
    }
    if let Ok(problem) = first_end.recv() {
        eprintln!("bench-bare-proxy: {problem}");
    }
    std::process::exit(1);
}

fn settings() -> Result<Settings, String> {
    let args: Vec<String> = std::env::args().collect();
    let file = match args.as_slice() {
        [_, run, flag, file] if run == "run" && flag == "--config" => file,
        _ => return Err("usage: bench-bare-proxy run --config FILE".into()),
    };
    let text = std::fs::read_to_string(file).map_err(|error| format!("{file}: {error}"))?;
    let config: toml::Table = text.parse().map_err(|error| format!("{file}: {error}"))?;
    let get = |table: &str, key: &str| {
        config
            .get(table)
            .and_then(|value| value.get(key))
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{file}: {table}.{key} is missing"))
    };
    let address = |table: &str| {
        get(table, "address")?
            .parse()
            .map_err(|error| format!("{file}: {table}.address: {error}"))
    };
    let upstream = get("upstream", "mtls_url")?
        .parse()
        .map_err(|error| format!("{file}: upstream.mtls_url: {error}"))?;
    let tls = client_tls(
        &get("upstream", "ca_file")?,
        &get("mtls", "cert_file")?,
        &get("mtls", "key_file")?,
    )?;
    Ok(Settings {
        listen: address("listen")?,
        admin: address("admin")?,
        upstream,
        tls,
    })
}

fn client_tls(ca: &str, cert: &str, key: &str) -> Result<rustls::ClientConfig, String> {
    let pem = |file: &str| {
        CertificateDer::pem_file_iter(file)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| format!("{file}: {error}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    for certificate in pem(ca)? {
        roots
            .add(certificate)
            .map_err(|error| format!("{ca}: {error}"))?;
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| format!("{key}: {error}"))?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(pem(cert)?, key)
        .map_err(|error| format!("{cert}: {error}"))
}

/// One lane: its own listener on the shared port, its own upstream client; the first
/// lane also answers on the admin address.
fn run_lane(settings: &Settings, with_admin: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    runtime.block_on(async {
        let listener = listen(settings.listen)?;
        if with_admin {
            let admin = listen(settings.admin)?;
            tokio::spawn(serve(admin, |_| async {
                Ok::<_, hyper::Error>(text(StatusCode::OK, "ok\n"))
            }));
        }
        let limits = Limits::default();
        let connector = upstream::connector(settings.tls.clone(), limits.upstream_connect_timeout);
        let upstream: Upstream = upstream::client(
            connector,
            limits.upstream_connect_timeout,
            limits.idle_timeout,
            None,
        );
        let authority = settings.upstream.authority().cloned();
        serve(listener, move |request| {
            forward(upstream.clone(), authority.clone(), request)
        })
        .await;
        Ok(())
    })
}

fn listen(address: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .and_then(|socket| {
        socket.set_reuseport(true)?;
        socket.bind(address)?;
        Ok(socket)
    })
    .map_err(|error| format!("{address}: {error}"))?;
    socket
        .listen(1024)
        .map_err(|error| format!("{address}: {error}"))
}

/// Serves every connection `listener` accepts (HTTP/1.1 or h2c) with `handle`.
async fn serve<H, F>(listener: tokio::net::TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<Body>, hyper::Error>> + Send + 'static,
{
    let http = Arc::new(wisegate::server::app_http(&Limits::default()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, most likely: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (handle, http) = (handle.clone(), http.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn forward(
    upstream: Upstream,
    authority: Option<Authority>,
    request: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let (mut parts, body) = request.into_parts();
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTPS);
    uri.authority = authority;
    uri.path_and_query = parts.uri.path_and_query().cloned();
    let Ok(uri) = Uri::from_parts(uri) else {
        return Ok(text(StatusCode::BAD_REQUEST, "bad target\n"));
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    for hop in [
        header::HOST,
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        parts.headers.remove(hop);
    }
    parts.headers.remove("keep-alive");
    parts.headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer bench-bare-proxy"),
    );
    match upstream.request(Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(BodyExt::boxed_unsync)),
        Err(_) => Ok(text(StatusCode::BAD_GATEWAY, "upstream failed\n")),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}
