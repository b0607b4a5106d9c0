//! Access tokens of JWE size and shape (five base64url segments, 500-800+ characters),
//! as Wise's client-credentials tokens are becoming and user tokens may follow: each
//! path carries them whole. What reached fake-wise is compared with what it issued, over
//! an HTTP/1.1 and an HTTP/2 upstream, through the 401 replay, the file store across a
//! restart, the Redis store between replicas, and `Debug` output holds none of them.

use crate::common;

use common::redis_server::RedisServer;
use common::{get_at, serve, Harness, Running};
use fake_wise::{FakeWise, FakeWiseConfig, HostKind, HttpVersions, TokenShape};
use http::StatusCode;
use std::net::SocketAddr;
use wisegate::config::Config;

/// Client-credentials tokens a little past Wise's announced range, user tokens inside it.
const APP_TOKEN_LENGTH: usize = 900;
const USER_TOKEN_LENGTH: usize = 640;

/// `[[route]]` for the client-credentials token.
const APP_ROUTE: &str = "\n[[route]]\nname = \"applications\"\npath = \"/v3/applications/**\"\nmode = \"oauth_client\"\n";

fn long_tokens(versions: HttpVersions) -> FakeWiseConfig {
    FakeWiseConfig {
        app_token_shape: TokenShape::Jwe(APP_TOKEN_LENGTH),
        user_token_shape: TokenShape::Jwe(USER_TOKEN_LENGTH),
        http_versions: versions,
        ..FakeWiseConfig::default()
    }
}

/// The bearer token of the last API request that reached the mTLS host.
fn last_bearer(wise: &FakeWise) -> String {
    let requests = wise.requests();
    let last = requests
        .iter()
        .rev()
        .find(|r| r.host == HostKind::Mtls)
        .expect("a request reached the mTLS host");
    let value = last.header("authorization").expect("a bearer token");
    value
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a bearer token: {} characters", value.len()))
        .to_owned()
}

/// `GET path` answered 200, and the exact `expected` token reached Wise.
async fn arrives_whole(proxy: SocketAddr, wise: &FakeWise, path: &str, expected: &str) {
    let (response, body) = get_at(proxy, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}: {body:?}");
    let arrived = last_bearer(wise);
    assert!(
        arrived == expected,
        "{path}: {} characters arrived for a token of {}",
        arrived.len(),
        expected.len()
    );
}

#[tokio::test]
async fn long_tokens_arrive_whole_over_http1_and_http2_and_through_the_replay() {
    for versions in [HttpVersions::Http1Only, HttpVersions::Http2Only] {
        let h = Harness::builder()
            .extra(APP_ROUTE)
            .fake(long_tokens(versions))
            .start()
            .await;
        let user = h.wise.current_access_token().unwrap();
        assert_eq!(user.len(), USER_TOKEN_LENGTH);
        arrives_whole(h.proxy, &h.wise, "/v1/me", &user).await;
        let version = h.wise.requests()[0].http_version.clone();
        assert_eq!(
            version,
            if versions == HttpVersions::Http1Only {
                "HTTP/1.1"
            } else {
                "HTTP/2.0"
            }
        );
        // The client-credentials token is fetched on the first request that needs it.
        let (response, _) = get_at(h.proxy, "/v3/applications/7/subscriptions").await;
        assert_eq!(response.status(), StatusCode::OK);
        let app = h.wise.current_app_token().unwrap();
        assert_eq!(app.len(), APP_TOKEN_LENGTH);
        assert!(last_bearer(&h.wise) == app, "the app token arrived whole");

        // A 401: refreshed, and the replay carries the new long token whole.
        h.wise.invalidate_access_tokens();
        let (response, _) = get_at(h.proxy, "/v1/me").await;
        assert_eq!(response.status(), StatusCode::OK, "{versions:?}");
        let refreshed = h.wise.current_access_token().unwrap();
        assert_ne!(refreshed, user);
        assert_eq!(last_bearer(&h.wise), refreshed, "{versions:?}");
        assert_eq!(h.wise.token_calls().refresh_token, 1);

        // The file store holds it whole: a restart serves with it, no token call.
        h.shutdown.cancel();
        h.task.await.unwrap().unwrap();
        let stored: serde_json::Value =
            serde_json::from_slice(&std::fs::read(h.dir.path().join("state/tokens.json")).unwrap())
                .unwrap();
        assert!(stored["access_token"] == refreshed.as_str(), "stored whole");
        let calls = h.wise.token_calls();
        let Running { proxy, .. } = serve(Config::load(&h.config_path).unwrap()).await;
        arrives_whole(proxy, &h.wise, "/v1/me", &refreshed).await;
        assert_eq!(h.wise.token_calls().refresh_token, calls.refresh_token);
        assert_eq!(h.wise.token_calls().authorization_code, 1);
    }
}

