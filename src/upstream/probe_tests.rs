//! The probe gate against a real TLS server on 127.0.0.1:0 (a certificate made here),
//! HTTP/2 or HTTP/1.1 by ALPN, which counts the connections it accepts.

use crate::body::full;
use crate::slots::SlotBounds;
use crate::upstream::{Upstream, UpstreamBody, UpstreamError, UpstreamSettings};
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::PrivateKeyDer;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A TLS server on 127.0.0.1 that answers 200 to everything.
struct Server {
    port: u16,
    /// Connections accepted, and those still open.
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    roots: rustls::RootCertStore,
}

/// `hold`: after the first connection, the next ones wait unanswered (not even their TLS
/// handshake) until `hold` of them are open at once. `answer_at`: requests are answered
/// once that many are in flight at once.
async fn server(alpn: &[&[u8]], hold: usize, answer_at: usize) -> Server {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let mut tls = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    tls.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (counter, live) = (accepted.clone(), open.clone());
    let in_flight = Arc::new(watch::channel(0usize).0);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
            held.push(tcp);
            if !first && held.len() < hold {
                continue;
            }
            for tcp in held.drain(..) {
                live.fetch_add(1, Ordering::SeqCst);
                let (acceptor, live) = (acceptor.clone(), live.clone());
                let in_flight = in_flight.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let service = service_fn(move |_: Request<Incoming>| {
                            let in_flight = in_flight.clone();
                            async move {
                                in_flight.send_modify(|n| *n += 1);
                                let _ = in_flight.subscribe().wait_for(|n| *n >= answer_at).await;
                                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                            }
                        });
                        let _ = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    }
                    live.fetch_sub(1, Ordering::SeqCst);
                });
            }
        }
    });
    Server {
        port,
        accepted,
        open,
        roots,
    }
}

/// An upstream client for `server` (by address: no name to resolve, so a connect dials at
/// once) whose pool closes connections idle for `idle_timeout`.
fn upstream_with(server: &Server, idle_timeout: Duration) -> Upstream {
    let base: Uri = format!("https://127.0.0.1:{}", server.port)
        .parse()
        .unwrap();
    let settings = UpstreamSettings {
        // Longer than the tests' own limits (20 s): a connect that waits for another for
        // as long as it may still fails them.
        connect_timeout: Duration::from_secs(30),
        // Longer than the tests' own limits (20 s), so that a hang fails them.
        timeout: Duration::from_secs(60),
        idle_timeout,
        slots: SlotBounds {
            all: 256,
            per_connection: 256,
            per_client: None,
        },
        lanes: 0,
        runtime: None,
    };
    let tls = crate::tls::client_config(server.roots.clone(), None);
    Upstream::new(&base, tls, settings)
}

fn upstream(server: &Server) -> Upstream {
    upstream_with(server, Duration::from_secs(90))
}

/// Starts `count` GETs at once, each on a task of its own.
fn gets(
    upstream: &Upstream,
    count: usize,
) -> Vec<JoinHandle<Result<Response<UpstreamBody>, UpstreamError>>> {
    (0..count)
        .map(|_| {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let request = Request::get(upstream.uri_for(None))
                    .body(full(Bytes::new()))
                    .unwrap();
                upstream.send(request).await
            })
        })
        .collect()
}

/// Sends `count` GETs at once; every one must be answered 200.
async fn burst(upstream: &Upstream, count: usize) {
    for get in gets(upstream, count) {
        let response = get.await.unwrap().expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        response.into_body().collect().await.unwrap();
    }
}

/// As on a lane (a runtime of one thread each).
#[tokio::test]
async fn a_burst_on_a_cold_pool_opens_one_connection_to_an_http2_host() {
    one_connection_for_a_burst().await;
}

/// As on the main runtime (callers outside the lanes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn so_it_does_when_the_burst_comes_from_several_threads() {
    one_connection_for_a_burst().await;
}

async fn one_connection_for_a_burst() {
    let server = server(&[b"h2", b"http/1.1"], 0, 1).await;
    let upstream = upstream(&server);
    burst(&upstream, 20).await;
    // Connects left in the background would have dialled by now; one more request after
    // them must find the same single connection.
    burst(&upstream, 1).await;
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_http1_host_still_gets_one_connection_per_request_in_flight() {
    // The server answers once 5 requests are in flight (so each needs a connection of
    // its own), and after the first connection (the probe) takes up no handshake until 4
    // are open at once: connects that waited for one another would never get there.
    let server = server(&[b"http/1.1"], 4, 5).await;
    let upstream = upstream(&server);
    tokio::time::timeout(Duration::from_secs(20), burst(&upstream, 5))
        .await
        .expect("4 connects at once after the probe");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn after_a_lost_connection_a_burst_opens_one_again() {
    let server = server(&[b"h2", b"http/1.1"], 0, 1).await;
    let upstream = upstream_with(&server, Duration::from_millis(100));
    burst(&upstream, 20).await;
    // The pool closes the idle connection; then the server has none open.
    let closed = eventually(|| server.open.load(Ordering::SeqCst) == 0);
    assert!(closed.await, "the idle connection was closed");
    burst(&upstream, 20).await;
    burst(&upstream, 1).await;
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

/// Whether `check` holds within 10 s (checked every millisecond).
async fn eventually(check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

#[tokio::test]
async fn a_failed_probe_lets_every_waiting_connect_try_its_own() {
    // The first connection is closed at once (the probe fails its TLS handshake); the
    // next ones are held open, unanswered, until 4 are open at once: connects that tried
    // one after another would never get there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (first, _) = listener.accept().await.unwrap();
        drop(first);
        let mut held = Vec::new();
        while held.len() < 4 {
            held.push(listener.accept().await.unwrap().0);
        }
    });
    let server = Server {
        port,
        accepted: Arc::default(),
        open: Arc::default(),
        roots: rustls::RootCertStore::empty(),
    };
    for get in gets(&upstream(&server), 5) {
        let answer = tokio::time::timeout(Duration::from_secs(20), get)
            .await
            .expect("the 4 waiting connects were open at once")
            .unwrap();
        assert!(answer.is_err(), "{answer:?}");
    }
}
