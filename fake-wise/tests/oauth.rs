//! The token endpoint and the authorize page, over real TLS on 127.0.0.1.

mod common;

use common::{basic, get, send, start, token_request};
use fake_wise::{FakeWiseConfig, TokenEndpointMode, TokenShape};
use http::{Request, StatusCode};

#[tokio::test]
async fn a_code_is_single_use() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let code = env.fake.issue_code();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", cfg.redirect_uri.as_str()),
    ];
    let first = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(first.status, StatusCode::OK);
    let json = first.json();
    assert_eq!(json["token_type"], "bearer");
    assert_eq!(json["expires_in"], 43199);
    assert_eq!(json["scope"], "transfers");
    assert!(json["refresh_token"].is_string());
    assert!(json["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(json["access_token"].as_str().unwrap().len(), 36);
    assert!(first.headers.contains_key("x-trace-id"));

    let again = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["error"], "invalid_grant");

    let calls = env.fake.token_calls();
    assert_eq!((calls.authorization_code, calls.failed), (1, 1));
    assert_eq!(
        env.fake.current_access_token().as_deref(),
        json["access_token"].as_str()
    );
}

#[tokio::test]
async fn refresh_invalidates_the_previous_access_token() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let first = env.authorize().await;
    let old = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let ok = env
        .mtls(get("/v1/authenticated/playground", Some(&old)))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["message"], "ok");

    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let answer = env
        .mtls(token_request(&cfg, "/2026Q3/oauth/token", &form))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let new = answer.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.json()["refresh_token"].as_str(),
        Some(refresh.as_str())
    );

    let denied = env.mtls(get("/v1/profiles", Some(&old))).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denied.json()["error"], "invalid_token");
    let echo = env.mtls(get("/v1/profiles?x=1", Some(&new))).await;
    assert_eq!(echo.status, StatusCode::OK);
    assert_eq!(echo.json()["token_kind"], "user");
    assert_eq!(echo.json()["path_and_query"], "/v1/profiles?x=1");

    env.fake.revoke_grant();
    let revoked = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(revoked.json()["error"], "invalid_grant");
    assert_eq!(env.fake.token_calls().refresh_token, 1);
}

#[tokio::test]
async fn rotation_and_expiry() {
    let config = FakeWiseConfig {
        rotate_refresh_token: true,
        access_token_lifetime: std::time::Duration::from_millis(300),
        ..FakeWiseConfig::default()
    };
    let env = start(config).await;
    let cfg = env.fake.config().clone();
    let first = env.authorize().await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let second = env
        .mtls(token_request(&cfg, "/oauth/token", &form))
        .await
        .json();
    assert_ne!(second["refresh_token"].as_str(), Some(refresh));
    let stale = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(stale.json()["error"], "invalid_grant");

    let token = second["access_token"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(env.fake.current_access_token(), None);
    let expired = env.mtls(get("/v1/x", Some(token))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn invalid_client_on_bad_basic_auth() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    for auth in [
        Some(basic(&cfg.client_id, "wrong")),
        Some("Basic !!!".into()),
        None,
    ] {
        let mut req = token_request(
            &cfg,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
        );
        match auth {
            Some(a) => req
                .headers_mut()
                .insert("authorization", a.parse().unwrap()),
            None => req.headers_mut().remove("authorization"),
        };
        let answer = env.mtls(req).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.json()["error"], "invalid_client");
        assert_eq!(
            answer.json()["error_description"],
            "Client authentication failed"
        );
    }
    let bad = env
        .mtls(token_request(
            &cfg,
            "/oauth/token",
            &[("grant_type", "password")],
        ))
        .await;
    assert_eq!(bad.json()["error"], "invalid_request");
    assert_eq!(env.fake.token_calls().failed, 4);
}

#[tokio::test]
async fn client_credentials_give_an_app_token_without_refresh_token() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let form = [("grant_type", "client_credentials")];
    let json = env
        .mtls(token_request(&cfg, "/oauth/token", &form))
        .await
        .json();
    assert!(json.get("refresh_token").is_none());
    let echo = env
        .mtls(get(
            "/v3/applications/x/subscriptions",
            json["access_token"].as_str(),
        ))
        .await;
    assert_eq!(echo.json()["token_kind"], "app");
    assert_eq!(env.fake.current_access_token(), None);
}

