//! The real binary as ops run it: SIGHUP reloads, SIGTERM drains in-flight requests and
//! exits 0 with readiness turning 503 at once, JSON logs carry the access line, and no
//! token or secret appears in the output even at trace level.

use crate::common;

use common::{authorize_with_code, get_at, json, metric, Harness, Setup};
use fake_wise::{FakeWiseConfig, TokenEndpointMode, TokenShape};
use http::StatusCode;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use wisegate::config::Config;

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Running {
    child: Child,
    proxy: SocketAddr,
    admin: SocketAddr,
    /// Everything the process wrote to stderr, read as it comes so the pipe never fills.
    stderr: tokio::task::JoinHandle<String>,
}

/// Authorizes, then starts `wisegate run` on free ports with `args`, and waits until it
/// is ready.
async fn start(setup: &Setup, args: &[&str], log: &str) -> Running {
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    launch(setup, args, log).await
}

/// Starts `wisegate run` with the tokens already stored (the ports of an earlier start
/// are kept), and waits until it is ready.
async fn launch(setup: &Setup, args: &[&str], log: &str) -> Running {
    launch_until(setup, args, log, "/readyz").await
}

/// [`launch`], waiting until the admin listener's `path` answers 200.
async fn launch_until(setup: &Setup, args: &[&str], log: &str, path: &str) -> Running {
    let text = std::fs::read_to_string(&setup.config_path).unwrap();
    if text.contains("127.0.0.1:0") {
        let (proxy, admin) = (free_port(), free_port());
        let text = text
            .replacen("127.0.0.1:0", &proxy.to_string(), 1)
            .replacen("127.0.0.1:0", &admin.to_string(), 1);
        std::fs::write(&setup.config_path, text).unwrap();
    }
    let config = Config::load(&setup.config_path).unwrap();
    let (proxy, admin) = (config.listen.address, config.admin.address);
    let mut child = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(args)
        .args(["run", "--config"])
        .arg(&setup.config_path)
        .env("WISEGATE_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut output = String::new();
        let _ = pipe.read_to_string(&mut output).await;
        output
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client
            .get(format!("http://{admin}{path}").parse().unwrap())
            .await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(Instant::now() < deadline, "wisegate did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        child,
        proxy,
        admin,
        stderr,
    }
}

fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains_then_exits_0() {
    let setup = Harness::builder().setup().await;
    let mut running = start(&setup, &[], "info").await;
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );

    signal(&running.child, "HUP");
    let success = "wisegate_config_reload_total{result=\"success\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(running.admin, success).await < 1.0 {
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A slow request in flight, then SIGTERM.
    let proxy = running.proxy;
    let slow = tokio::spawn(async move { get_at(proxy, "/test/slow?ms=2000").await });
    common::wait_for_metric(running.admin, "wisegate_requests_in_flight", 1.0).await;
    signal(&running.child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::net::TcpStream::connect(running.admin).await {
            Ok(_) => {
                let (ready, body) = get_at(running.admin, "/readyz").await;
                if ready.status() == StatusCode::SERVICE_UNAVAILABLE {
                    assert!(json(&body)["reasons"][0]
                        .as_str()
                        .unwrap()
                        .contains("shutting down"));
                    break;
                }
            }
            Err(_) => panic!("the admin listener closed before readiness said 503"),
        }
        assert!(Instant::now() < deadline, "readiness never turned 503");
    }
    let (response, _) = slow.await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the in-flight request completed"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        tokio::net::TcpStream::connect(running.proxy).await.is_err(),
        "no new connections"
    );
    // Text logs to a pipe (a file, a collector): plain text, no terminal colour codes.
    let output = running.stderr.await.unwrap();
    assert!(
        output.contains("wisegate::access"),
        "access lines: {output}"
    );
    assert!(
        !output.contains('\u{1b}'),
        "colour codes in a piped log: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_trace_level_carry_the_access_line_and_no_secret() {
    let setup = Harness::builder().setup().await;
    let extra = "\n[[route]]\nname = \"hooks\"\npath = \"/v3/profiles/*/subscriptions\"\nmode = \"personal_token\"\n";
    std::fs::write(
        &setup.config_path,
        std::fs::read_to_string(&setup.config_path).unwrap() + extra,
    )
    .unwrap();
    let mut running = start(&setup, &["--log-format", "json"], "trace").await;
    let correlation = "corr-42";
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for path in ["/v1/me?secret=query", "/v3/profiles/1/subscriptions"] {
        let request = http::Request::get(format!("http://{}{path}", running.proxy))
            .header("x-external-correlation-id", correlation)
            .header("authorization", "Bearer app-own-token-xyz")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        assert_eq!(
            client.request(request).await.unwrap().status(),
            StatusCode::OK
        );
    }
    setup.wise.invalidate_access_tokens();
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK,
        "refreshed and replayed"
    );
    let token = setup.wise.current_access_token().unwrap();
    signal(&running.child, "TERM");
    running.child.wait().await.unwrap();
    let output = running.stderr.await.unwrap();

    let access: Vec<serde_json::Value> = output
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|_| panic!("not JSON: {line}"))
        })
        .filter(|line| line["target"] == "wisegate::access")
        .collect();
    assert_eq!(access.len(), 3, "one access line per request");
    let first = &access[0]["fields"];
    assert_eq!(first["path"], "/v1/me", "no query string in logs");
    assert_eq!(first["route"], "default");
    assert_eq!(first["mode"], "oauth_mtls");
    assert_eq!(first["status"], 200);
    // Whole microseconds, not a float such as 0.37723900000000005 ms.
    assert!(first["duration_us"].is_u64(), "{first}");
    assert!(first.get("duration_ms").is_none(), "{first}");
    assert_eq!(first["correlation_id"], correlation);
    assert!(first["trace_id"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(access[1]["fields"]["mode"], "personal_token");

    let config = setup.wise.config();
    for secret in [
        token.as_str(),
        &config.client_secret,
        &config.personal_token,
        "app-own-token-xyz",
    ] {
        assert!(
            !output.contains(secret),
            "a secret leaked into the log output"
        );
    }
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.dir.path().join("state/tokens.json")).unwrap())
            .unwrap();
    assert!(!output.contains(stored["refresh_token"].as_str().unwrap()));
}

