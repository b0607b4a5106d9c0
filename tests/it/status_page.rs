//! `/status`: the JSON and, rendered by headless Chromium, the HTML page for people.

use crate::common;

use bytes::Bytes;
use common::{eventually, json, send, Harness};
use http::{Request, StatusCode};
use http_body_util::Full;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, SystemTime};

const ROUTES: &str = "[[route]]\nname = \"profile-<hooks>\"\npath = \"/v3/profiles/*/subscriptions/**\"\nmode = \"personal_token\"\n\n[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n";

#[tokio::test]
async fn status_json_describes_routes_credentials_and_config() {
    let h = Harness::builder().extra(ROUTES).start().await;
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

    // The last hour: 60 minutes per series, this minute's answers in the last one.
    let hour = &routes[0]["last_hour"];
    assert_eq!(hour["requests"]["2xx"].as_array().unwrap().len(), 60);
    assert_eq!(hour["requests"]["2xx"][59], 1);
    assert_eq!(hour["ways"]["legacy"][59], 1);
    assert!(hour["latency"]["p99_ms"][59].as_f64().unwrap() > 0.0);
    assert_eq!(routes[1]["last_hour"]["ways"]["mtls"][59], 1);
    assert_eq!(routes[2]["last_hour"]["requests"]["5xx"][59], 1);
    assert_eq!(status["last_hour"]["minute_s"], 60);
    // One serde type: what `token status` reads back is what was sent.
    let typed: wisegate::status::Status = serde_json::from_value(status.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), status);
}

/// Headless Chromium with a profile of its own.
struct Browser {
    binary: &'static str,
    profile: tempfile::TempDir,
}

