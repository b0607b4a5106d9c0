//! Several Wise users on one double: each user's own token lineage, the echo and the
//! record saying whose token arrived on both hosts, and the authorize page's `?user=`.

mod common;

use common::{get, send, start, token_request, Env};
use fake_wise::{FakeUser, FakeWise, FakeWiseConfig, ReuseCounts, TestCa};
use http::StatusCode;

fn two_users(config: FakeWiseConfig) -> FakeWiseConfig {
    FakeWiseConfig {
        users: vec![FakeUser::new("uk-ltd"), FakeUser::new("us-inc")],
        ..config
    }
}

/// Exchanges `code`; returns (access token, refresh token).
async fn exchange(env: &Env, code: &str) -> (String, String) {
    let cfg = env.fake.config();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", cfg.redirect_uri.as_str()),
    ];
    let answer = env.mtls(token_request(cfg, "/oauth/token", &form)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    let field = |name: &str| json[name].as_str().unwrap().to_owned();
    (field("access_token"), field("refresh_token"))
}

/// Refreshes; returns the status and the token response.
async fn refresh(env: &Env, refresh_token: &str) -> (StatusCode, serde_json::Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let answer = env
        .mtls(token_request(env.fake.config(), "/oauth/token", &form))
        .await;
    (answer.status, answer.json())
}

/// The status of an API call with this access token, and the echo's `user`.
async fn call(env: &Env, token: &str) -> (StatusCode, serde_json::Value) {
    let answer = env.mtls(get("/v1/profiles", Some(token))).await;
    (answer.status, answer.json()["user"].clone())
}

#[tokio::test]
async fn a_refresh_and_a_reuse_touch_only_their_own_lineage() {
    let env = start(two_users(FakeWiseConfig {
        rotate_refresh_token: true,
        revoke_grant_on_reuse: true,
        ..FakeWiseConfig::default()
    }))
    .await;
    let (uk_access, uk_refresh) = exchange(&env, &env.fake.issue_code_for("uk-ltd")).await;
    let (us_access, us_refresh) = exchange(&env, &env.fake.issue_code_for("us-inc")).await;
    assert_eq!(
        env.fake.current_access_token_for("uk-ltd"),
        Some(uk_access.clone())
    );
    assert_eq!(
        env.fake.current_access_token_for("us-inc"),
        Some(us_access.clone())
    );
    assert_eq!(
        env.fake.current_access_token(),
        Some(uk_access.clone()),
        "first user"
    );

    let (status, renewed) = refresh(&env, &uk_refresh).await;
    assert_eq!(status, StatusCode::OK);
    let uk_new = renewed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&env, &uk_access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&env, &uk_new).await, (StatusCode::OK, "uk-ltd".into()));
    assert_eq!(
        call(&env, &us_access).await,
        (StatusCode::OK, "us-inc".into())
    );

    // uk-ltd's spent refresh token comes back: only uk-ltd's grant dies.
    assert_eq!(refresh(&env, &uk_refresh).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(call(&env, &uk_new).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(env.fake.current_access_token_for("uk-ltd"), None);
    assert_eq!(
        call(&env, &us_access).await,
        (StatusCode::OK, "us-inc".into())
    );
    let (status, us_renewed) = refresh(&env, &us_refresh).await;
    assert_eq!(status, StatusCode::OK, "us-inc's grant lives: {us_renewed}");
    let revoked_once = ReuseCounts {
        spent_refresh_tokens_presented: 1,
        grants_revoked: 1,
    };
    assert_eq!(env.fake.reuse_for("uk-ltd"), revoked_once);
    assert_eq!(env.fake.reuse_for("us-inc"), ReuseCounts::default());
    assert_eq!(env.fake.reuse(), revoked_once, "the sum of the lineages");
}

#[tokio::test]
async fn revoking_or_invalidating_one_user_leaves_the_others() {
    let env = start(two_users(FakeWiseConfig::default())).await;
    let (uk_access, uk_refresh) = exchange(&env, &env.fake.issue_code_for("uk-ltd")).await;
    let (us_access, us_refresh) = exchange(&env, &env.fake.issue_code_for("us-inc")).await;

    env.fake.revoke_grant_for("us-inc");
    assert_eq!(call(&env, &us_access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(&env, &us_refresh).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        call(&env, &uk_access).await,
        (StatusCode::OK, "uk-ltd".into())
    );
    let (status, _) = refresh(&env, &uk_refresh).await;
    assert_eq!(status, StatusCode::OK);

    let uk_current = env.fake.current_access_token_for("uk-ltd").unwrap();
    let (us_again, _) = exchange(&env, &env.fake.issue_code_for("us-inc")).await;
    env.fake.invalidate_access_tokens_for("uk-ltd");
    assert_eq!(call(&env, &uk_current).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&env, &us_again).await,
        (StatusCode::OK, "us-inc".into())
    );
    assert_eq!(env.fake.current_access_token_for("nobody"), None);
}

#[tokio::test]
async fn the_echo_and_the_record_say_whose_token_arrived_on_both_hosts() {
    let env = start(two_users(FakeWiseConfig::default())).await;
    let users = env.fake.users().to_vec();
    assert_ne!(users[0].profile_id, users[1].profile_id);
    assert_ne!(users[0].personal_token, users[1].personal_token);
    let (uk_access, _) = exchange(&env, &env.fake.issue_code_for("uk-ltd")).await;
    assert_eq!(call(&env, &uk_access).await.1, "uk-ltd");
    let form = [("grant_type", "client_credentials")];
    let app = env
        .mtls(token_request(env.fake.config(), "/oauth/token", &form))
        .await
        .json();
    let (status, user) = call(&env, app["access_token"].as_str().unwrap()).await;
    assert_eq!((status, user), (StatusCode::OK, serde_json::Value::Null));

    for user in &users {
        let answer = env
            .legacy(get("/v1/profiles", Some(&user.personal_token)))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        let echo = answer.json();
        assert_eq!(
            (echo["token_kind"].as_str(), echo["user"].as_str()),
            (Some("personal"), Some(user.name.as_str()))
        );
    }
    let refused = env.legacy(get("/v1/profiles", Some("nope"))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let recorded: Vec<Option<String>> = env.fake.requests().into_iter().map(|r| r.user).collect();
    let name = |n: &str| Some(n.to_owned());
    assert_eq!(
        recorded,
        [name("uk-ltd"), None, name("uk-ltd"), name("us-inc"), None]
    );
    assert!(
        !format!("{users:?}").contains(&users[0].personal_token),
        "Debug hides it"
    );
}

#[tokio::test]
async fn without_users_the_one_user_is_default() {
    let env = start(FakeWiseConfig::default()).await;
    let cfg = env.fake.config().clone();
    let names: Vec<&str> = env.fake.users().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["default"]);
    assert_eq!(env.fake.users()[0].profile_id, cfg.profile_id);
    let (access, _) = exchange(&env, &env.fake.issue_code_for("default")).await;
    assert_eq!(call(&env, &access).await.1, "default");
    let echo = env
        .legacy(get("/v1/profiles", Some(&cfg.personal_token)))
        .await
        .json();
    assert_eq!(echo["user"], "default");
}

/// The authorize page's redirect for this query: (status, query parameters or body).
async fn authorize_page(env: &Env, user: Option<&str>) -> (StatusCode, String) {
    let cfg = env.fake.config();
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &cfg.redirect_uri);
    if let Some(user) = user {
        query.append_pair("user", user);
    }
    let url = format!("{}?{}", env.fake.authorize_url(), query.finish());
    let path = &url[url.find("/oauth").unwrap()..];
    let answer = send(&url, None, get(path, None)).await.unwrap();
    let text = match answer.headers.get("location") {
        Some(location) => location
            .to_str()
            .unwrap()
            .split_once('?')
            .unwrap()
            .1
            .to_owned(),
        None => String::from_utf8_lossy(&answer.body).into_owned(),
    };
    (answer.status, text)
}

