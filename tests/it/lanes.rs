//! Serving lanes (`listen.threads`): app connections are spread over the lanes, and each
//! lane reaches Wise over its own connection.

use crate::common;

use bytes::Bytes;
use common::Harness;
use fake_wise::HostKind;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::collections::HashSet;
use tokio::net::TcpStream;

/// Opens `count` app connections to wisegate, one after the other, and keeps them open.
async fn open_connections(h: &Harness, count: usize) -> Vec<SendRequest<Empty<Bytes>>> {
    let mut senders = Vec::new();
    for _ in 0..count {
        let stream = TcpStream::connect(h.proxy).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        senders.push(sender);
    }
    senders
}

/// Sends one GET on each connection, in order; asserts each answer is 200.
async fn get_on_each(senders: &mut [SendRequest<Empty<Bytes>>], path: &str) {
    for sender in senders.iter_mut() {
        sender.ready().await.unwrap();
        let request = Request::get(path)
            .header("host", "localhost")
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(status, StatusCode::OK, "{body:?}");
    }
}

/// The upstream connections (client addresses) fake-wise's API host saw for `path`.
fn upstream_connections(h: &Harness, path: &str) -> HashSet<std::net::SocketAddr> {
    h.wise
        .requests()
        .iter()
        .filter(|seen| seen.host == HostKind::Mtls && seen.path_and_query == path)
        .map(|seen| seen.peer.expect("fake-wise records the client address"))
        .collect()
}

async fn harness_with_threads(threads: usize) -> Harness {
    Harness::builder().threads(threads).start().await
}

#[tokio::test]
async fn connections_are_spread_over_the_lanes_and_each_lane_has_its_own_upstream_connection() {
    let h = harness_with_threads(3).await;
    let mut senders = open_connections(&h, 6).await;
    get_on_each(&mut senders, "/v1/profiles").await;
    // Twice round: the second request on each connection reuses its lane's connection.
    get_on_each(&mut senders, "/v1/profiles").await;
    let seen = upstream_connections(&h, "/v1/profiles");
    assert_eq!(seen.len(), 3, "one upstream connection per lane: {seen:?}");
}

#[tokio::test]
async fn one_thread_serves_every_connection_over_one_upstream_connection() {
    let h = harness_with_threads(1).await;
    let mut senders = open_connections(&h, 4).await;
    get_on_each(&mut senders, "/v1/profiles").await;
    let seen = upstream_connections(&h, "/v1/profiles");
    assert_eq!(seen.len(), 1, "{seen:?}");
}
