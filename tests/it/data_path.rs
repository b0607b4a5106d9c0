//! The data path, black-box: plain HTTP in, OAuth bearer + mutual TLS out to fake-wise.

use crate::common;

use bytes::Bytes;
use common::{first_der, json, send, Harness};
use fake_wise::HostKind;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_bearer_replaces_the_apps_credential_and_the_client_cert_is_presented() {
    let h = Harness::builder().start().await;
    let request = Request::get(h.url("/v1/profiles"))
        .header("authorization", "Bearer the-apps-personal-token")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, body) = send(request).await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["token_kind"], "user");

    let seen = h.wise.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.host, HostKind::Mtls);
    let token = h.wise.current_access_token().unwrap();
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(
        request
            .headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count(),
        1
    );
    assert_eq!(request.header("proxy-authorization"), None);
    assert_eq!(
        request.client_cert_der.as_deref(),
        Some(first_der(&h.client_cert.cert_pem).as_slice())
    );
    // Over HTTP/2 the authority travels as :authority; a Host header, if any, must be Wise's.
    let host = h.wise.mtls_url().trim_start_matches("https://").to_owned();
    assert!(
        request.header("host").is_none_or(|value| value == host),
        "{:?}",
        request.header("host")
    );
}

#[tokio::test]
async fn path_and_query_pass_byte_for_byte() {
    let h = Harness::builder().start().await;
    let target = "/v1/a%2Fb/c%20d/./e?z=1&a=%3D%26&a=2&empty=&plus=a+b";
    let (response, _) = h.get(target).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(h.wise.requests()[0].path_and_query, target);
}

#[tokio::test]
async fn hop_by_hop_headers_go_and_the_rest_pass_both_ways() {
    let h = Harness::builder().start().await;
    let request = Request::post(h.url("/v1/transfers"))
        .header("connection", "x-hop-header")
        .header("x-hop-header", "1")
        .header("keep-alive", "timeout=5")
        .header("te", "trailers")
        .header("upgrade", "h2c")
        .header("x-external-correlation-id", "corr-123")
        .header("x-2fa-approval", "one-time-token")
        .header("x-signature", "c2lnbmF0dXJl")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
        .unwrap();
    let (response, _) = send(request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("x-trace-id").is_some(),
        "x-trace-id comes back"
    );
    let seen = &h.wise.requests()[0];
    for gone in ["x-hop-header", "keep-alive", "te", "upgrade", "connection"] {
        assert_eq!(seen.header(gone), None, "{gone} must not cross");
    }
    assert_eq!(seen.header("x-external-correlation-id"), Some("corr-123"));
    assert_eq!(seen.header("x-2fa-approval"), Some("one-time-token"));
    assert_eq!(seen.header("x-signature"), Some("c2lnbmF0dXJl"));
    assert_eq!(seen.header("content-type"), Some("application/json"));

    let (response, _) = h.get("/test/status/429").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-rate-limited-by"], "fake-wise");
    assert!(response.headers().get("x-wisegate-error").is_none());
}

#[tokio::test]
async fn large_bodies_arrive_intact_with_a_length_and_chunked() {
    let h = Harness::builder().start().await;
    let payload: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = hex(&Sha256::digest(&payload));

    let (response, body) = send(
        Request::put(h.url("/v1/upload"))
            .body(Full::new(Bytes::from(payload.clone())))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&body)["body_sha256"], digest);

    // Chunked: a streamed body with no length.
    let chunks: Vec<Result<http_body::Frame<Bytes>, std::io::Error>> = payload
        .chunks(100_000)
        .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client
        .request(Request::post(h.url("/v1/upload")).body(body).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = json(&response.into_body().collect().await.unwrap().to_bytes());
    assert_eq!(echoed["body_len"], payload.len() as u64);
    assert_eq!(echoed["body_sha256"], digest);
    let seen = h.wise.requests();
    assert_eq!(seen[1].header("content-length"), None, "sent chunked");

    let (response, body) = h.get("/test/download?bytes=5000000").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body.len(), 5_000_000);
}