/// Runs the binary with `args` and `--config` at trace level; its stdout + stderr.
async fn wisegate_at_trace(setup: &Setup, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(args)
        .arg("--config")
        .arg(&setup.config_path)
        .env("WISEGATE_LOG", "trace")
        .env("RUST_LOG", "trace")
        .output()
        .await
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn authorize_refresh_and_check_at_trace_level_leak_nothing() {
    let setup = Harness::builder().setup().await;
    let code = setup.wise.issue_code();
    let mut output = wisegate_at_trace(&setup, &["authorize", "--code", &code]).await;
    let first = setup.wise.current_access_token().unwrap();
    output += &wisegate_at_trace(&setup, &["token", "refresh"]).await;
    output += &wisegate_at_trace(&setup, &["check", "--online"]).await;
    output += &wisegate_at_trace(&setup, &["token", "status"]).await;
    let last = setup.wise.current_access_token().unwrap();
    assert_ne!(first, last);
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        1,
        "check --online spends no refresh: {output}"
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.dir.path().join("state/tokens.json")).unwrap())
            .unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    let config = setup.wise.config();
    for secret in [
        first.as_str(),
        last.as_str(),
        refresh.as_str(),
        &config.client_secret,
        &config.personal_token,
        &code,
    ] {
        assert!(!output.contains(secret), "a secret leaked into the output");
    }
    assert!(
        output.contains("TRACE") || output.contains("DEBUG"),
        "the output really was at trace level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_status_reports_the_running_processes_last_refresh() {
    let setup = Harness::builder().setup().await;
    let status = |config: std::path::PathBuf| async move {
        let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
            .args(["token", "status", "--config"])
            .arg(config)
            .output()
            .await
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // The grant is revoked right after a refresh: with the default interval that 401
    // would go to the app without asking Wise again (token::rejection).
    let mut text = std::fs::read_to_string(&setup.config_path).unwrap();
    text.push_str("\n[limits]\nmin_refresh_interval_on_401 = \"1ms\"\n");
    std::fs::write(&setup.config_path, text).unwrap();
    let mut running = start(&setup, &[], "warn").await;
    assert!(status(setup.config_path.clone())
        .await
        .contains("last refresh:   none since the running wisegate started"));
    setup.wise.invalidate_access_tokens();
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );
    let text = status(setup.config_path.clone()).await;
    assert!(text.contains("last refresh:   succeeded at"), "{text}");
    setup.wise.revoke_grant();
    get_at(running.proxy, "/v1/me").await;
    let text = status(setup.config_path.clone()).await;
    assert!(
        text.contains("last refresh:   FAILED at") && text.contains("invalid_grant"),
        "{text}"
    );
    signal(&running.child, "TERM");
    running.child.wait().await.unwrap();
    let text = status(setup.config_path.clone()).await;
    assert!(
        text.contains("last refresh:   unknown: no running wisegate answered"),
        "{text}"
    );
}

