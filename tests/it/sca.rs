//! SCA challenges (403, `x-2fa-approval-result: REJECTED`) on every route: signed and
//! repeated once where wisegate signs (a personal-token route with `sca_key_file`), passed
//! to the app untouched everywhere else, and each counted in
//! `wisegate_sca_challenges_total{route,mode,outcome}`, whose series exist at 0 from start.

use crate::common;

use bytes::Bytes;
use common::{get_at, json, metric, send, serve, Harness, Running, Setup};
use fake_wise::FakeWiseConfig;
use http::{Request, StatusCode};
use http_body_util::Full;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use std::net::SocketAddr;
use wisegate::config::Config;

/// GET /test/sca goes the personal-token way (`statements`); other methods take the
/// default route (oauth_mtls).
const ROUTES: &str = "\n[[route]]\nname = \"statements\"\npath = \"/test/sca\"\nmethods = [\"GET\"]\nmode = \"personal_token\"\n";

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap()
}

/// fake-wise with `registered`'s public key for SCA, and wisegate signing with `signer`.
async fn start(
    registered: &rsa::RsaPrivateKey,
    signer: &rsa::RsaPrivateKey,
) -> (Setup, SocketAddr, SocketAddr) {
    let public_pem = registered
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let setup = Harness::builder()
        .fake(FakeWiseConfig {
            sca_public_key_pem: Some(public_pem),
            ..FakeWiseConfig::default()
        })
        .setup()
        .await;
    let key_pem = signer.to_pkcs8_pem(LineEnding::LF).unwrap();
    std::fs::write(setup.dir.path().join("sca.key"), key_pem.as_bytes()).unwrap();
    let text = std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .replace(
            "[personal_token]\n",
            "[personal_token]\nsca_key_file = \"sca.key\"\n",
        )
        + ROUTES;
    std::fs::write(&setup.config_path, text).unwrap();
    let config = Config::load(&setup.config_path).unwrap();
    common::authorize_with_code(&config, &setup.wise).await;
    let Running { proxy, admin, .. } = serve(config).await;
    (setup, proxy, admin)
}

fn sample(route: &str, mode: &str, outcome: &str) -> String {
    format!(
        "wisegate_sca_challenges_total{{route=\"{route}\",mode=\"{mode}\",outcome=\"{outcome}\"}}"
    )
}

async fn challenges(admin: SocketAddr, route: &str, mode: &str, outcome: &str) -> f64 {
    metric(admin, &sample(route, mode, outcome)).await
}

#[tokio::test]
async fn challenges_are_signed_where_wisegate_signs_and_passed_to_the_app_elsewhere() {
    let key = rsa_key();
    let (setup, proxy, admin) = start(&key, &key).await;
    let (_, body) = get_at(admin, "/metrics").await;
    let text = String::from_utf8_lossy(&body);
    for (route, mode, outcome) in [
        ("statements", "personal_token", "signed"),
        ("statements", "personal_token", "passed_to_app"),
        ("default", "oauth_mtls", "passed_to_app"),
        ("default", "personal_token", "passed_to_app"),
        ("default", "personal_token", "signed"),
    ] {
        let line = format!("{} 0", sample(route, mode, outcome));
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }

    // Signed and repeated on the personal-token route.
    let (response, body) = get_at(proxy, "/test/sca").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["sca"], "approved");
    assert_eq!(
        challenges(admin, "statements", "personal_token", "signed").await,
        1.0
    );

    // An OAuth route: the challenge reaches the app as Wise sent it, with no repeat.
    setup.wise.clear_requests();
    let post = Request::post(format!("http://{proxy}/test/sca"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (response, body) = send(post).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body:?}");
    assert_eq!(response.headers()["x-2fa-approval-result"], "REJECTED");
    let one_time = response.headers()["x-2fa-approval"].to_str().unwrap();
    assert_eq!(one_time.len(), 36, "the one-time token as Wise sent it");
    assert_eq!(json(&body)["error"], "sca_required");
    let seen = setup.wise.requests();
    assert_eq!(seen.len(), 1, "no repeat on an OAuth route");
    assert!(seen[0].header("x-signature").is_none());
    assert_eq!(
        challenges(admin, "default", "oauth_mtls", "passed_to_app").await,
        1.0
    );

    // An app that signs by itself on the personal-token route is left alone.
    let own = Request::get(format!("http://{proxy}/test/sca"))
        .header("x-2fa-approval", "the-apps-own-token")
        .header("x-signature", "the-apps-own-signature")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, _) = send(own).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenges(admin, "statements", "personal_token", "passed_to_app").await,
        1.0
    );
    assert_eq!(
        challenges(admin, "statements", "personal_token", "signed").await,
        1.0,
        "nothing more was signed"
    );
}

/// A key Wise does not know: wisegate signs, Wise challenges the repeat again, and that
/// second challenge reaches the app. Both count, which is what the alert
/// `WisegateScaSigningRefused` looks for.
#[tokio::test]
async fn a_signature_wise_refuses_counts_as_signed_and_as_passed_to_the_app() {
    let (setup, proxy, admin) = start(&rsa_key(), &rsa_key()).await;
    let (response, _) = get_at(proxy, "/test/sca").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["x-2fa-approval-result"], "REJECTED");
    let statuses: Vec<u16> = setup.wise.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 403], "signed and repeated once, no more");
    for outcome in ["signed", "passed_to_app"] {
        assert_eq!(
            challenges(admin, "statements", "personal_token", outcome).await,
            1.0,
            "{outcome}"
        );
    }
}
