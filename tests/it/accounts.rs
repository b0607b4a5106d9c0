//! Several Wise accounts through one wisegate (`[[account]]`), end to end against
//! fake-wise with one user per account (each its own token lineage and personal token):
//! the app token selects the account, each account's requests carry its own credential,
//! an unknown token reaches nothing, one account's trouble leaves the others alone, two
//! accounts share one Redis across replicas, and a reload adds and removes accounts
//! under load.

use crate::common;

use bytes::Bytes;
use common::redis_server::RedisServer;
use common::{eventually, json, send, serve, Running};
use fake_wise::{FakeUser, FakeWise, FakeWiseConfig};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use wisegate::config::Config;

/// A route that goes the personal-token way (the default route is OAuth + mTLS).
const LEGACY_ROUTE: &str = r#"
[[route]]
name = "legacy"
path = "/v1/legacy/**"
mode = "personal_token"
"#;

/// The app token each account's app sends (its old personal token, as far as the app
/// knows).
fn app_token(account: &str) -> String {
    format!("app-token-of-{account}")
}

fn sha256_hex(text: &str) -> String {
    wisegate::account::hash_token_hex(text.as_bytes()).unwrap()
}

/// One `[[account]]` table for `user`, its store `store` (a config value).
fn account_table(user: &FakeUser, store: &str) -> String {
    let name = &user.name;
    format!(
        "[[account]]\nname = \"{name}\"\napp_token_sha256 = [\"{}\"]\ntoken_store = \"{store}\"\npersonal_token_file = \"{name}.token\"\n\n",
        sha256_hex(&app_token(name))
    )
}

/// The harness's config with the single-account keys taken out and `tables` (the
/// `[[account]]` tables) added; writes each user's personal token file.
fn accounts_config(dir: &Path, base: &str, users: &[FakeUser], tables: &str) -> String {
    for user in users {
        std::fs::write(
            dir.join(format!("{}.token", user.name)),
            &user.personal_token,
        )
        .unwrap();
    }
    let text = base
        .replace("token_store = \"state/tokens.json\"\n", "")
        .replace("[personal_token]\ntoken_file = \"personal_token\"\n", "");
    format!("{text}\n{LEGACY_ROUTE}\n{tables}")
}

struct Gateway {
    wise: FakeWise,
    dir: TempDir,
    config_path: PathBuf,
    users: Vec<FakeUser>,
    proxy: SocketAddr,
    admin: SocketAddr,
    shutdown: CancellationToken,
}

/// fake-wise with `names` as users, a config with one `[[account]]` per user (file
/// stores, or `redis` with its default key prefixes), each authorized for its own user.
async fn gateway(names: &[&str], fake: FakeWiseConfig, redis: Option<&RedisServer>) -> Gateway {
    gateway_with(names, Vec::new(), fake, redis).await
}

/// Like [`gateway`]; fake-wise also knows `more` users, without accounts (yet).
async fn gateway_with(
    names: &[&str],
    more: Vec<FakeUser>,
    fake: FakeWiseConfig,
    redis: Option<&RedisServer>,
) -> Gateway {
    common::init_tracing();
    let users: Vec<FakeUser> = names.iter().map(|name| FakeUser::new(name)).collect();
    let fake = FakeWiseConfig {
        users: users.iter().cloned().chain(more.iter().cloned()).collect(),
        ..fake
    };
    let common::Setup {
        wise,
        dir,
        config_path: base_path,
        ..
    } = common::Harness::builder().fake(fake).setup().await;
    let base = std::fs::read_to_string(&base_path).unwrap();
    let tables: String = users
        .iter()
        .map(|user| {
            let store = match redis {
                Some(redis) => redis.url(),
                None => format!("state/{}.json", user.name),
            };
            account_table(user, &store)
        })
        .collect();
    let text = accounts_config(dir.path(), &base, &users, &tables);
    std::fs::write(&base_path, text).unwrap();
    let config = Config::load(&base_path).expect("the accounts config is valid");
    for user in &users {
        authorize(&config, &wise, &user.name).await;
    }
    let Running {
        proxy,
        admin,
        shutdown,
        ..
    } = serve(config).await;
    Gateway {
        wise,
        dir,
        config_path: base_path,
        users: users.into_iter().chain(more).collect(),
        proxy,
        admin,
        shutdown,
    }
}