/// JWE-shaped tokens of the configured lengths, for both kinds, accepted as they came.
#[tokio::test]
async fn tokens_can_be_long_jwe_strings_of_either_kind() {
    let env = start(FakeWiseConfig {
        app_token_shape: TokenShape::Jwe(812),
        user_token_shape: TokenShape::Jwe(640),
        ..FakeWiseConfig::default()
    })
    .await;
    let cfg = env.fake.config().clone();
    let app = env
        .mtls(token_request(
            &cfg,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
        ))
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!((app.len(), app.split('.').count()), (812, 5));
    assert_eq!(env.fake.current_app_token().as_deref(), Some(app.as_str()));
    let code = env.fake.issue_code();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", cfg.redirect_uri.as_str()),
    ];
    let user = env
        .mtls(token_request(&cfg, "/oauth/token", &form))
        .await
        .json();
    let user = user["access_token"].as_str().unwrap().to_owned();
    assert_eq!((user.len(), user.split('.').count()), (640, 5));
    for (token, kind) in [(app, "app"), (user, "user")] {
        let echo = env.mtls(get("/v1/me", Some(&token))).await;
        assert_eq!(echo.json()["token_kind"], kind);
    }
}

#[tokio::test]
async fn token_endpoint_failure_modes() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let form = [("grant_type", "client_credentials")];
    env.fake.set_token_endpoint(TokenEndpointMode::Unavailable);
    let a = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.json()["error"].is_string());
    env.fake.set_token_endpoint(TokenEndpointMode::Garbage);
    let a = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(
        (a.status, &a.body[..]),
        (StatusCode::OK, &b"<html>oops</html>"[..])
    );
    env.fake.set_token_endpoint(TokenEndpointMode::Empty);
    let a = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!((a.status, a.body.len()), (StatusCode::OK, 0));

    env.fake
        .set_token_endpoint(TokenEndpointMode::Slow(std::time::Duration::from_millis(
            200,
        )));
    let req = || env.mtls(token_request(&cfg, "/oauth/token", &form));
    let (a, b, c) = tokio::join!(req(), req(), req());
    for answer in [a, b, c] {
        assert_eq!(answer.status, StatusCode::OK);
    }
    let counts = env.fake.token_calls();
    assert_eq!((counts.failed, counts.client_credentials), (3, 3));
    assert_eq!(counts.max_concurrent, 3);
}

#[tokio::test]
async fn authorize_page_redirects_with_code_state_and_profile_id() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("state", "a b&c")
        .finish();
    let url = format!("{}?{query}", env.fake.authorize_url());
    let path = &url[url.find("/oauth").unwrap()..];
    let answer = send(&url, None, get(path, None)).await.unwrap();
    assert_eq!(answer.status, StatusCode::FOUND);
    let location = answer.headers["location"].to_str().unwrap();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, cfg.redirect_uri);
    let params: std::collections::HashMap<String, String> =
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["state"], "a b&c");
    assert_eq!(params["profileId"], "12345");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", cfg.redirect_uri.as_str()),
    ];
    let tokens = env.mtls(token_request(&cfg, "/oauth/token", &form)).await;
    assert_eq!(tokens.status, StatusCode::OK);

    let wrong = format!(
        "/oauth/authorize/?client_id={}&redirect_uri=http://evil",
        cfg.client_id
    );
    let req = Request::get(wrong).body(Default::default()).unwrap();
    let answer = send(&url, None, req).await.unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&answer.body).contains("redirect_uri"));
}