/// SIGTERM while a refresh started by a request waits for Wise's answer, the app having
/// hung up: wisegate waits for the answer and saves it before it exits, so the restart
/// finds the new lineage (Wise rotates refresh tokens here: the old one is spent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_refresh_in_flight_finish_and_save() {
    let setup = Harness::builder()
        .fake(FakeWiseConfig {
            rotate_refresh_token: true,
            ..FakeWiseConfig::default()
        })
        .setup()
        .await;
    let mut running = start(&setup, &[], "info").await;
    // Wise has made the grant, its answer is on its way; the app is gone, nothing is in
    // flight for the drain to wait for.
    common::hang_up_during_a_refresh(
        &setup.wise,
        running.proxy,
        running.admin,
        Duration::from_secs(2),
    )
    .await;
    signal(&running.child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), running.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    setup.wise.set_token_endpoint(TokenEndpointMode::Normal);
    let restarted = launch(&setup, &[], "info").await;
    let (response, body) = get_at(restarted.proxy, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        1,
        "the saved tokens were used"
    );
}

/// Runs the binary with `args` and `--config`; exit code and stdout + stderr.
async fn wisegate(setup: &Setup, args: &[&str]) -> (Option<i32>, String) {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_ref()).collect();
    all.extend(["--config".as_ref(), setup.config_path.as_os_str()]);
    common::wisegate_output(&all).await
}

/// A POST too large for the replay buffer: a 401 from Wise would reach the app.
async fn large_post(proxy: SocketAddr) -> (StatusCode, serde_json::Value) {
    let request = http::Request::post(format!("http://{proxy}/v1/transfers"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(vec![
            b'x';
            200 * 1024
        ])))
        .unwrap();
    let (response, body) = common::send(request).await;
    (response.status(), json(&body))
}

/// `token refresh` and `check --online` next to a running wisegate: the refresh is made
/// by the running process, so its token stays valid and a large POST (beyond the replay
/// buffer) still gets 200 without a refresh on 401; `check --online` spends no refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refresh_and_check_next_to_a_running_wisegate_keep_its_token_valid() {
    let setup = Harness::builder().setup().await;
    let running = start(&setup, &[], "warn").await;
    let before = setup.wise.current_access_token().unwrap();

    let (code, text) = wisegate(&setup, &["token", "refresh"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(setup.wise.token_calls().refresh_token, 1, "{text}");
    assert_ne!(setup.wise.current_access_token().unwrap(), before);
    let (status, body) = large_post(running.proxy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(text.contains("Refreshed by the running wisegate"), "{text}");
    assert_eq!(body["body_len"], 200 * 1024);
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        1,
        "no refresh after a 401: the proxy held the new token"
    );

    let (code, text) = wisegate(&setup, &["check", "--online"]).await;
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("a wisegate runs this config"), "{text}");
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        1,
        "check --online spent no refresh: {text}"
    );
    let (status, body) = large_post(running.proxy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(setup.wise.token_calls().refresh_token, 1);
}