/// `wisegate authorize --account NAME --code <a code for the user NAME>`.
async fn authorize(config: &Config, wise: &FakeWise, name: &str) {
    let account = config.account(Some(name)).unwrap();
    let code = wise.issue_code_for(name);
    wisegate::authorize::authorize_account(
        config,
        &account,
        Some(code),
        tokio::io::empty(),
        |_| {},
    )
    .await
    .expect("authorize --account succeeds");
}

/// GET `path` through `proxy` with `Authorization: Bearer <token>` (none: no header).
async fn get_as(proxy: SocketAddr, path: &str, token: Option<&str>) -> (Response<()>, Bytes) {
    let mut request = Request::get(format!("http://{proxy}{path}"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(request.body(Full::new(Bytes::new())).unwrap()).await
}

/// The `Authorization` header fake-wise's echo says it received.
fn sent_authorization(echo: &serde_json::Value) -> Option<String> {
    echo["headers"].as_array()?.iter().find_map(|pair| {
        (pair[0].as_str()? == "authorization").then(|| pair[1].as_str().map(str::to_owned))?
    })
}

impl Gateway {
    /// GET `path` as the app of account `name`.
    async fn get_for(&self, name: &str, path: &str) -> (Response<()>, Bytes) {
        get_as(self.proxy, path, Some(&app_token(name))).await
    }

    async fn admin_get(&self, path: &str) -> (Response<()>, Bytes) {
        get_as(self.admin, path, None).await
    }

    fn user(&self, name: &str) -> &FakeUser {
        self.users.iter().find(|u| u.name == name).unwrap()
    }

    /// Asserts that a request of account `name` reaches Wise with that account's own
    /// OAuth token, and on the personal-token route with its own personal token.
    async fn assert_served_as(&self, name: &str) {
        let (response, body) = self.get_for(name, "/v1/profiles").await;
        assert_eq!(response.status(), StatusCode::OK, "{name}: {body:?}");
        let echo = json(&body);
        assert_eq!(echo["user"], name, "{echo}");
        assert_eq!(echo["token_kind"], "user", "{echo}");
        let sent = sent_authorization(&echo);
        let current = self.wise.current_access_token_for(name).unwrap();
        assert_eq!(
            sent,
            Some(format!("Bearer {current}")),
            "{name}'s own token"
        );

        let (response, body) = self.get_for(name, "/v1/legacy/balances").await;
        assert_eq!(response.status(), StatusCode::OK, "{name}: {body:?}");
        let echo = json(&body);
        assert_eq!(echo["user"], name, "{echo}");
        assert_eq!(echo["token_kind"], "personal", "{echo}");
        assert_eq!(echo["host"], "legacy", "{echo}");
        let personal = format!("Bearer {}", self.user(name).personal_token);
        assert_eq!(sent_authorization(&echo), Some(personal));
    }
}

#[tokio::test]
async fn each_app_token_reaches_wise_with_its_own_accounts_credentials() {
    for names in [&["uk-ltd", "eu-bv"][..], &["uk-ltd", "eu-bv", "us-inc"][..]] {
        let g = gateway(names, FakeWiseConfig::default(), None).await;
        for name in names {
            g.assert_served_as(name).await;
        }
        // And again in another order: nothing sticks to the previous request.
        for name in names.iter().rev() {
            g.assert_served_as(name).await;
        }
        assert_eq!(g.wise.token_calls().refresh_token, 0);
        g.shutdown.cancel();
    }
}

#[tokio::test]
async fn an_unknown_app_token_gets_unknown_account_and_reaches_nothing() {
    let g = gateway(&["uk-ltd", "eu-bv"], FakeWiseConfig::default(), None).await;
    g.wise.clear_requests();
    let tokens = [Some("somebody-elses-token"), None, Some("")];
    for token in tokens {
        for path in ["/v1/profiles", "/v1/legacy/balances"] {
            let (response, body) = get_as(g.proxy, path, token).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body:?}");
            assert_eq!(response.headers()["x-wisegate-error"], "unknown_account");
            let message = json(&body)["message"].as_str().unwrap().to_owned();
            assert!(message.contains("app_token_sha256"), "{message}");
            assert!(message.contains("wisegate account hash-token"), "{message}");
            assert!(!message.contains("somebody-elses-token"), "{message}");
        }
    }
    assert!(g.wise.requests().is_empty(), "nothing reached fake-wise");
    // A known token still works.
    g.assert_served_as("eu-bv").await;
    g.shutdown.cancel();
}

#[tokio::test]
async fn with_one_account_any_app_credential_is_replaced() {
    let g = gateway(&["solo"], FakeWiseConfig::default(), None).await;
    let (response, body) = get_as(g.proxy, "/v1/profiles", Some("whatever-the-app-sends")).await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["user"], "solo");
    let (response, body) = get_as(g.proxy, "/v1/profiles", None).await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    g.shutdown.cancel();
}

