//! `wisegate authorize`: with `--code` (through the binary) and through the local
//! callback listener; both store a token that `run` then uses. Also: a key that does not
//! match the certificate stops start-up, naming both files.

use crate::common;

use bytes::Bytes;
use common::{get_at, send, serve, Harness, Setup};
use fake_wise::FakeWiseConfig;
use http::{Request, StatusCode};
use http_body_util::Full;
use std::os::unix::fs::PermissionsExt;
use wisegate::config::Config;

/// Runs `wisegate authorize --code CODE`, asserts it succeeded; its stdout.
async fn authorize_code(config: &std::path::Path, code: &str) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(["authorize", "--config"])
        .arg(config)
        .args(["--code", code])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn proxied_status(config: Config) -> StatusCode {
    get_at(serve(config).await.proxy, "/v1/me").await.0.status()
}

#[tokio::test]
async fn the_binary_exchanges_a_code_and_stores_tokens_0600() {
    let Setup {
        wise,
        client_ca: _,
        server_ca: _,
        dir,
        config_path: path,
    } = Harness::builder().setup().await;
    let stdout = authorize_code(&path, &wise.issue_code()).await;
    assert!(stdout.contains("Authorized. Tokens stored in"), "{stdout}");
    let token = wise.current_access_token().unwrap();
    assert!(!stdout.contains(&token), "the token is never printed");
    let store = dir.path().join("state/tokens.json");
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(wise.token_calls().authorization_code, 1);

    // A used code is refused with a message that says what to do.
    let config = Config::load(&path).unwrap();
    let used = wisegate::authorize::authorize(
        &config,
        Some("not-a-valid-code".into()),
        tokio::io::empty(),
        |_| {},
    )
    .await;
    assert!(used
        .unwrap_err()
        .to_string()
        .contains("run `wisegate authorize` again"));

    assert_eq!(proxied_status(config).await, StatusCode::OK);
}

#[tokio::test]
async fn the_callback_listener_catches_the_redirect_and_checks_state() {
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fake = FakeWiseConfig {
        redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        ..FakeWiseConfig::default()
    };
    let Setup {
        wise,
        client_ca: _,
        server_ca: _,
        dir: _dir,
        config_path: path,
    } = Harness::builder().fake(fake).setup().await;
    let config = Config::load(&path).unwrap();

    let (url_tx, mut url_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let flow_config = config.clone();
    let flow = tokio::spawn(async move {
        wisegate::authorize::authorize(&flow_config, None, tokio::io::empty(), move |text| {
            if let Some(url) = text
                .split_whitespace()
                .find(|w| w.starts_with("http") && w.contains("state="))
            {
                let _ = url_tx.send(url.to_owned());
            }
        })
        .await
    });
    let url = url_rx
        .recv()
        .await
        .expect("wisegate prints the authorize URL");
    assert!(url.starts_with(&wise.authorize_url()), "{url}");
    assert!(url.contains("client_id=wisegate-test"), "{url}");

    // The browser: Wise's page redirects, the redirect lands on wisegate's listener.
    let (redirect, _) = send(Request::get(&url).body(Full::new(Bytes::new())).unwrap()).await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let (landed, page) = loop {
        // The listener may still be binding: retry a refused connection a few times.
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        match client
            .request(
                Request::get(&location)
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
        {
            Ok(response) => {
                let status = response.status();
                let body = http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                break (status, body);
            }
            Err(_) => tokio::task::yield_now().await,
        }
    };
    assert_eq!(landed, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("You can close this tab"));
    let authorized = flow.await.unwrap().expect("authorization completes");
    assert_eq!(authorized.profile_id.as_deref(), Some("12345"));
    assert_eq!(proxied_status(config).await, StatusCode::OK);
}

/// `--code` takes the whole redirect URL as the browser showed it, not only the code.
#[tokio::test]
async fn the_binary_takes_the_whole_redirect_url_as_code() {
    let Setup {
        wise,
        client_ca: _,
        server_ca: _,
        dir: _dir,
        config_path: path,
    } = Harness::builder().setup().await;
    let url = format!(
        "https://www.yourapp.com/?code={}&state=from-an-earlier-run&profileId=777",
        wise.issue_code()
    );
    let stdout = authorize_code(&path, &url).await;
    assert!(stdout.contains("profileId: 777"), "{stdout}");
    assert_eq!(wise.token_calls().authorization_code, 1);
    assert_eq!(
        proxied_status(Config::load(&path).unwrap()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_pasted_redirect_with_the_wrong_state_is_refused() {
    let Setup {
        wise,
        client_ca: _,
        server_ca: _,
        dir: _dir,
        config_path: path,
    } = Harness::builder()
        .fake(FakeWiseConfig {
            redirect_uri: "https://www.yourapp.com/back".into(),
            ..FakeWiseConfig::default()
        })
        .setup()
        .await;
    let config = Config::load(&path).unwrap();
    let pasted = format!(
        "https://www.yourapp.com/back?code={}&state=forged&profileId=1\n",
        wise.issue_code()
    );
    let error = wisegate::authorize::authorize(&config, None, pasted.as_bytes(), |_| {})
        .await
        .unwrap_err();
    assert!(error.to_string().contains("state `forged`"), "{error}");
    assert_eq!(
        wise.token_calls().authorization_code,
        0,
        "the code was not exchanged"
    );
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_stops_start_up() {
    let Setup {
        wise: _wise,
        client_ca,
        server_ca: _,
        dir,
        config_path: path,
    } = Harness::builder().setup().await;
    std::fs::write(
        dir.path().join("client.key"),
        client_ca.client_cert("Other").key_pem,
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let error = serve(config)
        .await
        .task
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("client.key")
            && error.contains("client.crt")
            && error.contains("does not match"),
        "{error}"
    );
}

#[tokio::test]
async fn token_status_shows_expiry_never_the_token_and_token_refresh_refreshes() {
    let Setup {
        wise,
        client_ca: _,
        server_ca: _,
        dir: _dir,
        config_path,
    } = Harness::builder().setup().await;
    let config = Config::load(&config_path).unwrap();
    wisegate::authorize::authorize(&config, Some(wise.issue_code()), tokio::io::empty(), |_| {})
        .await
        .unwrap();
    let wisegate = |args: &'static [&'static str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"));
        command.args(args).arg("--config").arg(&config_path);
        command
    };
    let before = wise.current_access_token().unwrap();
    let status = wisegate(&["token", "status"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{stdout}");
    assert!(
        stdout.contains("access token:   valid, expires"),
        "{stdout}"
    );
    assert!(!stdout.contains(&before), "never the token: {stdout}");

    let refresh = wisegate(&["token", "refresh"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&refresh.stdout);
    assert!(
        refresh.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&refresh.stderr)
    );
    assert!(stdout.contains("Refreshed."), "{stdout}");
    assert_eq!(wise.token_calls().refresh_token, 1);
    let after = wise.current_access_token().unwrap();
    assert_ne!(before, after);
    assert!(!stdout.contains(&after));
    // The refreshed token is the one stored: a new run uses it without refreshing.
    assert_eq!(proxied_status(config).await, StatusCode::OK);
    assert_eq!(wise.token_calls().refresh_token, 1);
}
