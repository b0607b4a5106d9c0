//! App and admin connections that hold a place without a request: silent sockets, a
//! partial HTTP/2 preface, h2c clients that only answer PINGs, idle keep-alive
//! connections, `max_connections` taken by silent sockets, and h2c streams reset right
//! after wisegate accepted them.

use crate::common;

use bytes::Bytes;
use common::{eventually, Harness};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any test here waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// Waits for `stream` to be closed by wisegate (end of stream or reset); how long it
/// took, or `None` if it stayed open for [`PATIENCE`].
async fn closed_within_patience(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_to_end).await.ok()?;
    Some(started.elapsed())
}

/// An h2c client that sends nothing but PINGs (every 100 ms) after its preface; its
/// request handle, to learn how the connection ended.
async fn ping_only(address: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let (sender, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut pings = connection.ping_pong().expect("a ping handle");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    tokio::spawn(async move {
        while pings.ping(h2::Ping::opaque()).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    sender
}

/// Whether the h2c connection behind `sender` was ended by a GOAWAY (within PATIENCE).
async fn ended_by_goaway(sender: h2::client::SendRequest<Bytes>) -> bool {
    let mut sender = Some(sender);
    let ended = eventually(PATIENCE, async || {
        let probe = sender.clone().unwrap();
        match tokio::time::timeout(Duration::from_millis(50), probe.ready()).await {
            Ok(Err(error)) => {
                sender = None;
                assert!(error.is_go_away(), "closed without GOAWAY: {error}");
                true
            }
            _ => false,
        }
    })
    .await;
    ended
}

const SHORT_HEAD_DEADLINE: &str = "[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"3s\"\n";

#[tokio::test]
async fn connections_without_a_request_are_closed_on_both_listeners() {
    let h = Harness::builder().extra(SHORT_HEAD_DEADLINE).start().await;
    for address in [h.proxy, h.admin] {
        let mut silent = TcpStream::connect(address).await.unwrap();
        let mut preface = TcpStream::connect(address).await.unwrap();
        preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
        let pinging = ping_only(address).await;

        // Meanwhile both listeners go on serving.
        let (answer, _) = h.get("/v1/me").await;
        assert_eq!(answer.status(), StatusCode::OK);
        let (health, _) = h.admin_get("/healthz").await;
        assert_eq!(health.status(), StatusCode::OK);

        let silent_for = closed_within_patience(&mut silent).await;
        assert!(
            silent_for.is_some(),
            "{address}: a silent socket stayed open"
        );
        let preface_for = closed_within_patience(&mut preface).await;
        assert!(
            preface_for.is_some(),
            "{address}: a partial preface stayed open"
        );
        assert!(
            ended_by_goaway(pinging).await,
            "{address}: a ping-only h2c client stayed connected"
        );
    }
}

#[tokio::test]
async fn silent_sockets_at_max_connections_cannot_keep_requests_out() {
    // Deadlines far off, so only making room can let the requests in.
    let h = Harness::builder().extra(
        "[limits]\nmax_connections = 4\nheader_read_timeout = \"60s\"\nidle_timeout = \"60s\"\n",
    ).start()
    .await;
    for address in [h.proxy, h.admin] {
        let mut silent = Vec::new();
        for _ in 0..12 {
            silent.push(TcpStream::connect(address).await.unwrap());
        }
        let path = if address == h.proxy {
            "/v1/me"
        } else {
            "/healthz"
        };
        let answered = tokio::time::timeout(PATIENCE, common::get_at(address, path)).await;
        let (answer, _) = answered.unwrap_or_else(|_| panic!("{address}: no answer"));
        assert_eq!(answer.status(), StatusCode::OK);
        // The oldest silent ones made the room, and are gone.
        let oldest_for = closed_within_patience(&mut silent[0]).await;
        assert!(
            oldest_for.is_some(),
            "{address}: the oldest silent socket stayed"
        );
    }
}

/// A plain HTTP/1.1 keep-alive connection to `address`: its request handle, and the task
/// that ends (giving the socket back) when the handle is dropped or wisegate closes it.
async fn keep_alive(
    address: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    tokio::task::JoinHandle<Option<TcpStream>>,
) {
    let tcp = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    let connection = tokio::spawn(async move {
        let parts = connection.without_shutdown().await.ok()?;
        Some(parts.io.into_inner())
    });
    (sender, connection)
}

async fn get_on(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) -> StatusCode {
    let request = Request::get("/v1/me")
        .header("host", "wisegate")
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("answered");
    let status = response.status();
    response.into_body().collect().await.expect("whole body");
    status
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_head_one() {
    let h = Harness::builder()
        .extra("[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"6s\"\n")
        .start()
        .await;
    let (mut sender, connection) = keep_alive(h.proxy).await;
    assert_eq!(get_on(&mut sender).await, StatusCode::OK);
    // Idle for twice the head deadline: still there for the next request.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!connection.is_finished(), "closed while idle");
    // (wisegate counts from the end of its answer, after this.)
    let asked = Instant::now();
    assert_eq!(get_on(&mut sender).await, StatusCode::OK);
    let closed = tokio::time::timeout(PATIENCE, connection).await;
    assert!(closed.is_ok(), "the idle connection was never closed");
    assert!(
        asked.elapsed() >= Duration::from_secs(6),
        "closed {:?} after the last request, before idle_timeout",
        asked.elapsed()
    );
    drop(sender);
}

#[tokio::test]
async fn a_head_begun_on_an_idle_connection_has_the_head_deadline() {
    let h = Harness::builder()
        .extra("[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"60s\"\n")
        .start()
        .await;
    let (mut sender, connection) = keep_alive(h.proxy).await;
    assert_eq!(get_on(&mut sender).await, StatusCode::OK);
    drop(sender);
    let mut tcp = connection.await.unwrap().expect("the socket, still open");
    tokio::time::sleep(Duration::from_secs(2)).await;
    tcp.write_all(b"GET /v1/me HTTP/1.1\r\nHost: wisegate\r\n")
        .await
        .expect("still open after idling past the head deadline");
    let cut_after = closed_within_patience(&mut tcp).await;
    let cut_after = cut_after.expect("an unfinished head was never cut");
    assert!(
        cut_after >= Duration::from_millis(900),
        "cut after {cut_after:?}"
    );
}

#[tokio::test]
async fn streams_reset_after_they_are_accepted_end_in_goaway() {
    let h = Harness::builder().start().await;
    let tcp = TcpStream::connect(h.proxy).await.unwrap();
    let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut reset = 0;
    let goaway = loop {
        let ready = tokio::time::timeout(PATIENCE, sender.clone().ready()).await;
        let mut ready = match ready.expect("h2 lets a new stream open") {
            Ok(ready) => ready,
            Err(error) => break error,
        };
        let request = Request::get(format!("http://{}/test/slow?ms=5000", h.proxy))
            .body(())
            .unwrap();
        let (_response, mut stream) = match ready.send_request(request, true) {
            Ok(sent) => sent,
            Err(error) => break error,
        };
        // Reset once wisegate has taken it (its answer is on its way).
        common::wait_for_metric(h.admin, "wisegate_requests_in_flight", 1.0).await;
        stream.send_reset(h2::Reason::CANCEL);
        common::wait_for_metric_to_be(h.admin, "wisegate_requests_in_flight", 0.0).await;
        reset += 1;
        assert!(
            reset <= 100,
            "100 streams reset after accept, and no GOAWAY"
        );
    };
    assert!(goaway.is_go_away(), "ended without GOAWAY: {goaway}");
    assert!(reset > 20, "closed after only {reset} resets");
}
