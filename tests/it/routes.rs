//! Per-route modes and the rollback flag, end to end: each mode reaches its host with
//! its credential.

use crate::common;

use common::{json, Harness};
use fake_wise::HostKind;
use http::StatusCode;

const ROUTES: &str = r#"
[[route]]
name = "profile-webhooks"
path = "/v3/profiles/*/subscriptions/**"
mode = "personal_token"

[[route]]
name = "application-webhooks"
path = "/v3/applications/*/subscriptions/**"
mode = "oauth_client"
"#;

#[tokio::test]
async fn each_mode_reaches_its_host_with_its_credential() {
    let h = Harness::builder().extra(ROUTES).start().await;

    let (response, body) = h.get("/v3/profiles/12345/subscriptions").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["token_kind"], "personal");

    let (response, body) = h
        .get("/2026Q3/v3/applications/key-1/subscriptions/abc")
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["token_kind"], "app");
    assert_eq!(h.wise.token_calls().client_credentials, 1);
    let (_, body) = h.get("/v3/applications/key-1/subscriptions").await;
    assert_eq!(json(&body)["token_kind"], "app");
    assert_eq!(
        h.wise.token_calls().client_credentials,
        1,
        "the app token is reused"
    );

    let (_, body) = h.get("/v1/profiles").await;
    assert_eq!(json(&body)["token_kind"], "user");

    let hosts: Vec<HostKind> = h.wise.requests().iter().map(|r| r.host).collect();
    assert_eq!(
        hosts,
        [
            HostKind::Legacy,
            HostKind::Mtls,
            HostKind::Mtls,
            HostKind::Mtls
        ]
    );
    let legacy = &h.wise.requests()[0];
    assert_eq!(
        legacy.header("authorization"),
        Some(format!("Bearer {}", h.wise.config().personal_token).as_str())
    );
    assert_eq!(
        legacy.client_cert_der, None,
        "no client certificate towards the legacy host"
    );
}

#[tokio::test]
async fn rollback_sends_everything_the_personal_token_way() {
    let extra = format!("{ROUTES}\n[rollback]\nall = true\n");
    let h = Harness::builder().extra(extra).start().await;
    for path in ["/v1/profiles", "/v3/applications/k/subscriptions"] {
        let (response, body) = h.get(path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json(&body)["token_kind"], "personal", "{path}");
    }
    assert!(h.wise.requests().iter().all(|r| r.host == HostKind::Legacy));
    assert_eq!(h.wise.token_calls().client_credentials, 0);
}
