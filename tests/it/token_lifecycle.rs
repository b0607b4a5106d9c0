//! The OAuth token lifecycle against fake-wise issuing short-lived tokens that invalidate
//! their predecessors: refresh ahead of expiry with one call per lifetime under load,
//! refresh-and-replay after a forced invalidation, sequential 401s that refresh at most
//! once per `limits.min_refresh_interval_on_401`, restart from the store, token endpoint
//! down then back, revoked grant.

use crate::common;

use bytes::Bytes;
use common::{eventually, get_at, json, send, serve, Harness, HarnessBuilder};
use fake_wise::{FakeWiseConfig, TokenEndpointMode};
use http::{Request, StatusCode};
use http_body_util::Full;
use std::time::{Duration, Instant};
use wisegate::config::{Accounts, Config, TokenStoreConfig};

fn short_lived(seconds: u64) -> HarnessBuilder {
    Harness::builder().fake(FakeWiseConfig {
        access_token_lifetime: Duration::from_secs(seconds),
        ..FakeWiseConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_load_over_several_lifetimes_sees_only_200s_and_one_refresh_each() {
    let h = short_lived(2).start().await;
    let started = Instant::now();
    let run_for = Duration::from_millis(4500);
    let mut clients = Vec::new();
    for client in 0..8 {
        let url = h.url(&format!("/v1/balances?client={client}"));
        clients.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while started.elapsed() < run_for {
                let (response, _) =
                    send(Request::get(&url).body(Full::new(Bytes::new())).unwrap()).await;
                statuses.push(response.status());
            }
            statuses
        }));
    }
    let mut total = 0;
    for client in clients {
        let statuses = client.await.unwrap();
        total += statuses.len();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
    }
    let calls = h.wise.token_calls();
    assert!(total > 50, "load was applied ({total} requests)");
    assert_eq!(calls.max_concurrent, 1, "never two token calls at once");
    // Tokens live 2 s and are refreshed at half-life: 4.5 s hold 4 refreshes, give or
    // take the one in progress at the end; never more. At least 2, one per lifetime, or
    // the clients would have met an expired token (a slow machine refreshes no less).
    assert!((2..=5).contains(&calls.refresh_token), "{calls:?}");
    // A refresh invalidates the previous token at once, so a request in flight at that
    // instant meets 401 at Wise and is replayed: at most one per client per refresh.
    let rejected = h.wise.requests().iter().filter(|r| r.status == 401).count() as u64;
    assert!(rejected <= 8 * calls.refresh_token, "{rejected} rejected");
}

#[tokio::test]
async fn a_forced_invalidation_is_absorbed_by_refresh_and_replay() {
    let h = Harness::builder().start().await;
    assert_eq!(h.get("/v1/me").await.0.status(), StatusCode::OK);
    h.wise.invalidate_access_tokens();
    let body = Bytes::from_static(b"{\"customerTransactionId\":\"abc\"}");
    let (response, echoed) = send(
        Request::post(h.url("/v1/transfers"))
            .body(Full::new(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{echoed:?}");
    assert_eq!(json(&echoed)["body_len"], body.len());
    assert_eq!(h.wise.token_calls().refresh_token, 1);
    let statuses: Vec<u16> = h.wise.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 401, 200], "one 401, one replay");
}

#[tokio::test]
async fn a_second_401_is_passed_through_without_looping() {
    let h = Harness::builder().start().await;
    // The refresh succeeds, but the replay meets 401 again (this path always answers 401).
    let (response, _) = h.get("/test/status/401").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers().get("x-wisegate-error").is_none(),
        "Wise's own 401"
    );
    assert_eq!(h.wise.requests().len(), 2);
    assert_eq!(h.wise.token_calls().refresh_token, 1);
}