#[tokio::test]
async fn one_accounts_refresh_and_revocation_leave_the_others_token_untouched() {
    let g = gateway(&["uk-ltd", "eu-bv"], FakeWiseConfig::default(), None).await;
    g.assert_served_as("uk-ltd").await;
    g.assert_served_as("eu-bv").await;
    let eu_token = g.wise.current_access_token_for("eu-bv").unwrap();

    // Wise invalidates uk-ltd's token: the 401 refreshes uk-ltd's lineage only.
    g.wise.invalidate_access_tokens_for("uk-ltd");
    let uk_before = g.wise.current_access_token_for("uk-ltd");
    let (response, body) = g.get_for("uk-ltd", "/v1/profiles").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(g.wise.token_calls().refresh_token, 1);
    assert_ne!(g.wise.current_access_token_for("uk-ltd"), uk_before);
    assert_eq!(
        g.wise.current_access_token_for("eu-bv").as_deref(),
        Some(eu_token.as_str())
    );
    g.assert_served_as("eu-bv").await;

    // eu-bv's grant revoked: eu-bv needs a person; uk-ltd keeps serving, and
    // readiness stays 200 naming eu-bv.
    let uk_token = g.wise.current_access_token_for("uk-ltd").unwrap();
    g.wise.revoke_grant_for("eu-bv");
    g.wise.invalidate_access_tokens_for("eu-bv");
    let (response, _) = g.get_for("eu-bv", "/v1/profiles").await;
    assert_ne!(response.status(), StatusCode::OK);
    let named = eventually(Duration::from_secs(10), async || {
        let (ready, body) = g.admin_get("/readyz").await;
        let body = json(&body);
        ready.status() == StatusCode::OK
            && body["accounts_not_ready"]
                .as_array()
                .is_some_and(|reasons| {
                    reasons.iter().any(|r| {
                        let r = r.as_str().unwrap_or_default();
                        r.starts_with("account eu-bv:")
                            && r.contains("wisegate authorize --account eu-bv")
                    })
                })
    })
    .await;
    assert!(
        named,
        "readiness names eu-bv: {:?}",
        g.admin_get("/readyz").await.1
    );
    assert_eq!(
        g.wise.current_access_token_for("uk-ltd").as_deref(),
        Some(uk_token.as_str())
    );
    g.assert_served_as("uk-ltd").await;
    let (_, status) = g.admin_get("/status").await;
    let status = json(&status);
    let accounts = status["accounts"].as_array().unwrap();
    let eu = accounts.iter().find(|a| a["name"] == "eu-bv").unwrap();
    let action = eu["token"]["authorization_required"]["action"].as_str();
    assert!(action.unwrap().contains("--account eu-bv"), "{eu}");
    let uk = accounts.iter().find(|a| a["name"] == "uk-ltd").unwrap();
    assert!(uk["token"]["authorization_required"].is_null(), "{uk}");
    let uk_store = g.dir.path().join("state/uk-ltd.json");
    assert_eq!(uk["store"], uk_store.display().to_string());
    let (_, page) = g.admin_get("/status?format=html").await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("<table id=\"accounts\">"), "{page}");
    assert!(page.contains("<td>uk-ltd</td>") && page.contains("<td>eu-bv</td>"));
    assert!(page.contains("wisegate authorize --account eu-bv"));
    assert!(
        !page.contains(&app_token("eu-bv")) && !page.contains(&sha256_hex(&app_token("eu-bv")))
    );
    // The series of each lineage carry its account.
    let refreshes = |name: &str, result: &str| {
        format!("wisegate_token_refresh_total{{account=\"{name}\",result=\"{result}\"}}")
    };
    assert_eq!(
        common::metric(g.admin, &refreshes("uk-ltd", "success")).await,
        1.0
    );
    assert_eq!(
        common::metric(g.admin, &refreshes("eu-bv", "success")).await,
        0.0
    );
    assert_eq!(
        common::metric(g.admin, &refreshes("eu-bv", "failure")).await,
        1.0
    );
    let required = |name: &str| format!("wisegate_authorization_required{{account=\"{name}\"}}");
    assert_eq!(common::metric(g.admin, &required("eu-bv")).await, 1.0);
    assert_eq!(common::metric(g.admin, &required("uk-ltd")).await, 0.0);
    let (_, text) = g.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("wisegate_token_expiry_timestamp_seconds{account=\"uk-ltd\"}"),
        "{text}"
    );
    g.shutdown.cancel();
}

