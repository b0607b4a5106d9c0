//! `/status`: the JSON and, rendered by headless Chromium, the HTML page for people.

mod common;

use bytes::Bytes;
use common::{json, send, Harness, Options};
use http::{Request, StatusCode};
use http_body_util::Full;

const ROUTES: &str = "[[route]]\nname = \"profile-<hooks>\"\npath = \"/v3/profiles/*/subscriptions/**\"\nmode = \"personal_token\"\n\n[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n";

#[tokio::test]
async fn status_json_describes_routes_credentials_and_config() {
    let h = Harness::with_extra(ROUTES).await;
    h.get("/v1/transfers/1").await;
    h.get("/v3/profiles/1/subscriptions").await;
    h.get("/test/status/503").await;
    let (response, body) = h.admin_get("/status").await;
    assert_eq!(response.status(), StatusCode::OK);
    let status = json(&body);
    assert_eq!(status["ready"], true);
    assert_eq!(status["rollback_all"], false);
    assert_eq!(status["config"]["generation"], 1);
    assert_eq!(status["config"]["sha256"].as_str().unwrap().len(), 64);
    let routes = status["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3, "two routes and the default");
    assert_eq!(routes[0]["effective_mode"], "personal_token");
    assert_eq!(routes[0]["responses"]["2xx"], 1);
    assert_eq!(routes[1]["shadow"], true);
    assert_eq!(routes[1]["fallback"]["open"], false);
    assert_eq!(routes[2]["name"], "default");
    assert_eq!(routes[2]["responses"]["5xx"], 1);
    assert!(status["token"]["expires_unix"].as_u64().unwrap() > 0);
    assert!(status["client_certificate"]["file"]
        .as_str()
        .unwrap()
        .ends_with("client.crt"));
}

#[tokio::test]
async fn the_html_page_renders_in_headless_chromium() {
    let h = Harness::start_with(Options {
        extra: format!("{ROUTES}\n[rollback]\nall = true\n"),
        ..Options::default()
    })
    .await;
    let request = Request::get(format!("http://{}/status", h.admin))
        .header("accept", "text/html")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, _) = send(request).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );

    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            std::process::Command::new(name)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("headless Chromium is installed (.ci/run installs Debian's chromium)");
    let profile = tempfile::tempdir().unwrap();
    let screenshot = h.dir.path().join("status.png");
    let url = format!("http://{}/status?format=html", h.admin);
    let browser = |extra: &[String]| {
        let mut command = tokio::process::Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1200,700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url);
        command
    };
    let dom = browser(&["--dump-dom".into()]).output().await.unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    // The DOM as Chromium built it: table rows, escaped names, and the script's output.
    assert!(
        dom.contains("<tr data-route=\"profile-&lt;hooks&gt;\">"),
        "{dom}"
    );
    assert!(dom.contains("<tr data-route=\"transfers\">"), "{dom}");
    assert!(
        dom.contains("ON: every route goes to the legacy host"),
        "{dom}"
    );
    assert!(
        dom.contains("class=\"changed\">personal_token"),
        "rollback shows as a changed effective mode"
    );
    assert!(
        dom.contains("(in 12 h)") || dom.contains("(in 11 h)"),
        "the script turned the token expiry into a relative time: {dom}"
    );
    assert!(
        dom.contains("(in 365 d)") || dom.contains("(in 364 d)") || dom.contains("(in 366 d)"),
        "certificate expiry rendered"
    );

    let shot = browser(&[format!("--screenshot={}", screenshot.display())])
        .output()
        .await
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Ok(keep) = std::env::var("WISEGATE_KEEP_SCREENSHOT") {
        std::fs::copy(&screenshot, keep).unwrap();
    }
}
