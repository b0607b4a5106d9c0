//! The mTLS and legacy API hosts: handshakes, authentication, the echo and the record.

mod common;

use bytes::Bytes;
use common::{get, send, start, tls};
use fake_wise::{FakeWiseConfig, HostKind};
use http::{Request, StatusCode};
use http_body_util::Full;

#[tokio::test]
async fn missing_client_cert_fails_on_the_mtls_host() {
    let env = start(FakeWiseConfig::default()).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let config = tls(&env.ca.cert_pem(), None, &[alpn]);
        let result = send(&env.fake.mtls_url(), Some(config), get("/v1/x", None)).await;
        assert!(
            result.is_err(),
            "a request without client certificate got through"
        );
    }
    let expired = env.ca.client_cert_expired("Acme Ltd");
    let config = tls(&env.ca.cert_pem(), Some(&expired), &[b"http/1.1"]);
    let result = send(&env.fake.mtls_url(), Some(config), get("/v1/x", None)).await;
    assert!(
        result.is_err(),
        "an expired client certificate was accepted"
    );
    let stranger = fake_wise::TestCa::new("other").client_cert("Acme Ltd");
    let config = tls(&env.ca.cert_pem(), Some(&stranger), &[b"http/1.1"]);
    let result = send(&env.fake.mtls_url(), Some(config), get("/v1/x", None)).await;
    assert!(
        result.is_err(),
        "a client certificate from another CA was accepted"
    );
    assert!(env.fake.requests().is_empty());
}

#[tokio::test]
async fn legacy_host_accepts_the_personal_token() {
    let env = start(FakeWiseConfig::default()).await;
    let personal = env.fake.config().personal_token.clone();
    let req = Request::post("/v1/transfers?a=%20b")
        .header("host", "127.0.0.1")
        .header("x-external-correlation-id", "abc")
        .header("authorization", format!("Bearer {personal}"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let answer = env.legacy(req).await;
    assert_eq!(answer.status, StatusCode::OK);
    let echo = answer.json();
    assert_eq!(echo["host"], "legacy");
    assert_eq!(echo["token_kind"], "personal");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path_and_query"], "/v1/transfers?a=%20b");
    assert_eq!(echo["body_len"], 5);
    let sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    assert_eq!(echo["body_sha256"], sha);

    let denied = env.legacy(get("/v1/transfers", Some("nope"))).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.json()["error"], "invalid_token");
    assert!(denied.headers.contains_key("x-trace-id"));
    // An OAuth token is no good on the legacy host, nor the personal token on the mTLS host.
    let mtls = env.mtls(get("/v1/x", Some(&personal))).await;
    assert_eq!(mtls.status, StatusCode::UNAUTHORIZED);

    let recorded = env.fake.requests();
    assert_eq!(recorded.len(), 3);
    let first = &recorded[0];
    assert_eq!(first.host, HostKind::Legacy);
    assert_eq!((first.body_len, first.body_sha256.as_str()), (5, sha));
    assert_eq!(first.header("x-external-correlation-id"), Some("abc"));
    assert_eq!(first.http_version, "HTTP/1.1");
    assert!(first.client_cert_der.is_none());
    assert_eq!(recorded[1].status, 401);
    assert_eq!(recorded[2].host, HostKind::Mtls);
    assert_eq!(recorded[2].http_version, "HTTP/2.0");
    assert!(recorded[2].client_cert_der.is_some());
    env.fake.clear_requests();
    assert!(env.fake.requests().is_empty());
}

#[tokio::test]
async fn special_paths() {
    let env = start(FakeWiseConfig::default()).await;
    let token = env.authorize().await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Some(token.as_str());
    let download = env.mtls(get("/test/download?bytes=200000", t)).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body.len(), 200_000);
    assert_eq!(download.body[251], 0);

    let limited = env.mtls(get("/2026Q3/test/status/429", t)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers["retry-after"], "1");
    assert_eq!(limited.headers["x-rate-limited-by"], "fake-wise");

    let started = std::time::Instant::now();
    let slow = env.mtls(get("/test/slow?ms=150", t)).await;
    assert_eq!(slow.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(150));

    // Unauthenticated special paths are refused like any other.
    let refused = env.mtls(get("/test/download?bytes=10", None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.fake.requests().len(), 4);
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    let env = start(FakeWiseConfig::default()).await;
    let url = env.fake.legacy_url();
    let addr = url.trim_start_matches("https://").to_owned();
    env.fake.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// `http_versions` picks what ALPN offers: an HTTP/1.1-only or HTTP/2-only upstream.
#[tokio::test]
async fn alpn_offers_the_configured_http_versions() {
    use fake_wise::HttpVersions;
    let env = start(FakeWiseConfig {
        http_versions: HttpVersions::Http1Only,
        ..FakeWiseConfig::default()
    })
    .await;
    let personal = env.fake.config().personal_token.clone();
    let config = tls(&env.ca.cert_pem(), None, &[b"h2", b"http/1.1"]);
    let answer = send(
        &env.fake.legacy_url(),
        Some(config),
        get("/v1/x", Some(&personal)),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.version, http::Version::HTTP_11, "h2 is not offered");

    let env = start(FakeWiseConfig {
        http_versions: HttpVersions::Http2Only,
        ..FakeWiseConfig::default()
    })
    .await;
    let config = tls(&env.ca.cert_pem(), None, &[b"http/1.1"]);
    let refused = send(
        &env.fake.legacy_url(),
        Some(config),
        get("/v1/x", Some(&personal)),
    )
    .await;
    assert!(refused.is_err(), "an HTTP/1.1-only client was served");
    let config = tls(&env.ca.cert_pem(), None, &[b"h2", b"http/1.1"]);
    let answer = send(
        &env.fake.legacy_url(),
        Some(config),
        get("/v1/x", Some(&personal)),
    )
    .await
    .unwrap();
    assert_eq!(answer.version, http::Version::HTTP_2);
}

/// The record keeps the body's first bytes (bounded by `recorded_body_limit`) and the
/// authority an HTTP/2 request carried, and finds a secret anywhere in what arrived.
#[tokio::test]
async fn the_record_keeps_the_body_and_the_authority() {
    let env = start(FakeWiseConfig {
        recorded_body_limit: 4,
        ..FakeWiseConfig::default()
    })
    .await;
    let personal = env.fake.config().personal_token.clone();
    let config = tls(&env.ca.cert_pem(), None, &[b"h2"]);
    let req = Request::post("/v1/x")
        .header("authorization", format!("Bearer {personal}"))
        .header("cookie", "a=1")
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let answer = send(&env.fake.legacy_url(), Some(config), req)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let seen = &env.fake.requests()[0];
    assert_eq!(seen.body, b"hell", "at most the limit");
    assert_eq!(seen.body_len, 5);
    assert_eq!(seen.authority.as_deref(), Some("127.0.0.1"));
    assert!(seen.trailers.is_empty());
    assert_eq!(seen.header_all("cookie"), ["a=1"]);
    assert!(seen.contains(&personal) && seen.contains("hell") && !seen.contains("nowhere"));
}