/// Two replicas on one Redis store: the second takes up the first one's refreshed long
/// token from Redis after its own 401, with no second refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tokens_go_whole_through_the_redis_store() {
    let redis = RedisServer::start(None).await;
    let setup = common::Harness::builder()
        .fake(long_tokens(HttpVersions::Both))
        .setup()
        .await;
    let text = std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .replace(
            "token_store = \"state/tokens.json\"",
            &format!("token_store = \"{}\"", redis.url()),
        );
    std::fs::write(&setup.config_path, text).unwrap();
    let config = Config::load(&setup.config_path).unwrap();
    common::authorize_with_code(&config, &setup.wise).await;
    let Running { proxy: first, .. } = serve(config.clone()).await;
    let Running { proxy: second, .. } = serve(config).await;
    let user = setup.wise.current_access_token().unwrap();
    arrives_whole(second, &setup.wise, "/v1/me", &user).await;

    setup.wise.invalidate_access_tokens();
    let (response, _) = get_at(first, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed = setup.wise.current_access_token().unwrap();
    assert_eq!(refreshed.len(), USER_TOKEN_LENGTH);
    assert_eq!(last_bearer(&setup.wise), refreshed);
    arrives_whole(second, &setup.wise, "/v1/me", &refreshed).await;
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        1,
        "one refresh for both replicas"
    );
}

/// The types that hold tokens print none of them: no 16-character piece of a long token
/// is in the `Debug` output of the token manager, the stored lineage or the bearer.
#[tokio::test]
async fn debug_output_holds_no_piece_of_a_long_token() {
    let setup = common::Harness::builder()
        .fake(long_tokens(HttpVersions::Both))
        .setup()
        .await;
    let config = Config::load(&setup.config_path).unwrap();
    common::authorize_with_code(&config, &setup.wise).await;
    let resolver = wisegate::assembly::load_identity(&config).unwrap();
    let manager = wisegate::assembly::token_manager(&config, &resolver)
        .await
        .unwrap();
    let bearer = manager.client_bearer().await.unwrap();
    let lineage = wisegate::assembly::token_store(&config)
        .unwrap()
        .load()
        .await
        .unwrap();
    let user = manager.user_bearer().unwrap();
    let status = manager.status();
    let printed = format!("{manager:?} {lineage:?} {bearer:?} {user:?} {status:?} {lineage:#?}");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.dir.path().join("state/tokens.json")).unwrap())
            .unwrap();
    let secrets = [
        setup.wise.current_access_token().unwrap(),
        setup.wise.current_app_token().unwrap(),
        stored["refresh_token"].as_str().unwrap().to_owned(),
    ];
    assert_eq!(
        secrets[1].len(),
        APP_TOKEN_LENGTH,
        "the app token was fetched"
    );
    common::assert_no_piece_of(&secrets, &printed);
    // The check itself catches a piece cut from the middle of a token.
    let leaked = format!("{printed} …{}…", &secrets[1][300..316]);
    let caught = std::panic::catch_unwind(|| common::assert_no_piece_of(&secrets, &leaked));
    assert!(caught.is_err(), "a leaked piece is caught");
}
