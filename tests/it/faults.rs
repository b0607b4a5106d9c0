//! Broken neighbours: a token endpoint answering garbage, nothing or too slowly; an
//! upstream that resets mid-response; an expired client certificate. Each has a sane,
//! clear outcome and loses nothing.

use crate::common;

use bytes::Bytes;
use common::{authorize_with_code, get_at, json, Harness, Running};
use fake_wise::TokenEndpointMode;
use http::StatusCode;
use http_body_util::BodyExt;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wisegate::config::Config;

#[tokio::test]
async fn a_token_endpoint_answering_garbage_or_nothing_is_explained_and_survived() {
    let h = Harness::builder().start().await;
    for (mode, detail) in [
        (TokenEndpointMode::Garbage, "text/html"),
        (TokenEndpointMode::Empty, "0 bytes"),
    ] {
        h.wise.set_token_endpoint(mode);
        h.wise.invalidate_access_tokens();
        let (response, body) = h.get("/v1/me").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let message = json(&body)["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("not a token response") && message.contains(detail),
            "{message}"
        );
    }
    h.wise.set_token_endpoint(TokenEndpointMode::Normal);
    let (response, _) = h.get("/v1/me").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "recovers once the endpoint answers properly"
    );
}

#[tokio::test]
async fn a_slow_token_endpoint_is_cut_off_by_upstream_timeout() {
    let limits = "[limits]\nupstream_timeout = \"1s\"\n";
    let h = Harness::builder().extra(limits).start().await;
    h.wise
        .set_token_endpoint(TokenEndpointMode::Slow(Duration::from_secs(5)));
    h.wise.invalidate_access_tokens();
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let message = json(&body)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("did not answer within 1 s"), "{message}");
}

#[tokio::test]
async fn an_expired_client_certificate_means_not_ready_and_a_502_that_says_so() {
    let h = Harness::builder().expired_client_cert().start().await;
    h.assert_not_ready("has expired").await;
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        response.headers()["x-wisegate-error"],
        "client_certificate_expired"
    );
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("client.crt has expired"));
    assert!(
        h.wise.requests().is_empty(),
        "nothing was sent with an expired certificate"
    );
}

/// A TLS upstream that answers every request with a 100,000-byte promise, sends 1,000
/// bytes and closes the connection.
async fn resetting_upstream(server: &fake_wise::CertKeyPem) -> std::net::SocketAddr {
    let chain = rustls::pki_types::CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tls.read_exact(&mut byte).await.is_ok() {
                    head.push(byte[0]);
                }
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100000\r\n\r\n").await;
                let _ = tls.write_all(&[7u8; 1000]).await;
                let _ = tls.flush().await;
                // Close with the body 99,000 bytes short. (A RST here could destroy the
                // head in flight before wisegate read it.)
                drop(tls);
            });
        }
    });
    address
}

#[tokio::test]
async fn an_upstream_closing_mid_response_reaches_the_app_as_an_aborted_response() {
    let setup = Harness::builder().setup().await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let upstream = resetting_upstream(&setup.server_ca.server_cert()).await;
    let text = std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .replace(&setup.wise.mtls_url(), &format!("https://{upstream}"))
        .replace(
            "[oauth]\n",
            &format!(
                "[oauth]\ntoken_url = \"{}/oauth/token\"\n",
                setup.wise.mtls_url()
            ),
        );
    std::fs::write(&setup.config_path, text).unwrap();
    let Running { proxy, admin, .. } =
        common::serve(Config::load(&setup.config_path).unwrap()).await;

    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let response = client
        .get(format!("http://{proxy}/v1/download").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the head had arrived");
    assert_eq!(response.headers()["content-length"], "100000");
    let body = response.into_body().collect().await;
    assert!(
        body.is_err(),
        "the app sees the body break off, never a short body that looks complete"
    );
    let (ready, _) = get_at(admin, "/readyz").await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "wisegate itself is unharmed"
    );
}

#[tokio::test]
async fn an_unwritable_token_store_keeps_the_new_token_in_memory_and_says_so() {
    let h = Harness::builder().start().await;
    assert_eq!(
        h.get("/v1/me").await.0.status(),
        StatusCode::OK,
        "serving, store loaded"
    );
    // Make the store's folder unusable (a file where the folder was; root ignores modes).
    let state = h.dir.path().join("state");
    std::fs::remove_dir_all(&state).unwrap();
    std::fs::write(&state, "not a folder").unwrap();
    h.wise.invalidate_access_tokens();
    let (response, _) = h.get("/v1/me").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "refreshed and replayed all the same"
    );
    let (response, _) = h.get("/v1/me").await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the new token serves from memory"
    );
    let (ready, body) = h.admin_get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "still serving");
    let degraded = json(&body)["degraded"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        degraded.contains("cannot write the token store")
            && degraded.contains("kept in memory only"),
        "{body:?}"
    );
}

/// `limits.max_upstream_requests` bounds the requests in flight to Wise (over HTTP/1.1,
/// the connections): with the one slot held by a download the app has not read, the
/// next request waits `upstream_timeout` for it and gets 503 `upstream_busy`; once the
/// download is dropped, requests flow again.
#[tokio::test]
async fn beyond_max_upstream_requests_a_request_waits_then_gets_503_upstream_busy() {
    let limits = "[limits]\nmax_upstream_requests = 1\nupstream_timeout = \"1s\"\n";
    let h = Harness::builder().extra(limits).start().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let download = format!("http://{}/test/download?bytes={}", h.proxy, 64 << 20);
    let held = client.get(download.parse().unwrap()).await.unwrap();
    assert_eq!(
        held.status(),
        StatusCode::OK,
        "the head arrived; the body waits"
    );

    let asked = std::time::Instant::now();
    let (response, body) = h.get("/v1/me").await;
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "it waited upstream_timeout for a slot"
    );
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["x-wisegate-error"], "upstream_busy");
    let message = json(&body)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("limits.max_upstream_requests"),
        "{message}"
    );

    drop(held);
    drop(client);
    assert!(
        common::eventually(Duration::from_secs(10), async || {
            h.get("/v1/me").await.0.status() == StatusCode::OK
        })
        .await,
        "the slot is free again once the app dropped the download"
    );
    // A 401 gives its slot back before the replay: with one slot, the replay still goes.
    h.wise.invalidate_access_tokens();
    let (response, _) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK, "refreshed and replayed");
}

/// An app that hangs up while its request waits on Wise: the request no longer counts
/// as in flight (hyper drops its future, so the count must not rely on it finishing).
#[tokio::test]
async fn a_request_the_app_abandons_leaves_the_in_flight_gauge() {
    let h = Harness::builder().start().await;
    let mut stream = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    stream
        .write_all(b"GET /test/slow?ms=20000 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    common::wait_for_metric(h.admin, "wisegate_requests_in_flight", 1.0).await;
    drop(stream);
    assert!(
        common::eventually(Duration::from_secs(10), async || {
            common::metric(h.admin, "wisegate_requests_in_flight").await == 0.0
        })
        .await,
        "the abandoned request still counts as in flight"
    );
}