#[tokio::test]
async fn h2c_from_the_app_and_http2_to_wise() {
    let h = Harness::builder().start().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let response = client
        .request(
            Request::get(h.url("/v1/me?x=1"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let seen = &h.wise.requests()[0];
    assert_eq!(seen.path_and_query, "/v1/me?x=1");
    assert_eq!(seen.http_version, "HTTP/2.0", "ALPN picks h2 towards Wise");
}

/// An h2c app's upload that wisegate cannot read yet (it waits for an upstream slot) must
/// not stop the other streams of its connection: with the connection's flow-control
/// window no larger than one stream's, it took the whole window and a small request beside
/// it got 408 `request_body_timeout`.
#[tokio::test]
async fn an_h2c_upload_waiting_for_a_slot_leaves_room_for_the_connections_other_streams() {
    let extra = "[[route]]\nname = \"legacy\"\npath = \"/v1/legacy/**\"\nmode = \"personal_token\"\n\
                 [limits]\nmax_upstream_requests = 1\nupstream_timeout = \"20s\"\nrequest_body_timeout = \"2s\"\n";
    let h = Harness::builder().extra(extra).start().await;
    // The mTLS host's one slot, held by an answer that stalls midway.
    let mut holder = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    holder
        .write_all(b"GET /test/stall?bytes=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0; 64];
    assert!(
        holder.read(&mut head).await.unwrap() > 0,
        "the stalling answer began"
    );

    let mut sender = common::h2c_connect(h.proxy).await;

    // A 3 MiB upload to the mTLS host: it waits for the slot, so wisegate reads none of it
    // and what the app may send stays buffered, taking flow-control window.
    const CHUNK: usize = 8 * 1024;
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = pulled.clone();
    let chunks = futures_util::stream::iter((0..3 * 128).map(move |_| {
        counter.fetch_add(CHUNK, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(vec![b'u'; CHUNK])))
    }));
    let upload = Request::post("http://wisegate/v1/uploads")
        .header("content-length", 3 * 1024 * 1024)
        .body(StreamBody::new(chunks).boxed_unsync())
        .unwrap();
    let waiting = tokio::spawn(sender.send_request(upload));
    // hyper takes the next chunk only while the windows leave room, and sends it whole:
    // once 1 MiB has been taken, all but the last chunk is in wisegate's buffers.
    let filled = common::eventually(Duration::from_secs(10), async || {
        pulled.load(std::sync::atomic::Ordering::Relaxed) >= 1024 * 1024
    })
    .await;
    assert!(filled, "the upload sent 1 MiB");

    // A small request on the same connection, to the other host (its own slots).
    let small = Request::post("http://wisegate/v1/legacy/notes")
        .body(Full::new(Bytes::from(vec![b's'; 64 * 1024])).boxed_unsync())
        .unwrap();
    let response = sender.send_request(small).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{:?}",
        response.headers().get("x-wisegate-error")
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(json(&body)["body_len"], 64 * 1024);
    assert_eq!(json(&body)["token_kind"], "personal");
    waiting.abort();
}

/// Sends raw bytes and returns the raw answer head.
async fn raw(h: &Harness, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test]
async fn absolute_form_and_connect_are_refused() {
    let h = Harness::builder().start().await;
    let answer = raw(
        &h,
        "GET http://example.com/v1/me HTTP/1.1\r\nHost: example.com\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("x-wisegate-error: absolute_form_refused"),
        "{answer}"
    );
    let answer = raw(
        &h,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    assert!(
        answer.contains("x-wisegate-error: connect_refused"),
        "{answer}"
    );
    assert!(h.wise.requests().is_empty(), "nothing reached an upstream");
}

#[tokio::test]
async fn an_untrusted_client_certificate_gives_a_clear_502() {
    let h = Harness::builder().untrusted_client_cert().start().await;
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = json(&body);
    // TLS 1.3 reports the verdict after the handshake: as the server's alert, or, when
    // the alert is lost to a write, as the connection breaking. Both say what to check.
    let kind = response.headers()["x-wisegate-error"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        [
            "client_certificate_rejected",
            "upstream_connection_lost",
            "upstream_unreachable"
        ]
        .contains(&kind.as_str()),
        "{body}"
    );
    assert_eq!(body["error"], kind.as_str());
    let message = body["message"].as_str().unwrap();
    // Also where Wise's own errors (and client libraries made for them) carry it.
    assert_eq!(body["error_description"], message);
    assert!(
        message.contains("rejected our client certificate"),
        "{message}"
    );
    assert!(
        message.contains(h.wise.mtls_url().trim_start_matches("https://")),
        "{message}"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_says_to_set_ca_file() {
    let h = Harness::builder().no_ca_file().start().await;
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.headers()["x-wisegate-error"],
        "upstream_tls_failed"
    );
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("upstream.ca_file"));
}

/// `upstream_timeout` is Wise's time to answer once the body has gone, not a cap on the
/// upload: a chunked body that keeps coming for longer than it is forwarded whole.
#[tokio::test]
async fn a_long_upload_that_keeps_moving_outlasts_the_upstream_timeout() {
    let limits = "[limits]\nupstream_timeout = \"3s\"\nrequest_body_timeout = \"2s\"\n";
    let h = Harness::builder().extra(limits).start().await;
    let mut app = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    app.write_all(b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // 20 chunks 250 ms apart: 5 s, past the 3 s upstream_timeout, never pausing 2 s.
    for _ in 0..20 {
        app.write_all(b"400\r\n").await.unwrap();
        app.write_all(&[b'u'; 1024]).await.unwrap();
        app.write_all(b"\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    app.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = h.wise.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body_len, 20 * 1024);
}

/// Wise stuck in the middle of its answer: after `upstream_timeout` without a byte the
/// answer is cut off (the app sees it break off) and its upstream slot is free again.
#[tokio::test]
async fn a_response_stalled_midway_is_cut_off_and_frees_its_slot() {
    let limits = "[limits]\nupstream_timeout = \"1s\"\nmax_upstream_requests = 1\n";
    let h = Harness::builder().extra(limits).start().await;
    let answer = common::send_and_wait_for_close(
        h.proxy,
        b"GET /test/stall?bytes=100 HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("content-length: 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(
        body.len(),
        100,
        "what came, and the connection closed short"
    );
    // The one upstream slot is free: the next request is answered, not upstream_busy.
    let (response, _) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// An app that leaves its answer unread loses its connection after
/// `response_write_timeout`, and the answer's upstream slot is free again.
#[tokio::test]
async fn an_app_that_stops_reading_loses_the_connection_and_frees_the_slot() {
    common::init_tracing();
    let limits = "[limits]\nresponse_write_timeout = \"1s\"\nmax_upstream_requests = 1\nupstream_timeout = \"5s\"\n";
    let h = Harness::builder().extra(limits).start().await;
    let mut app = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    // 64 MiB, never read: the sockets and windows between fill up, wisegate's writes wait.
    app.write_all(b"GET /test/download?bytes=67108864 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let downloading = common::eventually(Duration::from_secs(10), async || {
        h.wise
            .requests()
            .iter()
            .any(|r| r.path_and_query.starts_with("/test/download"))
    })
    .await;
    assert!(downloading, "the download reached fake-wise");
    // The one upstream slot is held by that answer until wisegate gives up on the app;
    // without the limit this request waits upstream_timeout and gets 503 upstream_busy.
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    drop(app);
}

#[tokio::test]
async fn an_unreachable_upstream_names_host_and_port() {
    // A socket bound but never listening: connecting to it is refused, and while it
    // is held no other test can listen on the port and the kernel cannot pick it as
    // the source port of a connection to itself (a dropped listener allowed both:
    // once CI met a TLS server there and got upstream_tls_failed).
    let holder = tokio::net::TcpSocket::new_v4().unwrap();
    holder.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = holder.local_addr().unwrap();
    let extra = String::new();
    let h = Harness::builder().extra(extra).start().await;
    // Point the legacy host at a closed port through a rollback route.
    let text = std::fs::read_to_string(&h.config_path)
        .unwrap()
        .replace(&h.wise.legacy_url(), &format!("https://{closed}"))
        + "\n[rollback]\nall = true\n";
    let path = h.dir.path().join("unreachable.toml");
    std::fs::write(&path, text).unwrap();
    let config = wisegate::config::Config::load(&path).unwrap();
    let (response, body) = common::get_at(common::serve(config).await.proxy, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.headers()["x-wisegate-error"],
        "upstream_unreachable"
    );
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains(&closed.to_string()),
        "{body:?}"
    );
    drop(holder);
}

#[tokio::test]
async fn without_authorization_requests_get_503_and_readiness_says_why() {
    let h = Harness::builder().unauthorized().start().await;
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-wisegate-error"], "not_authorized");
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("wisegate authorize"));
    h.assert_not_ready("wisegate authorize").await;
    let (health, _) = h.admin_get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_is_green_once_authorized() {
    let h = Harness::builder().start().await;
    let (ready, body) = h.admin_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "{body:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