/// The token endpoints change state: POST only, naming the config's SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_endpoints_want_post_and_the_configs_sha256() {
    let setup = Harness::builder().setup().await;
    let running = start(&setup, &[], "warn").await;
    let sha = Config::load(&setup.config_path).unwrap().sha256;
    let post = |header: Option<&str>| {
        let mut request = http::Request::post(format!("http://{}/token/refresh", running.admin));
        if let Some(value) = header {
            request = request.header("x-wisegate-config-sha256", value);
        }
        common::send(request.body(http_body_util::Full::default()).unwrap())
    };
    let (response, _) = get_at(running.admin, "/token/refresh").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // A page rebound to 127.0.0.1 (DNS rebinding) still names itself in Host.
    let rebound = http::Request::post(format!("http://{}/token/refresh", running.admin))
        .header("host", "pay.example.com")
        .header("x-wisegate-config-sha256", &sha)
        .body(http_body_util::Full::default())
        .unwrap();
    assert_eq!(
        common::send(rebound).await.0.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(post(None).await.0.status(), StatusCode::BAD_REQUEST);
    let (response, body) = post(Some(&"0".repeat(64))).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(json(&body)["error"], "config_mismatch");
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        0,
        "none of these refreshed"
    );
    let (response, body) = post(Some(&sha)).await;
    assert_eq!(response.status(), StatusCode::OK, "{body:?}");
    assert_eq!(json(&body)["changed"], true);
    assert_eq!(setup.wise.token_calls().refresh_token, 1);
}

/// Started before any authorization: `authorize --code` hands the new lineage to the
/// running wisegate, which becomes ready at once; run again it refuses to replace the
/// lineage without --force (stdin is not a terminal), and with --force the running
/// process switches to the new lineage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_hands_the_new_lineage_to_a_running_wisegate() {
    let setup = Harness::builder().setup().await;
    let running = launch_until(&setup, &[], "warn", "/healthz").await;
    let (ready, body) = get_at(running.admin, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE, "{body:?}");

    let code = setup.wise.issue_code();
    let (status, text) = wisegate(&setup, &["authorize", "--code", &code]).await;
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("now uses the new tokens"), "{text}");
    let (ready, body) = get_at(running.admin, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "{body:?}");
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );

    let code = setup.wise.issue_code();
    let (status, text) = wisegate(&setup, &["authorize", "--code", &code]).await;
    assert_eq!(status, Some(64), "{text}");
    assert!(
        text.contains("already holds a lineage") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(
        setup.wise.token_calls().authorization_code,
        1,
        "the code was kept"
    );

    let (status, text) = wisegate(&setup, &["authorize", "--force", "--code", &code]).await;
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("now uses the new tokens"), "{text}");
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        setup.wise.token_calls().refresh_token,
        0,
        "the new lineage was used as it came"
    );
}

