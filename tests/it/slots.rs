//! The upstream request slots under uploads that trickle: one app connection (h2c streams)
//! or, in gateway mode, one client address holds at most its share, so the others still
//! get through; a body below `limits.request_body_min_rate` gives its slot back with 408
//! `request_body_too_slow`; a slow but steady upload above the floor goes through whole.

use crate::common;

use bytes::Bytes;
use common::{authorize_with_code, eventually, json, metric, Harness, Setup};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use wisegate::config::Config;

/// A request body fed part by part.
type Fed = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// A body that sends `part` `count` times, `every` apart, then ends.
fn paced(part: &'static [u8], every: Duration, count: usize) -> Fed {
    let (parts, mut receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for _ in 0..count {
            let frame = Ok(Frame::data(Bytes::from_static(part)));
            if parts.send(frame).await.is_err() {
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    StreamBody::new(stream.boxed())
}

/// One byte every 200 ms for 20 s: each pause well inside `request_body_timeout`.
fn trickle() -> Fed {
    paced(b"x", Duration::from_millis(200), 100)
}

/// A running wisegate in front of fake-wise.
struct Running {
    setup: Setup,
    proxy: SocketAddr,
    admin: SocketAddr,
}

/// Starts wisegate with `limits` (the lines of `[limits]`); with `gateway`, its config
/// says it listens on all addresses (the test still binds loopback).
async fn start(limits: &str, gateway: bool) -> Running {
    common::init_tracing();
    let setup = Harness::builder().setup().await;
    let mut text = std::fs::read_to_string(&setup.config_path).unwrap();
    if gateway {
        text = text.replace(
            "[listen]\naddress = \"127.0.0.1:0\"",
            "[listen]\naddress = \"0.0.0.0:0\"\nallow_non_loopback = true",
        );
    }
    text.push_str(&format!("\n[limits]\n{limits}\n"));
    std::fs::write(&setup.config_path, text).unwrap();
    let config = Config::load(&setup.config_path).unwrap();
    authorize_with_code(&config, &setup.wise).await;
    let common::Running { proxy, admin, .. } = common::serve(config).await;
    Running {
        setup,
        proxy,
        admin,
    }
}

impl Running {
    /// Waits (at most 10 s) until `requests` are in wisegate and `upstream` of them have
    /// reached Wise (each holding a slot there).
    async fn wait_for(&self, requests: u64, upstream: u64) {
        let reached = eventually(Duration::from_secs(10), async || {
            metric(self.admin, "wisegate_requests_in_flight").await >= requests as f64
                && self.setup.wise.api_requests_in_progress() >= upstream
        })
        .await;
        assert!(
            reached,
            "never {requests} requests in flight with {upstream} at Wise (at Wise: {})",
            self.setup.wise.api_requests_in_progress()
        );
    }

    fn uri(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }
}

/// An HTTP/1.1 client whose connections come from `local` (a loopback address).
fn client_from<B>(local: &str) -> Client<HttpConnector, B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(local.parse::<IpAddr>().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends `request` on its own task; the answer and its whole body.
fn spawn_send<B>(
    client: &Client<HttpConnector, B>,
    request: Request<B>,
) -> tokio::task::JoinHandle<(Response<()>, Bytes)>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let answer = client.request(request);
    tokio::spawn(async move {
        let response = answer.await.expect("wisegate answers");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("whole body").to_bytes();
        (Response::from_parts(parts, ()), bytes)
    })
}

fn upload(uri: String, body: Fed) -> Request<Fed> {
    Request::post(uri).body(body).unwrap()
}

fn get(uri: String) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn trickling_h2c_streams_of_one_connection_leave_room_for_other_connections() {
    let limits = "max_upstream_requests = 4\nmax_upstream_requests_per_connection = 2\nrequest_body_min_rate = 0\nrequest_body_timeout = \"2s\"\nupstream_timeout = \"3s\"";
    let running = start(limits, false).await;
    // Four trickling uploads as streams of one h2c connection.
    let tcp = tokio::net::TcpStream::connect(running.proxy).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    let _uploads: Vec<_> = (0..4)
        .map(|_| {
            let mut sender = sender.clone();
            let request = upload(running.uri("/v1/upload"), trickle());
            tokio::spawn(async move { sender.send_request(request).await.map(drop) })
        })
        .collect();
    running.wait_for(4, 2).await;

    let (response, body) = spawn_send(&client_from("127.0.0.1"), get(running.uri("/v1/me")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(
        running.setup.wise.api_requests_in_progress(),
        2,
        "the connection's other two uploads wait for its own slots"
    );
}

#[tokio::test]
async fn in_gateway_mode_trickling_uploads_from_one_address_leave_room_for_other_addresses() {
    let limits = "max_upstream_requests = 4\nmax_upstream_requests_per_client = 2\nrequest_body_min_rate = 0\nrequest_body_timeout = \"2s\"\nupstream_timeout = \"3s\"";
    let running = start(limits, true).await;
    // Four trickling uploads from 127.0.0.1, each on its own HTTP/1.1 connection.
    let busy = client_from::<Fed>("127.0.0.1");
    let _uploads: Vec<_> = (0..4)
        .map(|_| spawn_send(&busy, upload(running.uri("/v1/upload"), trickle())))
        .collect();
    running.wait_for(4, 2).await;

    let (response, body) = spawn_send(&client_from("127.0.0.2"), get(running.uri("/v1/me")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    // The busy address itself waits for its own slots, then hears why.
    let (response, body) = spawn_send(&client_from("127.0.0.1"), get(running.uri("/v1/me")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-wisegate-error"], "upstream_busy");
    let message = json(&body)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("client address 127.0.0.1")
            && message.contains("limits.max_upstream_requests_per_client"),
        "{message}"
    );
}

/// Sidecar mode: every connection comes from 127.0.0.1, and the per-address bound (set
/// low here) does not apply: the one app may use every slot.
#[tokio::test]
async fn in_sidecar_mode_one_app_on_loopback_may_use_every_slot() {
    let limits = "max_upstream_requests = 4\nmax_upstream_requests_per_client = 1\nrequest_body_min_rate = 0\nrequest_body_timeout = \"2s\"\nupstream_timeout = \"3s\"";
    let running = start(limits, false).await;
    let app = client_from::<Fed>("127.0.0.1");
    let _uploads: Vec<_> = (0..4)
        .map(|_| spawn_send(&app, upload(running.uri("/v1/upload"), trickle())))
        .collect();
    running.wait_for(4, 4).await;
}

#[tokio::test]
async fn a_body_below_the_rate_floor_gives_its_slot_back_with_408_request_body_too_slow() {
    let limits = "max_upstream_requests = 1\nrequest_body_min_rate = 1000\nrequest_body_timeout = \"1s\"\nupstream_timeout = \"10s\"";
    let running = start(limits, false).await;
    // 10 bytes/s, each pause a tenth of request_body_timeout; ends by itself after 15 s.
    let slow = paced(b"x", Duration::from_millis(100), 150);
    let app = client_from::<Fed>("127.0.0.1");
    let slow_upload = spawn_send(&app, upload(running.uri("/v1/upload"), slow));
    running.wait_for(1, 1).await;
    // The one slot is held: this request waits for it.
    let other = spawn_send(&client_from("127.0.0.1"), get(running.uri("/v1/me")));

    let (response, body) = slow_upload.await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT, "{body:?}");
    assert_eq!(
        response.headers()["x-wisegate-error"],
        "request_body_too_slow"
    );
    let message = json(&body)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("limits.request_body_min_rate"),
        "{message}"
    );
    let (response, body) = other.await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the slot came back: {body:?}"
    );
}

#[tokio::test]
async fn a_slow_but_steady_upload_above_the_floor_goes_through_whole() {
    let limits =
        "request_body_min_rate = 1000\nrequest_body_timeout = \"1s\"\nupstream_timeout = \"10s\"";
    let running = start(limits, false).await;
    // 500 bytes every 50 ms (10 kB/s, ten times the floor) for about 2 s: two windows.
    const PART: &[u8; 500] = &[b'a'; 500];
    let steady = paced(PART, Duration::from_millis(50), 40);
    let app = client_from::<Fed>("127.0.0.1");
    let (response, body) = spawn_send(&app, upload(running.uri("/v1/upload"), steady))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["body_len"], 40 * 500);
}

/// The smallest valid config, with `limits` as its `[limits]` table.
fn limits_config(limits: &str) -> Result<wisegate::config::Limits, String> {
    let text = format!(
        "environment = \"sandbox\"\n[mtls]\ncert_file = \"c.crt\"\nkey_file = \"c.key\"\n[oauth]\nclient_id = \"a\"\nclient_secret_file = \"s\"\nredirect_uri = \"https://a.example\"\ntoken_store = \"t.json\"\n[limits]\n{limits}\n"
    );
    Config::parse(std::path::Path::new("w.toml"), &text)
        .map(|config| config.limits)
        .map_err(|error| error.to_string())
}

#[test]
fn the_shares_default_to_fractions_of_the_slots_and_every_bad_value_is_reported() {
    let defaults = limits_config("").unwrap();
    assert_eq!(
        defaults.max_upstream_requests_per_connection, 256,
        "sidecar mode: the one app may use every slot over one connection"
    );
    let text = "environment = \"sandbox\"\n[listen]\naddress = \"0.0.0.0:8080\"\nallow_non_loopback = true\n[mtls]\ncert_file = \"c.crt\"\nkey_file = \"c.key\"\n[oauth]\nclient_id = \"a\"\nclient_secret_file = \"s\"\nredirect_uri = \"https://a.example\"\ntoken_store = \"t.json\"\n";
    let gateway = Config::parse(std::path::Path::new("w.toml"), text).unwrap();
    assert_eq!(
        gateway.limits.max_upstream_requests_per_connection, 64,
        "gateway mode: a quarter"
    );
    assert_eq!(defaults.max_upstream_requests_per_client, 128);
    assert_eq!(defaults.request_body_min_rate, 1024);
    let small = limits_config("max_upstream_requests = 2").unwrap();
    assert_eq!(
        (
            small.max_upstream_requests_per_connection,
            small.max_upstream_requests_per_client
        ),
        (2, 1),
        "sidecar: every slot per connection; a share is never below one"
    );
    assert_eq!(
        limits_config("request_body_min_rate = 0")
            .unwrap()
            .request_body_min_rate,
        0,
        "0 turns the floor off"
    );
    let error = limits_config(
        "max_upstream_requests = 8\nmax_upstream_requests_per_connection = 9\nmax_upstream_requests_per_client = 0",
    )
    .unwrap_err();
    for says in [
        "w.toml:12: limits.max_upstream_requests_per_connection: is larger than limits.max_upstream_requests (8)",
        "w.toml:13: limits.max_upstream_requests_per_client: must be greater than zero",
    ] {
        assert!(error.contains(says), "{error}");
    }
}