/// A path that answers 401 whatever the token (a permission Wise does not grant): the
/// first 401 refreshes and replays, the next ones (the token is moments old) go to the
/// app without another refresh, and are counted.
#[tokio::test]
async fn sequential_401s_to_a_fresh_token_do_not_refresh_again() {
    let h = Harness::builder().start().await;
    for _ in 0..20 {
        let (response, _) = h.get("/test/status/401").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            response.headers().get("x-wisegate-error").is_none(),
            "Wise's own 401"
        );
    }
    assert_eq!(
        h.wise.token_calls().refresh_token,
        1,
        "one refresh for 20 sequential 401s"
    );
    // The first request: 401, refresh, replay (401). The 19 others: sent once each.
    assert_eq!(h.wise.requests().len(), 2 + 19);
    assert_eq!(
        common::metric(
            h.admin,
            "wisegate_unauthorized_without_refresh_total{account=\"default\"}"
        )
        .await,
        19.0
    );
    // Other paths are served with the refreshed token all along.
    assert_eq!(h.get("/v1/me").await.0.status(), StatusCode::OK);
}

/// Once `limits.min_refresh_interval_on_401` has passed since the last refresh, a 401
/// refreshes again: at most one refresh per interval, however many 401s.
#[tokio::test]
async fn a_401_refreshes_again_once_the_interval_has_passed() {
    let h = Harness::builder()
        .extra("[limits]\nmin_refresh_interval_on_401 = \"1s\"\n")
        .start()
        .await;
    let started = Instant::now();
    let mut requests = 0u32;
    let refreshed_again = common::eventually(Duration::from_secs(20), async || {
        requests += 1;
        assert_eq!(
            h.get("/test/status/401").await.0.status(),
            StatusCode::UNAUTHORIZED
        );
        h.wise.token_calls().refresh_token >= 3
    })
    .await;
    let elapsed = started.elapsed();
    assert!(refreshed_again, "a 401 after the interval refreshes");
    let refreshes = h.wise.token_calls().refresh_token;
    let intervals = (elapsed.as_millis() / 1000) as u64 + 1;
    assert!(
        refreshes <= intervals,
        "{refreshes} refreshes for {requests} 401s in {elapsed:?}"
    );
}