#[tokio::test]
async fn readiness_fails_only_when_no_account_can_serve() {
    let g = gateway(&["uk-ltd", "eu-bv"], FakeWiseConfig::default(), None).await;
    for name in ["uk-ltd", "eu-bv"] {
        g.wise.revoke_grant_for(name);
        g.wise.invalidate_access_tokens_for(name);
        let _ = g.get_for(name, "/v1/profiles").await;
    }
    let unready = eventually(Duration::from_secs(10), async || {
        let (ready, body) = g.admin_get("/readyz").await;
        let reasons = json(&body)["reasons"].to_string();
        ready.status() == StatusCode::SERVICE_UNAVAILABLE
            && reasons.contains("account uk-ltd:")
            && reasons.contains("account eu-bv:")
    })
    .await;
    assert!(unready, "{:?}", g.admin_get("/readyz").await.1);
    g.shutdown.cancel();
}

#[tokio::test]
async fn two_accounts_on_one_redis_keep_separate_lineages_across_replicas() {
    let _heavy = common::heavy().await;
    let redis = RedisServer::start(None).await;
    let g = gateway(
        &["uk-ltd", "eu-bv"],
        FakeWiseConfig::default(),
        Some(&redis),
    )
    .await;
    let prefix = |name: &str| format!("wisegate:wisegate-test:{name}:");
    assert_eq!(redis.generation(&prefix("uk-ltd")).await, Some(1));
    assert_eq!(redis.generation(&prefix("eu-bv")).await, Some(1));
    assert_eq!(redis.generation("wisegate:wisegate-test:").await, None);
    let config = Config::load(&g.config_path).unwrap();
    let Running {
        proxy: second,
        shutdown: second_stop,
        ..
    } = serve(config).await;
    for proxy in [g.proxy, second] {
        for name in ["uk-ltd", "eu-bv"] {
            let (response, body) = get_as(proxy, "/v1/profiles", Some(&app_token(name))).await;
            assert_eq!(response.status(), StatusCode::OK, "{body:?}");
            assert_eq!(json(&body)["user"], name);
        }
    }
    // uk-ltd's token invalidated: one replica refreshes it, the other adopts it from
    // Redis; eu-bv's lineage stays at its generation.
    let eu_token = g.wise.current_access_token_for("eu-bv");
    g.wise.invalidate_access_tokens_for("uk-ltd");
    let (response, _) = get_as(g.proxy, "/v1/profiles", Some(&app_token("uk-ltd"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(redis.generation(&prefix("uk-ltd")).await, Some(2));
    let (response, body) = get_as(second, "/v1/profiles", Some(&app_token("uk-ltd"))).await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(
        g.wise.token_calls().refresh_token,
        1,
        "one refresh for the group"
    );
    assert_eq!(redis.generation(&prefix("eu-bv")).await, Some(1));
    assert_eq!(g.wise.current_access_token_for("eu-bv"), eu_token);
    for proxy in [g.proxy, second] {
        let (response, body) = get_as(proxy, "/v1/profiles", Some(&app_token("eu-bv"))).await;
        assert_eq!(response.status(), StatusCode::OK, "{body:?}");
        assert_eq!(json(&body)["user"], "eu-bv");
    }
    second_stop.cancel();
    g.shutdown.cancel();
}

/// Requests of account `name` in a loop until `stop`: (answered 200, anything else).
fn load(
    proxy: SocketAddr,
    name: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            let (response, body) = get_as(proxy, "/v1/profiles", Some(&app_token(name))).await;
            if response.status() == StatusCode::OK && json(&body)["user"] == name {
                ok.fetch_add(1, Ordering::Relaxed);
            } else {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        (ok.into_inner(), failed.into_inner())
    })
}

#[tokio::test]
async fn a_reload_adds_and_removes_accounts_under_load_without_failing_the_others() {
    // fake-wise knows one more user, authorized into its store before the reload.
    let newcomer = FakeUser::new("us-inc");
    let more = vec![newcomer.clone()];
    let g = gateway_with(&["uk-ltd", "eu-bv"], more, FakeWiseConfig::default(), None).await;
    let text = std::fs::read_to_string(&g.config_path).unwrap();
    let added = format!("{text}\n{}", account_table(&newcomer, "state/us-inc.json"));
    std::fs::write(g.dir.path().join("us-inc.token"), &newcomer.personal_token).unwrap();
    let with_newcomer = g.dir.path().join("with-newcomer.toml");
    std::fs::write(&with_newcomer, &added).unwrap();
    authorize(&Config::load(&with_newcomer).unwrap(), &g.wise, "us-inc").await;
    let refreshes = g.wise.token_calls().refresh_token;

    let stop = Arc::new(AtomicBool::new(false));
    let uk = load(g.proxy, "uk-ltd", stop.clone());
    let eu_before = g.wise.current_access_token_for("eu-bv");
    // Add us-inc.
    std::fs::write(&g.config_path, &added).unwrap();
    let served = eventually(Duration::from_secs(15), async || {
        g.get_for("us-inc", "/v1/profiles").await.0.status() == StatusCode::OK
    })
    .await;
    assert!(served, "the added account serves after the reload");
    g.assert_served_as("us-inc").await;
    // Remove eu-bv.
    let removed = added.replace(&account_table(g.user("eu-bv"), "state/eu-bv.json"), "");
    assert_ne!(removed, added);
    std::fs::write(&g.config_path, &removed).unwrap();
    let refused = eventually(Duration::from_secs(15), async || {
        let (response, _) = g.get_for("eu-bv", "/v1/profiles").await;
        response
            .headers()
            .get("x-wisegate-error")
            .is_some_and(|v| v == "unknown_account")
    })
    .await;
    assert!(
        refused,
        "the removed account's requests get unknown_account"
    );
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = uk.await.unwrap();
    g.wise.clear_requests();
    let (response, _) = g.get_for("eu-bv", "/v1/profiles").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        g.wise.requests().is_empty(),
        "never with another account's token"
    );
    assert!(ok > 0);
    assert_eq!(failed, 0, "uk-ltd's requests during both reloads");
    assert_eq!(
        g.wise.token_calls().refresh_token,
        refreshes,
        "no lineage was refreshed"
    );
    assert_eq!(g.wise.current_access_token_for("eu-bv"), eu_before);
    g.assert_served_as("uk-ltd").await;
    g.shutdown.cancel();
}

#[test]
fn config_validation_reports_every_account_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let hash = sha256_hex("one");
    let text = format!(
        r#"
[mtls]
cert_file = "c.crt"
key_file = "c.key"

[oauth]
client_id = "x"
client_secret_file = "s"
redirect_uri = "https://example.com/cb"
token_store = "state/tokens.json"

[[account]]
name = "UK Ltd"
app_token_sha256 = ["{hash}"]
token_store = "state/a.json"

[[account]]
name = "eu"
app_token_sha256 = ["{hash}", "not-a-hash"]
token_store = "state/a.json"

[[account]]
name = "eu"
token_store = "redis://127.0.0.1:6379/0"
"#
    );
    let error = Config::parse(&dir.path().join("wisegate.toml"), &text).unwrap_err();
    let message = error.to_string();
    for expected in [
        "oauth.token_store: is a single-account key",
        "account[0].name: `UK Ltd` is not an account name",
        "account[1].app_token_sha256: a hash here also selects account `UK Ltd`",
        "account[1].app_token_sha256[1]: is not a SHA-256 in hex",
        "account[1].token_store: is also the token store of account `UK Ltd`",
        "account[2].name: `eu` is also the name of account[1]",
        "account[2].app_token_sha256: is required when several accounts are configured",
    ] {
        assert!(
            message.contains(expected),
            "missing `{expected}` in:\n{message}"
        );
    }
    assert!(
        !message.contains("not-a-hash"),
        "values are not echoed:\n{message}"
    );
    // Each problem has its line.
    let line_of = |key: &str| {
        error
            .problems
            .iter()
            .find(|p| p.key == key)
            .and_then(|p| p.line)
    };
    assert_eq!(line_of("account[0].name"), Some(13));
    assert_eq!(line_of("account[2].name"), Some(23));
}

