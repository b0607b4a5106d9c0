//! The admin listener: every metric the design names is exposed, with values that follow
//! what happened; labels are route names, never paths.

mod common;

use common::{get_at, metric, Harness};
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::test]
async fn metrics_name_everything_and_count_what_happened() {
    let extra = "[[route]]\nname = \"hooks\"\npath = \"/v3/profiles/*/subscriptions/**\"\nmode = \"personal_token\"\n";
    let h = Harness::with_extra(extra).await;
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
    let token_expiry = metric(admin, "wisegate_token_expiry_timestamp_seconds").await;
    assert!(
        (now + 43_000.0..now + 43_300.0).contains(&token_expiry),
        "{token_expiry}"
    );
    assert!(metric(admin, "wisegate_client_cert_expiry_timestamp_seconds").await > now);

    // A refresh shows up by result.
    h.wise.invalidate_access_tokens();
    get_at(h.proxy, "/v1/me").await;
    assert_eq!(
        metric(admin, "wisegate_token_refresh_total{result=\"success\"}").await,
        1.0
    );
}

/// Alerts on `increase()`/`rate()` see the first failure only if the series exists
/// before it: every counter with a known label set is at 0 on a fresh process.
#[tokio::test]
async fn counters_with_known_labels_are_exported_at_zero_from_start() {
    let extra = "[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nfallback = true\nshadow = true\n";
    let h = Harness::with_extra(extra).await;
    let (_, body) = h.admin_get("/metrics").await;
    let text = String::from_utf8_lossy(&body);
    let mut expected = Vec::new();
    for result in ["success", "failure"] {
        expected.push(format!(
            "wisegate_token_refresh_total{{result=\"{result}\"}} 0"
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