/// Wise refuses the grant: `/readyz`, `/status` (JSON and HTML), `wisegate token status`
/// and `wisegate_authorization_required` say that a person must run `wisegate
/// authorize`, with the time Wise refused and its error code; no further call to the
/// token endpoint is made for that lineage (fake-wise counts them) until `wisegate
/// authorize` hands a new one over, which the running process uses at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_says_authorize_everywhere_and_stops_token_calls() {
    let setup = Harness::builder().setup().await;
    let mut text = std::fs::read_to_string(&setup.config_path).unwrap();
    text.push_str("\n[limits]\nmin_refresh_interval_on_401 = \"1ms\"\n");
    std::fs::write(&setup.config_path, text).unwrap();
    let running = start(&setup, &[], "warn").await;
    assert_eq!(
        metric(
            running.admin,
            "wisegate_authorization_required{account=\"default\"}"
        )
        .await,
        0.0
    );
    setup.wise.revoke_grant();
    let (response, _) = get_at(running.proxy, "/v1/me").await;
    assert_ne!(response.status(), StatusCode::OK);
    let calls = setup.wise.token_calls();
    assert_eq!(calls.failed, 1, "one refresh, refused: {calls:?}");
    for _ in 0..5 {
        let (response, _) = get_at(running.proxy, "/v1/me").await;
        assert_ne!(response.status(), StatusCode::OK);
    }
    assert_eq!(
        setup.wise.token_calls(),
        calls,
        "no token call for the refused lineage"
    );

    let (ready, body) = get_at(running.admin, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reason = json(&body)["reasons"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("a person must run `wisegate authorize`")
            && reason.contains("(invalid_grant)"),
        "{reason}"
    );
    let (_, body) = get_at(running.admin, "/status").await;
    let status = json(&body);
    let required = &status["token"]["authorization_required"];
    assert_eq!(required["error_code"], "invalid_grant", "{status}");
    let refused_at = required["refused_at"].as_str().unwrap().to_owned();
    assert!(reason.contains(&refused_at), "{reason} names {refused_at}");
    let (_, page) = get_at(running.admin, "/status?format=html").await;
    let page = String::from_utf8_lossy(&page).into_owned();
    let line = page
        .lines()
        .find(|line| line.contains("id=\"authorization\""))
        .unwrap_or_default();
    assert!(
        line.contains("required")
            && line.contains(&refused_at)
            && line.contains("wisegate authorize"),
        "{line}"
    );
    assert_eq!(
        metric(
            running.admin,
            "wisegate_authorization_required{account=\"default\"}"
        )
        .await,
        1.0
    );
    let (_, text) = wisegate(&setup, &["token", "status"]).await;
    assert!(
        text.contains("authorization:  REQUIRED")
            && text.contains(&refused_at)
            && text.contains("(invalid_grant)")
            && text.contains("a person must run `wisegate authorize`"),
        "{text}"
    );

    // A new authorization, handed over to the running process: no restart.
    let code = setup.wise.issue_code();
    let (code_status, text) = wisegate(&setup, &["authorize", "--force", "--code", &code]).await;
    assert_eq!(code_status, Some(0), "{text}");
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_at(running.admin, "/readyz").await.0.status(),
        StatusCode::OK
    );
    assert_eq!(
        metric(
            running.admin,
            "wisegate_authorization_required{account=\"default\"}"
        )
        .await,
        0.0
    );
    let (_, body) = get_at(running.admin, "/status").await;
    assert!(json(&body)["token"]["authorization_required"].is_null());
    assert_eq!(setup.wise.token_calls().failed, 1);
}

/// Tokens stored without a hand-over (by the library, as an older `authorize` did):
/// SIGHUP makes the running wisegate read the store again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_takes_up_a_lineage_stored_meanwhile() {
    let setup = Harness::builder().setup().await;
    let running = launch_until(&setup, &[], "warn", "/healthz").await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let (ready, _) = get_at(running.admin, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    signal(&running.child, "HUP");
    let admin = running.admin;
    let ready = common::eventually(Duration::from_secs(10), async || {
        get_at(admin, "/readyz").await.0.status() == StatusCode::OK
    })
    .await;
    assert!(ready, "SIGHUP did not take up the stored lineage");
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK
    );
}