fn param(query: &str, name: &str) -> String {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn the_authorize_page_approves_as_the_named_user() {
    let env = start(two_users(FakeWiseConfig::default())).await;
    let users = env.fake.users().to_vec();
    for (user, expected) in [(Some("us-inc"), &users[1]), (None, &users[0])] {
        let (status, query) = authorize_page(&env, user).await;
        assert_eq!(status, StatusCode::FOUND, "{query}");
        assert_eq!(param(&query, "profileId"), expected.profile_id.to_string());
        let (access, _) = exchange(&env, &param(&query, "code")).await;
        assert_eq!(call(&env, &access).await.1, expected.name.as_str());
    }

    let (status, body) = authorize_page(&env, Some("nobody")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("\"nobody\"") && body.contains("\"uk-ltd\", \"us-inc\""),
        "{body}"
    );
}

#[tokio::test]
async fn repeated_user_names_or_tokens_are_refused_at_start() {
    let ca = TestCa::new("fake-wise test CA");
    let first = FakeUser::new("a");
    let config = FakeWiseConfig {
        users: vec![
            first.clone(),
            FakeUser::new("a"),
            FakeUser {
                name: "b".to_owned(),
                ..first.clone()
            },
        ],
        ..FakeWiseConfig::default()
    };
    let error = FakeWise::start(config, &ca.server_cert(), &ca.cert_pem())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    let message = error.to_string();
    assert!(
        message.contains("users[1]: the name \"a\" is taken"),
        "{message}"
    );
    assert!(
        message.contains("users[2] (\"b\") has the personal token"),
        "{message}"
    );
    assert!(!message.contains(&first.personal_token), "{message}");
}