#[tokio::test]
async fn a_restart_reuses_the_stored_tokens() {
    let h = Harness::builder().start().await;
    assert_eq!(h.get("/v1/me").await.0.status(), StatusCode::OK);
    h.shutdown.cancel();
    h.task.await.unwrap().unwrap();
    let config = Config::load(&h.config_path).unwrap();
    let (response, _) = get_at(serve(config).await.proxy, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let calls = h.wise.token_calls();
    assert_eq!(
        (calls.authorization_code, calls.refresh_token),
        (1, 0),
        "no new authorization, no refresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down_then_back() {
    let h = short_lived(2).start().await;
    h.wise.set_token_endpoint(TokenEndpointMode::Unavailable);
    // While the token is valid, requests go through although refreshes fail.
    assert_eq!(h.get("/v1/me").await.0.status(), StatusCode::OK);
    // Once it expired, wisegate never injects it: 503 token_unavailable.
    let expired = eventually(Duration::from_secs(10), async || {
        let (response, _) = h.get("/v1/me").await;
        response
            .headers()
            .get("x-wisegate-error")
            .is_some_and(|v| v == "token_unavailable")
    })
    .await;
    assert!(expired, "expired token gives token_unavailable");
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("refresh failed"),
        "{body:?}"
    );
    assert!(
        h.wise.requests().iter().all(|r| r.status == 200),
        "an expired token never reached Wise"
    );

    h.wise.set_token_endpoint(TokenEndpointMode::Normal);
    let recovered = eventually(Duration::from_secs(20), async || {
        h.get("/v1/me").await.0.status() == StatusCode::OK
    })
    .await;
    assert!(recovered, "recovers by itself when the endpoint returns");
    assert!(h.wise.token_calls().failed >= 1);
}

#[tokio::test]
async fn a_revoked_grant_gives_a_clear_503_and_stops_asking() {
    let h = Harness::builder().start().await;
    h.wise.revoke_grant();
    for _ in 0..3 {
        let (response, body) = h.get("/v1/me").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-wisegate-error"], "token_unavailable");
        let message = json(&body)["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("invalid_grant") && message.contains("wisegate authorize"),
            "{message}"
        );
    }
    assert_eq!(
        h.wise.token_calls().failed,
        1,
        "one refused refresh, then no hammering"
    );
    h.assert_not_ready("wisegate authorize").await;
}

#[tokio::test]
async fn an_empty_store_is_seeded_from_refresh_token_file() {
    let common::Setup {
        wise,
        dir,
        config_path,
        ..
    } = common::Harness::builder().setup().await;
    // Authorize elsewhere (a workstation), keep only the refresh token (a Secret).
    let mut workstation = Config::load(&config_path).unwrap();
    let workstation_store = dir.path().join("workstation.json");
    let Accounts::Single(account) = &mut workstation.accounts else {
        panic!("the single-account keys");
    };
    account.token_store = TokenStoreConfig::File(workstation_store.clone());
    common::authorize_with_code(&workstation, &wise).await;
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&workstation_store).unwrap()).unwrap();
    std::fs::write(
        dir.path().join("refresh_token"),
        stored["refresh_token"].as_str().unwrap(),
    )
    .unwrap();

    let text = std::fs::read_to_string(&config_path).unwrap().replace(
        "[oauth]\n",
        "[oauth]\nrefresh_token_file = \"refresh_token\"\n",
    );
    std::fs::write(&config_path, text).unwrap();
    let config = Config::load(&config_path).unwrap();
    let store = config.accounts()[0].token_store.file().unwrap().to_owned();
    assert!(!store.exists());
    let proxy = serve(config).await.proxy;
    let served = eventually(Duration::from_secs(10), async || {
        get_at(proxy, "/v1/me").await.0.status() == StatusCode::OK
    })
    .await;
    assert!(served, "the seeded lineage is refreshed and used");
    assert!(store.exists(), "the new lineage is stored");
    assert_eq!(wise.token_calls().refresh_token, 1);
}

/// An app that hangs up while its request waits on a refresh: the refresh still takes
/// Wise's answer and keeps the new tokens. Here Wise rotates refresh tokens and has made
/// the grant before its answer arrives, so a refresh dropped with the request would leave
/// only a used refresh token: the lineage lost, `wisegate authorize` needed again.
#[tokio::test]
async fn a_refresh_outlives_the_request_whose_app_hung_up() {
    let h = Harness::builder()
        .fake(FakeWiseConfig {
            rotate_refresh_token: true,
            ..FakeWiseConfig::default()
        })
        .start()
        .await;
    // Wise has made the grant; its answer is on its way. The app gives up, and its
    // request (which drove the refresh before the fix) is gone.
    common::hang_up_during_a_refresh(&h.wise, h.proxy, h.admin, Duration::from_secs(3)).await;
    assert_eq!(
        h.wise.token_calls().refresh_token,
        1,
        "the 401 led to a refresh"
    );
    h.wise.set_token_endpoint(TokenEndpointMode::Normal);
    let (response, body) = h.get("/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(h.wise.token_calls().refresh_token, 1, "no second refresh");
}

/// Requests waiting on a refresh that fails share its failure: one call to Wise, not one
/// per waiting request one after the other (each after the previous one failed).
#[tokio::test]
async fn requests_waiting_on_a_failing_refresh_share_one_call() {
    let h = Harness::builder().start().await;
    h.wise
        .set_token_endpoint(TokenEndpointMode::SlowUnavailable(Duration::from_secs(1)));
    h.wise.invalidate_access_tokens();
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let url = h.url("/v1/me");
            tokio::spawn(async move {
                send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
            })
        })
        .collect();
    for request in requests {
        let (response, body) = request.await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{body:?}"
        );
        assert_eq!(json(&body)["error"], "token_unavailable");
    }
    assert_eq!(
        h.wise.token_calls().failed,
        1,
        "one call to Wise for all five"
    );
}