/// Rollback readiness: the probe finds the legacy path available, then refused within
/// one interval once Wise enforces mTLS (on `/status`, JSON and HTML, and in the
/// metrics); turning the rollback on then still applies but logs an error; and once Wise
/// takes the personal token again the probe says available. The probe is the only
/// request the legacy host sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_readiness_sees_wise_enforce_mtls_before_anyone_flips() {
    let setup = Harness::builder().setup().await;
    let text = std::fs::read_to_string(&setup.config_path).unwrap();
    let probing = format!("{text}\n[rollback]\nall = false\nprobe_interval = \"1s\"\n");
    std::fs::write(&setup.config_path, &probing).unwrap();
    let mut running = start(&setup, &[], "info").await;
    let admin = running.admin;
    let state_becomes = async |wanted: &str| {
        common::eventually(Duration::from_secs(10), async || {
            let status = json(&get_at(admin, "/status").await.1);
            status["rollback_readiness"]["state"] == wanted
        })
        .await
    };
    assert!(state_becomes("available").await, "the first probe at start");
    assert_eq!(metric(admin, "wisegate_legacy_path_up").await, 1.0);

    setup.wise.set_mtls_enforced(true);
    assert!(state_becomes("refused").await, "refused within an interval");
    assert_eq!(metric(admin, "wisegate_legacy_path_up").await, 0.0);
    let info = "wisegate_legacy_path_info{state=\"refused\"}";
    assert_eq!(metric(admin, info).await, 1.0);
    let (_, page) = get_at(admin, "/status?format=html").await;
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("refused") && page.contains("a rollback would fail"),
        "{page}"
    );

    // Ops flip anyway: the flip applies, and the log says what it will likely cause.
    let text = std::fs::read_to_string(&setup.config_path).unwrap();
    let flipped = text.replace("[rollback]\nall = false", "[rollback]\nall = true");
    std::fs::write(&setup.config_path, flipped).unwrap();
    signal(&running.child, "HUP");
    common::wait_for_metric(admin, "wisegate_rollback_active", 1.0).await;

    setup.wise.set_mtls_enforced(false);
    assert!(state_becomes("available").await, "available again");
    assert!(
        setup.wise.requests().is_empty(),
        "the probe carries no app request: {:?}",
        setup.wise.requests()
    );
    assert!(
        setup.wise.probes() >= 3,
        "probed at start, refused, available"
    );
    signal(&running.child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), running.child.wait()).await;
    let output = running.stderr.await.unwrap();
    assert!(
        output.contains(
            "rollback.all turned on although the last probe found the legacy path refused"
        ),
        "the flip into a refused legacy path is logged: {output}"
    );
    assert!(output.contains("ERROR"), "at error level: {output}");
}