#[test]
fn two_accounts_on_one_redis_get_key_prefixes_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[mtls]
cert_file = "c.crt"
key_file = "c.key"

[oauth]
client_id = "acme"
client_secret_file = "s"
redirect_uri = "https://example.com/cb"

[[account]]
name = "uk-ltd"
app_token_sha256 = ["{}"]
token_store = "redis://127.0.0.1:6379/0"

[[account]]
name = "eu-bv"
app_token_sha256 = ["{}"]
token_store = "redis://127.0.0.1:6379/0"
"#,
        sha256_hex("uk"),
        sha256_hex("eu")
    );
    let config = Config::parse(&dir.path().join("wisegate.toml"), &text).unwrap();
    let prefixes: Vec<String> = config
        .accounts()
        .into_iter()
        .map(|account| match account.token_store {
            wisegate::config::TokenStoreConfig::Redis(redis) => redis.key_prefix,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(prefixes, ["wisegate:acme:uk-ltd:", "wisegate:acme:eu-bv:"]);
    // Without [[account]], the single account keeps today's keys.
    let single = text.split("[[account]]").next().unwrap().replace(
        "[oauth]\n",
        "[oauth]\ntoken_store = \"redis://127.0.0.1:6379/0\"\n",
    );
    let config = Config::parse(&dir.path().join("wisegate.toml"), &single).unwrap();
    let accounts = config.accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].name, "default");
    let wisegate::config::TokenStoreConfig::Redis(redis) = &accounts[0].token_store else {
        panic!("a Redis store");
    };
    assert_eq!(redis.key_prefix, "wisegate:acme:");
}

#[tokio::test]
async fn authorize_names_the_accounts_when_none_is_chosen() {
    let g = gateway(&["uk-ltd", "eu-bv"], FakeWiseConfig::default(), None).await;
    let config = Config::load(&g.config_path).unwrap();
    let error = wisegate::authorize::authorize(
        &config,
        Some(g.wise.issue_code_for("uk-ltd")),
        tokio::io::empty(),
        |_| {},
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("--account"), "{error}");
    assert!(error.contains("uk-ltd, eu-bv"), "{error}");
    g.shutdown.cancel();
}

#[test]
fn hash_token_prints_the_sha256_of_stdin_and_never_the_token() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let secret = "a-very-secret-app-token";
    let mut child = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(["account", "hash-token"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{secret}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stdout, format!("{}\n", sha256_hex(secret)));
    // The same as any SHA-256 tool prints for the token without its newline.
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stdout.trim(), expected);
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
}
