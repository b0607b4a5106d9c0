//! The admin listener: every metric the design names is exposed, with values that follow
//! what happened; labels are route names, never paths.

use crate::common;

use common::{get_at, metric, Harness};
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::test]
async fn metrics_name_everything_and_count_what_happened() {
    let extra = "[[route]]\nname = \"hooks\"\npath = \"/v3/profiles/*/subscriptions/**\"\nmode = \"personal_token\"\n";
    let h = Harness::builder().extra(extra).start().await;
    for path in [
        "/v1/me",
        "/v1/me?x=1",
        "/v3/profiles/7/subscriptions",
        "/test/status/429",
    ] {
        get_at(h.proxy, path).await;
    }
    let (_, body) = h.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&body);
    for name in [
        "wisegate_requests_total",
        "wisegate_request_duration_seconds_bucket",
        "wisegate_requests_in_flight",
        "wisegate_rate_limited_total",
        "wisegate_token_expiry_timestamp_seconds",
        "wisegate_client_cert_expiry_timestamp_seconds",
        "wisegate_rollback_active",
        "wisegate_route_mode",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(!text.contains("/v1/me"), "no raw paths in labels");
    let admin = h.admin;
    assert_eq!(
        metric(
            admin,
            "wisegate_requests_total{route=\"default\",mode=\"oauth_mtls\",status=\"200\"}"
        )
        .await,
        2.0
    );
    assert_eq!(
        metric(
            admin,
            "wisegate_requests_total{route=\"hooks\",mode=\"personal_token\",status=\"200\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(admin, "wisegate_rate_limited_total{route=\"default\"}").await,
        1.0
    );
    assert_eq!(metric(admin, "wisegate_rollback_active").await, 0.0);
    assert_eq!(
        metric(
            admin,
            "wisegate_route_mode{route=\"hooks\",mode=\"personal_token\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            admin,
            "wisegate_route_mode{route=\"hooks\",mode=\"oauth_mtls\"}"
        )
        .await,
        0.0
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let token_expiry = metric(
        admin,
        "wisegate_token_expiry_timestamp_seconds{account=\"default\"}",
    )
    .await;
    assert!(
        (now + 43_000.0..now + 43_300.0).contains(&token_expiry),
        "{token_expiry}"
    );
    assert!(metric(admin, "wisegate_client_cert_expiry_timestamp_seconds").await > now);

    // A refresh shows up by result.
    h.wise.invalidate_access_tokens();
    get_at(h.proxy, "/v1/me").await;
    assert_eq!(
        metric(
            admin,
            "wisegate_token_refresh_total{account=\"default\",result=\"success\"}"
        )
        .await,
        1.0
    );
}

/// Alerts on `increase()`/`rate()` see the first failure only if the series exists
/// before it: every counter with a known label set is at 0 on a fresh process.
#[tokio::test]
async fn counters_with_known_labels_are_exported_at_zero_from_start() {
    let extra = "[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n";
    let h = Harness::builder().extra(extra).start().await;
    let (_, body) = h.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&body);
    let mut expected = Vec::new();
    for result in ["success", "failure"] {
        expected.push(format!(
            "wisegate_token_refresh_total{{account=\"default\",result=\"{result}\"}} 0"
        ));
    }
    for result in ["success", "failure", "cert_rejected"] {
        expected.push(format!(
            "wisegate_config_reload_total{{result=\"{result}\"}} 0"
        ));
    }
    for result in ["match", "mismatch", "error", "dropped"] {
        expected.push(format!(
            "wisegate_shadow_total{{route=\"transfers\",result=\"{result}\"}} 0"
        ));
    }
    for reason in [
        "connection_lost",
        "connect",
        "tls",
        "client_certificate",
        "token",
        "circuit_open",
    ] {
        expected.push(format!(
            "wisegate_fallback_total{{route=\"transfers\",reason=\"{reason}\"}} 0"
        ));
    }
    for route in ["transfers", "default"] {
        for (mode, outcome) in [
            ("oauth_mtls", "passed_to_app"),
            ("personal_token", "passed_to_app"),
            ("personal_token", "signed"),
        ] {
            expected.push(format!(
                "wisegate_sca_challenges_total{{route=\"{route}\",mode=\"{mode}\",outcome=\"{outcome}\"}} 0"
            ));
        }
    }
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("wisegate_fallback_total{route=\"default\""),
        "only routes with fallback = true get fallback series"
    );
}

/// The alert rules and their promtool tests (deploy/prometheus) speak of the series a
/// real wisegate exports: every metric a rule reads exists in `/metrics`, and every
/// input series of the tests has a real metric's name and label names.
#[tokio::test]
async fn the_alert_rules_use_the_series_wisegate_exports() {
    let extra = "[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n";
    let h = Harness::builder().extra(extra).start().await;
    get_at(h.proxy, "/v1/me").await;
    let (_, body) = h.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&body);
    // name -> the label names of each of its samples.
    let mut exported: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(series, _)| series);
        exported.push(split_series(series));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let rules = std::fs::read_to_string(dir.join("wisegate-rules.yaml")).unwrap();
    let mut read = 0;
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("wisegate_") {
            read += 1;
            assert!(
                exported.iter().any(|(name, _)| name == word),
                "wisegate-rules.yaml reads {word}, which /metrics does not export:\n{text}"
            );
        }
    }
    assert!(read >= 6, "the rules read wisegate's metrics");
    let tests = std::fs::read_to_string(dir.join("wisegate-rules.test.yaml")).unwrap();
    let mut checked = 0;
    for line in tests.lines() {
        let Some(series) = line.trim().strip_prefix("- series: '") else {
            continue;
        };
        let (name, mut labels) = split_series(series.trim_end_matches('\''));
        labels.retain(|label| label != "job" && label != "instance");
        checked += 1;
        assert!(
            exported.iter().any(|(n, l)| *n == name && *l == labels),
            "wisegate-rules.test.yaml feeds {series}, which has no counterpart in /metrics:\n{text}"
        );
    }
    assert!(checked >= 10, "the rule tests have input series");
}

/// `name{a="1",b="2"}` -> (name, [a, b]).
fn split_series(series: &str) -> (String, Vec<String>) {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let labels = labels
        .trim_end_matches('}')
        .split(',')
        .filter_map(|pair| pair.split_once('=').map(|(key, _)| key.trim().to_owned()))
        .collect();
    (name.to_owned(), labels)
}

/// `wisegate_ready` follows `/readyz`, and `wisegate_authorization_required` turns 1
/// once Wise refuses the grant, so alerts need no probe of their own.
#[tokio::test]
async fn readiness_and_a_refused_grant_are_metrics() {
    let extra = "[limits]\nmin_refresh_interval_on_401 = \"1ms\"\n";
    let h = Harness::builder().extra(extra).start().await;
    assert_eq!(metric(h.admin, "wisegate_ready").await, 1.0);
    assert_eq!(
        metric(
            h.admin,
            "wisegate_authorization_required{account=\"default\"}"
        )
        .await,
        0.0
    );
    h.wise.revoke_grant();
    let (response, _) = get_at(h.proxy, "/v1/me").await;
    assert_ne!(
        response.status(),
        200,
        "the revoked grant's token is refused"
    );
    assert_eq!(
        metric(
            h.admin,
            "wisegate_authorization_required{account=\"default\"}"
        )
        .await,
        1.0
    );
}
