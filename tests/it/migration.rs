//! Migration safety, end to end: shadow comparison, automatic fallback with a breaker,
//! SCA signing on the personal-token path.

use crate::common;

use bytes::Bytes;
use common::{
    authorize_with_code, get_at, json, metric, send, serve, wait_for_metric, Harness, Running,
    Setup,
};
use fake_wise::{FakeWiseConfig, HostKind};
use http::{Request, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use wisegate::config::Config;

#[tokio::test]
async fn a_shadowed_get_reaches_both_hosts_while_a_post_reaches_one() {
    let extra = "[[route]]\nname = \"profiles\"\npath = \"/v1/profiles/**\"\nshadow = true\n";
    let h = Harness::builder().extra(extra).start().await;
    let (response, body) = h.get("/v1/profiles/1?x=1").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json(&body)["host"],
        "mtls",
        "the app gets the primary answer"
    );
    wait_for_metric(
        h.admin,
        "wisegate_shadow_total{route=\"profiles\",result=\"match\"}",
        1.0,
    )
    .await;
    let seen = h.wise.requests();
    let legacy: Vec<_> = seen.iter().filter(|r| r.host == HostKind::Legacy).collect();
    assert_eq!(legacy.len(), 1);
    assert_eq!(legacy[0].path_and_query, "/v1/profiles/1?x=1");
    assert_eq!(
        legacy[0].header("authorization"),
        Some(format!("Bearer {}", h.wise.config().personal_token).as_str())
    );

    h.wise.clear_requests();
    let post = Request::post(h.url("/v1/profiles/1"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    assert_eq!(send(post).await.0.status(), StatusCode::OK);
    let (_, _) = h.get("/v1/other").await; // a later request, so a stray copy would have shown
    let hosts: Vec<HostKind> = h.wise.requests().iter().map(|r| r.host).collect();
    assert_eq!(
        hosts,
        [HostKind::Mtls, HostKind::Mtls],
        "POSTs are never shadowed"
    );
}

/// A `transfers` route with `fallback = true` (1 s cool-down) while Wise rejects the client
/// certificate; returns the setup, the listeners and the good certificate pair.
async fn rejected_certificate_with_fallback() -> (Setup, SocketAddr, SocketAddr, (Vec<u8>, Vec<u8>))
{
    let setup = Harness::builder().setup().await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let dir = setup.dir.path();
    let good = (
        std::fs::read(dir.join("client.crt")).unwrap(),
        std::fs::read(dir.join("client.key")).unwrap(),
    );
    let stranger = fake_wise::TestCa::new("not Wise's CA").client_cert("Acme");
    std::fs::write(dir.join("client.crt"), &stranger.cert_pem).unwrap();
    std::fs::write(dir.join("client.key"), &stranger.key_pem).unwrap();
    let route = "\n[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nfallback_cooldown = \"1s\"\n";
    std::fs::write(
        &setup.config_path,
        std::fs::read_to_string(&setup.config_path).unwrap() + route,
    )
    .unwrap();
    let Running { proxy, admin, .. } = serve(Config::load(&setup.config_path).unwrap()).await;
    (setup, proxy, admin, good)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_takes_over_when_the_certificate_is_rejected_and_gives_way_when_fixed() {
    let (setup, proxy, admin, good) = rejected_certificate_with_fallback().await;
    let dir = setup.dir.path();

    // PUT: idempotent, so even a connection that broke before an answer (a way TLS 1.3
    // can report the rejected certificate) may fall back.
    let put = |n: u32| {
        Request::put(format!("http://{proxy}/v1/transfers/{n}"))
            .body(Full::new(Bytes::from(format!("{{\"n\":{n}}}"))))
            .unwrap()
    };
    for n in 0..5 {
        let (response, body) = send(put(n)).await;
        assert_eq!(response.status(), StatusCode::OK, "{body:?}");
        assert_eq!(
            json(&body)["token_kind"],
            "personal",
            "PUT {n} went the personal-token way"
        );
        assert_eq!(json(&body)["body_len"], format!("{{\"n\":{n}}}").len());
    }
    // A rejected certificate shows as the TLS alert, as the connection closing before the
    // request was sent, or as the connection breaking (broken pipe) when the alert is lost.
    let mut rejected = 0.0;
    for reason in ["client_certificate", "connect", "connection_lost"] {
        let sample = format!("wisegate_fallback_total{{route=\"transfers\",reason=\"{reason}\"}}");
        rejected += metric(admin, &sample).await;
    }
    assert_eq!(rejected, 3.0);
    assert_eq!(
        metric(
            admin,
            "wisegate_fallback_total{route=\"transfers\",reason=\"circuit_open\"}"
        )
        .await,
        2.0,
        "after 3 failures no more attempts"
    );

    // Fixed: the trusted certificate is back; after the cool-down a probe finds mTLS working.
    std::fs::write(dir.join("client.key.new"), &good.1).unwrap();
    std::fs::write(dir.join("client.crt.new"), &good.0).unwrap();
    std::fs::rename(dir.join("client.key.new"), dir.join("client.key")).unwrap();
    std::fs::rename(dir.join("client.crt.new"), dir.join("client.crt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, body) = get_at(proxy, "/v1/transfers/status").await;
        if json(&body)["token_kind"] == "user" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the route never went back to mTLS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, body) = send(put(9)).await;
    assert_eq!(json(&body)["token_kind"], "user");
}

#[tokio::test]
async fn an_sca_challenge_is_signed_verified_and_replayed_once() {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let fake = FakeWiseConfig {
        sca_public_key_pem: Some(public_pem),
        ..FakeWiseConfig::default()
    };
    let setup = Harness::builder().fake(fake).setup().await;
    let dir = setup.dir.path();
    std::fs::write(
        dir.join("sca.key"),
        key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .replace(
            "[personal_token]\n",
            "[personal_token]\nsca_key_file = \"sca.key\"\n",
        )
        + "\n[[route]]\nname = \"statements\"\npath = \"/test/sca\"\nmode = \"personal_token\"\n"
        // One upstream slot: the challenge must give it back before the signed repeat.
        + "\n[limits]\nmax_upstream_requests = 1\nupstream_timeout = \"5s\"\n";
    std::fs::write(&setup.config_path, text).unwrap();
    let Running { proxy, .. } = serve(Config::load(&setup.config_path).unwrap()).await;

    let (response, body) = get_at(proxy, "/test/sca").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["sca"], "approved");
    let seen = setup.wise.requests();
    let statuses: Vec<u16> = seen.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 200], "challenged once, replayed once");
    assert!(seen[1].header("x-signature").is_some() && seen[1].header("x-2fa-approval").is_some());

    // An app that signs by itself is left alone: its headers pass untouched, no replay.
    setup.wise.clear_requests();
    let own = Request::get(format!("http://{proxy}/test/sca"))
        .header("x-2fa-approval", "the-apps-own-token")
        .header("x-signature", "the-apps-own-signature")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, _) = send(own).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["x-2fa-approval-result"], "REJECTED");
    let seen = setup.wise.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("x-signature"),
        Some("the-apps-own-signature")
    );
}

/// Requests whose body streams (over 64 KiB) cannot fall back, but their failures still
/// count: after three, the breaker is open and the next request goes the personal-token
/// way at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_bodies_that_cannot_fall_back_still_open_the_breaker() {
    let (_setup, proxy, admin, _) = rejected_certificate_with_fallback().await;
    for _ in 0..3 {
        let large = Request::put(format!("http://{proxy}/v1/transfers/big"))
            .body(Full::new(Bytes::from(vec![b'x'; 100_000])))
            .unwrap();
        let (response, body) = send(large).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{body:?}");
    }
    let (response, body) = get_at(proxy, "/v1/transfers/status").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(&body)["token_kind"], "personal");
    assert_eq!(
        metric(
            admin,
            "wisegate_fallback_total{route=\"transfers\",reason=\"circuit_open\"}"
        )
        .await,
        1.0,
        "the breaker opened on the streamed failures"
    );
}