/// Runs the binary with exactly `args`; exit code, stdout and stderr.
async fn wisegate_bare(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(args)
        .env_remove("WISEGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A missing certificate at start names the file and the key that names it.
#[tokio::test]
async fn a_missing_certificate_at_start_names_mtls_cert_file() {
    let setup = Harness::builder().setup().await;
    let cert = setup.dir.path().join("client.crt");
    std::fs::remove_file(&cert).unwrap();
    let config = setup.config_path.to_str().unwrap();
    let (code, _, stderr) = wisegate_bare(&["run", "--config", config]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&cert.display().to_string()), "{stderr}");
    assert!(stderr.contains("mtls.cert_file"), "{stderr}");
}

/// Before the first `authorize` the token store file does not exist: `check` says so
/// rather than calling it empty.
#[tokio::test]
async fn check_says_a_token_store_that_was_never_written_does_not_exist_yet() {
    let setup = Harness::builder().setup().await;
    let config = setup.config_path.to_str().unwrap();
    let (code, stdout, stderr) = wisegate_bare(&["check", "--config", config]).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let store = setup.dir.path().join("state/tokens.json");
    assert!(
        stdout.contains(&format!(
            "FAIL  token store {} does not exist yet (no tokens): run `wisegate authorize` once",
            store.display()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("empty"), "{stdout}");
}

/// Every command that reads a config says what `--config` is in its `--help`.
#[tokio::test]
async fn every_config_option_is_described_in_help() {
    for command in [
        &["run"][..],
        &["authorize"],
        &["check"],
        &["token", "status"],
        &["token", "refresh"],
    ] {
        let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
        let (_, help, _) = wisegate_bare(&args).await;
        let lines: Vec<&str> = help.lines().collect();
        let at = lines
            .iter()
            .position(|line| line.trim_start().starts_with("--config <CONFIG>"))
            .unwrap_or_else(|| panic!("{command:?}: no --config in\n{help}"));
        // On the option's line, or the next one (clap's long help).
        assert!(
            lines[at..lines.len().min(at + 2)]
                .iter()
                .any(|line| line.contains("The config file")),
            "{command:?}: --config has no description:\n{help}"
        );
    }
}

/// `csr` writes files and logs nothing: it offers no `--log-format`; the commands that
/// read a config take it after the command, and before it as earlier versions did.
#[tokio::test]
async fn log_format_is_offered_where_there_are_logs() {
    let (_, help, _) = wisegate_bare(&["csr", "--help"]).await;
    assert!(!help.contains("--log-format"), "{help}");
    let (_, help, _) = wisegate_bare(&["run", "--help"]).await;
    assert!(help.contains("--log-format"), "{help}");
    for args in [
        &["--log-format", "json", "check", "--help"][..],
        &["check", "--log-format", "json", "--help"],
    ] {
        let (code, _, stderr) = wisegate_bare(args).await;
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
    }
}

/// Tokens of JWE size (Wise's client-credentials tokens are becoming 500-800+
/// characters), everything at trace level: a wisegate started before any authorization
/// takes up what `authorize --code` hands over and sends the exact long tokens, through
/// a 401 replay too; `token refresh`, `check --online` and `token status` run beside it.
/// No 16-character piece of any token, secret or code is in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tokens_at_trace_level_are_handed_over_whole_and_never_logged() {
    let setup = Harness::builder()
        .fake(FakeWiseConfig {
            app_token_shape: TokenShape::Jwe(900),
            user_token_shape: TokenShape::Jwe(700),
            ..FakeWiseConfig::default()
        })
        .setup()
        .await;
    let route = "\n[[route]]\nname = \"applications\"\npath = \"/v3/applications/**\"\nmode = \"oauth_client\"\n";
    // The handed-over token is fresh: without a short floor its first 401 would pass to
    // the app unrefreshed (limits.min_refresh_interval_on_401), and the replay is tested.
    let limits = "\n[limits]\nmin_refresh_interval_on_401 = \"1ms\"\n";
    let text = std::fs::read_to_string(&setup.config_path).unwrap() + route + limits;
    std::fs::write(&setup.config_path, text).unwrap();
    let mut running = launch_until(&setup, &[], "trace", "/healthz").await;
    let code = setup.wise.issue_code();
    let mut output = wisegate_at_trace(&setup, &["authorize", "--code", &code]).await;
    assert!(output.contains("now uses the new tokens"), "no hand-over");
    let handed_over = setup.wise.current_access_token().unwrap();
    for path in ["/v1/me", "/v3/applications/7/subscriptions"] {
        assert_eq!(get_at(running.proxy, path).await.0.status(), StatusCode::OK);
    }
    setup.wise.invalidate_access_tokens();
    assert_eq!(
        get_at(running.proxy, "/v1/me").await.0.status(),
        StatusCode::OK,
        "refreshed and replayed"
    );
    let replayed = setup.wise.current_access_token().unwrap();
    let bearers = |wise: &fake_wise::FakeWise| -> Vec<String> {
        wise.requests()
            .iter()
            .filter_map(|r| r.header("authorization"))
            .map(|value| value.replacen("Bearer ", "", 1))
            .collect()
    };
    let app = setup.wise.current_app_token().unwrap();
    let expected = [&handed_over, &app, &handed_over, &replayed];
    let bearers_seen = bearers(&setup.wise);
    assert!(
        bearers_seen.iter().eq(expected),
        "the exact tokens arrived ({:?} characters)",
        bearers_seen.iter().map(String::len).collect::<Vec<_>>()
    );
    assert_eq!((handed_over.len(), app.len()), (700, 900));
    output += &wisegate_at_trace(&setup, &["token", "refresh"]).await;
    output += &wisegate_at_trace(&setup, &["check", "--online"]).await;
    output += &wisegate_at_trace(&setup, &["token", "status"]).await;
    signal(&running.child, "TERM");
    running.child.wait().await.unwrap();
    output += &running.stderr.await.unwrap();

    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.dir.path().join("state/tokens.json")).unwrap())
            .unwrap();
    let config = setup.wise.config();
    // Every token that reached Wise, `check --online`'s too, and the newest of each kind.
    let mut secrets = bearers(&setup.wise);
    secrets.extend([
        setup.wise.current_access_token().unwrap(),
        setup.wise.current_app_token().unwrap(),
        stored["refresh_token"].as_str().unwrap().to_owned(),
        config.client_secret.clone(),
        config.personal_token.clone(),
        code,
    ]);
    common::assert_no_piece_of(&secrets, &output);
    assert!(
        output.contains("TRACE"),
        "the output really was at trace level"
    );
}