impl Browser {
    fn find() -> Browser {
        let binary = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|name| {
                std::process::Command::new(name)
                    .arg("--version")
                    .output()
                    .is_ok()
            })
            .expect("headless Chromium is installed (.ci/run installs Debian's chromium)");
        Browser {
            binary,
            profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, url: &str, (width, height): (u32, u32), extra: &str) -> Output {
        tokio::process::Command::new(self.binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .arg(extra)
            .arg(url)
            .output()
            .await
            .unwrap()
    }

    /// The DOM as Chromium built it (scripts run).
    async fn dom(&self, url: &str, size: (u32, u32)) -> String {
        let output = self.run(url, size, "--dump-dom").await;
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A PNG screenshot of the page at `size`, written to `file`.
    async fn screenshot(&self, url: &str, size: (u32, u32), file: &Path) {
        let shot = self
            .run(url, size, &format!("--screenshot={}", file.display()))
            .await;
        assert!(
            shot.status.success(),
            "{}",
            String::from_utf8_lossy(&shot.stderr)
        );
        let png = std::fs::read(file).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    }
}

/// A desktop and a phone.
const WIDTHS: [(u32, u32); 2] = [(1280, 1400), (390, 2600)];

#[tokio::test]
async fn the_html_page_renders_in_headless_chromium() {
    let h = Harness::builder()
        .extra(format!("{ROUTES}\n[rollback]\nall = true\n"))
        .start()
        .await;
    h.get("/v1/transfers/1").await;
    // The probe at start is on the time line once it has answered.
    let probed = eventually(Duration::from_secs(10), async || {
        json(&h.admin_get("/status").await.1)["rollback_readiness"]["state"] == "available"
    })
    .await;
    assert!(probed, "the rollback-readiness probe answered");
    let request = Request::get(format!("http://{}/status", h.admin))
        .header("accept", "text/html")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (response, page) = send(request).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = String::from_utf8_lossy(&page);
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "nothing external"
    );

    let browser = Browser::find();
    let url = format!("http://{}/status?format=html", h.admin);
    for size in WIDTHS {
        let dom = browser.dom(&url, size).await;
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
        // Each route's graphs, the default route's too, and the probe on the time line.
        for route in ["profile-&lt;hooks&gt;", "transfers", "default"] {
            let card = format!("<section class=\"route\" data-route=\"{route}\">");
            let at = dom.find(&card).unwrap_or_else(|| panic!("{card} in {dom}"));
            assert!(dom[at..].contains("<svg class=\"requests\""), "{route}");
            assert!(dom[at..].contains("<svg class=\"latency\""), "{route}");
        }
        let transfers = dom.find("data-route=\"transfers\"><h3>").unwrap();
        assert!(
            dom[transfers..].contains("<svg class=\"requests\"")
                && dom[transfers..].contains("<path class=\"s2\" d=\"M0 "),
            "the one 2xx is drawn as an area: {dom}"
        );
        assert!(
            dom.contains("<path class=\"e ok\" data-kind=\"readiness_probe\""),
            "the probe is on the time line: {dom}"
        );

        let screenshot = h.dir.path().join(format!("status-{}.png", size.0));
        browser.screenshot(&url, size, &screenshot).await;
        if let Ok(keep) = std::env::var("WISEGATE_KEEP_SCREENSHOT") {
            std::fs::copy(&screenshot, format!("{keep}-{}.png", size.0)).unwrap();
        }
    }
}

/// The scripted hour's routes: an OAuth route with fallback and shadow, a personal-token
/// route, a slow one, and the default route.
const HOUR_ROUTES: &str = "[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n\n[[route]]\nname = \"profiles\"\npath = \"/v3/profiles/**\"\nmode = \"personal_token\"\n\n[[route]]\nname = \"slow-reports\"\npath = \"/test/**\"\n";

/// A minute of traffic: more at the top of the hour, some 4xx and 5xx, latency that
/// rises and falls.
async fn a_minute_of_traffic(h: &Harness, minute: u64) {
    let busy = 4 + (minute * 7) % 9;
    for i in 0..busy {
        h.get(&format!("/v1/transfers/{i}")).await;
        if i % 2 == 0 {
            h.get(&format!("/v3/profiles/{i}")).await;
        }
    }
    let slow_ms = 5 + (minute % 20) * 4;
    h.get(&format!("/test/slow?ms={slow_ms}")).await;
    h.get(&format!("/test/slow?ms={}", slow_ms / 2)).await;
    if minute % 5 == 0 {
        h.get("/test/status/404").await;
    }
    if (40..44).contains(&minute) {
        h.get("/test/status/503").await;
        h.get("/test/status/503").await;
    }
    h.get("/v1/rates").await;
}

async fn status_of(h: &Harness) -> serde_json::Value {
    json(&h.admin_get("/status").await.1)
}

/// Writes `text` as the config and waits until the running wisegate has taken it in
/// (`until` holds for `/status`).
async fn reconfigure(h: &Harness, text: &str, until: impl Fn(&serde_json::Value) -> bool) {
    std::fs::write(&h.config_path, text).unwrap();
    let taken = eventually(Duration::from_secs(20), async || until(&status_of(h).await)).await;
    assert!(taken, "the reload happened");
}

/// The done-when of issue 20: after a scripted hour (traffic, a token refresh, a rejected
/// reload, a rollback flip and back) with the history's clock moved a minute per step,
/// the page shows each event where it happened. Writes `target/status-hour-1280.png`
/// and `target/status-hour-390.png` to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the scripted hour (about a minute): writes target/status-hour-*.png to look at"]
async fn a_scripted_hour_shows_each_event_where_it_happened() {
    let clock = wisegate::history::Clock::manual(SystemTime::now() - Duration::from_secs(3600));
    let h = Harness::builder()
        .extra(HOUR_ROUTES)
        .clock(clock.clone())
        .start()
        .await;
    let original = std::fs::read_to_string(&h.config_path).unwrap();
    let generation = |status: &serde_json::Value| status["config"]["generation"].as_u64().unwrap();
    let mut expected: Vec<(u64, &str, bool)> = Vec::new();
    for minute in 0..60u64 {
        a_minute_of_traffic(&h, minute).await;
        match minute {
            12 => {
                let sha = wisegate::config::Config::load(&h.config_path)
                    .unwrap()
                    .sha256;
                let refresh = Request::post(format!("http://{}/token/refresh", h.admin))
                    .header("x-wisegate-config-sha256", sha)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                assert_eq!(send(refresh).await.0.status(), StatusCode::OK);
                expected.push((minute, "token_refresh", true));
            }
            24 => {
                let broken = format!("{original}\nrolback = true\n");
                reconfigure(&h, &broken, |s| {
                    s["config"]["last_reload"]["result"] == "failure"
                })
                .await;
                expected.push((minute, "config_reload", false));
            }
            27 => {
                reconfigure(&h, &original, |s| generation(s) == 2).await;
                expected.push((minute, "config_reload", true));
            }
            36 => {
                let rollback = format!("{original}\n[rollback]\nall = true\n");
                reconfigure(&h, &rollback, |s| s["rollback_all"] == true).await;
                expected.push((minute, "rollback_flip", false));
            }
            48 => {
                reconfigure(&h, &original, |s| s["rollback_all"] == false).await;
                expected.push((minute, "rollback_flip", true));
            }
            _ => {}
        }
        if minute < 59 {
            clock.advance(Duration::from_secs(60));
        }
    }

    let status = status_of(&h).await;
    let start = status["last_hour"]["start_unix"].as_u64().unwrap();
    let events = status["last_hour"]["events"].as_array().unwrap();
    for (minute, kind, ok) in &expected {
        let found = events.iter().any(|event| {
            event["kind"] == *kind
                && event["ok"] == *ok
                && (event["at_unix"].as_u64().unwrap() - start) / 60 == *minute
        });
        assert!(found, "{kind} (ok: {ok}) in minute {minute}: {events:?}");
    }
    let transfers = &status["routes"][0]["last_hour"]["ways"];
    assert!(
        transfers["legacy"][40].as_u64().unwrap() > 0,
        "rolled back in minute 40"
    );
    assert!(
        transfers["mtls"][50].as_u64().unwrap() > 0,
        "back on mTLS in minute 50"
    );

    let (_, page) = h.admin_get("/status?format=html").await;
    println!("page: {} bytes", page.len());
    assert!(page.len() < 150 * 1024);
    let browser = Browser::find();
    let url = format!("http://{}/status?format=html", h.admin);
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    for size in WIDTHS {
        let dom = browser.dom(&url, size).await;
        for route in ["transfers", "profiles", "slow-reports", "default"] {
            assert!(dom.contains(&format!("<section class=\"route\" data-route=\"{route}\">")));
        }
        // Each event of the JSON is marked on its lane where it happened.
        for event in events {
            let at = event["at_unix"].as_u64().unwrap();
            let mark = format!("data-at=\"{at}\" d=\"M{} 0V10\"", at - start);
            assert!(dom.contains(&mark), "{event} marked: {dom}");
        }
        let file = target.join(format!("status-hour-{}.png", size.0));
        browser.screenshot(&url, size, &file).await;
        println!("screenshot: {}", file.display());
    }
}
