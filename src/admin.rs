//! The admin listener: `/healthz` (the process answers), `/readyz` (200 only when the
//! config is loaded, the client certificate is valid and every credential some route
//! needs is usable; otherwise 503 with the reasons as JSON). Trouble that does not stop
//! requests yet, such as an unreachable shared token store while the held token is
//! valid, is listed as `degraded` and keeps the status at 200.

use crate::body::{full, ProxyBody};
use crate::route::Mode;
use crate::Shared;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<ProxyBody> {
    match request.uri().path() {
        "/healthz" => json(StatusCode::OK, serde_json::json!({ "status": "ok" })),
        "/readyz" => {
            let reasons = not_ready_reasons(&shared);
            let degraded = degraded_reasons(&shared);
            let (status, mut body) = if reasons.is_empty() {
                (StatusCode::OK, serde_json::json!({ "ready": true }))
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "ready": false, "reasons": reasons }),
                )
            };
            if !degraded.is_empty() {
                body["degraded"] = serde_json::json!(degraded);
            }
            json(status, body)
        }
        "/metrics" => metrics(&shared),
        "/status" => status(&shared, &request),
        _ => json(
            StatusCode::NOT_FOUND,
            crate::error::error_body(
                "not_found",
                "the admin listener serves /healthz, /readyz, /metrics and /status",
            ),
        ),
    }
}

/// Why wisegate should not get traffic now; empty when it should.
pub fn not_ready_reasons(shared: &Shared) -> Vec<String> {
    let mut reasons = Vec::new();
    if shared.shutting_down.load(Ordering::Relaxed) {
        reasons.push("shutting down".to_owned());
    }
    let snapshot = shared.snapshot.load();
    let identity = shared.resolver.current();
    if identity.not_after <= SystemTime::now() {
        reasons.push(format!(
            "the client certificate {} has expired",
            identity.cert_file.display()
        ));
    }
    let modes = needed_modes(&snapshot);
    if modes.contains(&Mode::OAuthMtls) {
        match shared.tokens.last_refresh() {
            Some(outcome) if outcome.grant_refused => reasons.push(format!(
                "the OAuth grant was refused: {}",
                outcome.error.as_deref().unwrap_or("invalid_grant")
            )),
            _ => {
                if let Err(error) = shared.tokens.user_bearer() {
                    reasons.push(error.to_string());
                }
            }
        }
    }
    if modes.contains(&Mode::PersonalToken) && snapshot.personal_bearer.is_none() {
        reasons.push("routes need the personal token but none is configured".to_owned());
    }
    reasons
}

/// What is wrong without stopping requests (yet): the shared token store cannot be
/// reached, so no refresh happens while the held token lasts; or the file store could
/// not be written, so the held token lives in memory only.
pub fn degraded_reasons(shared: &Shared) -> Vec<String> {
    let mut reasons: Vec<String> = shared.tokens.store_trouble().into_iter().collect();
    if let Some(failure) = shared.tokens.store_failure() {
        reasons.push(format!(
            "{failure}: the current token is kept in memory only and a restart would lose it"
        ));
    }
    reasons
}

/// The modes some request could take under the current snapshot.
fn needed_modes(snapshot: &crate::app::Snapshot) -> Vec<Mode> {
    if snapshot.config.rollback_all {
        return vec![Mode::PersonalToken];
    }
    let mut modes = vec![Mode::OAuthMtls];
    for route in snapshot.config.routes.routes() {
        if !modes.contains(&route.mode) {
            modes.push(route.mode);
        }
    }
    modes
}

/// `/status`: HTML for browsers (`Accept: text/html`) or `?format=html`, else JSON.
fn status(shared: &Shared, request: &Request<Incoming>) -> Response<ProxyBody> {
    let value = crate::status::json(shared);
    let wants_html = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("format=html"))
        || request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return json(StatusCode::OK, value);
    }
    let mut response = Response::new(full(crate::status::html(&value)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Refreshes the gauges that mirror state, then renders every metric.
fn metrics(shared: &Shared) -> Response<ProxyBody> {
    let unix = |time: SystemTime| {
        time.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    let metrics = &shared.metrics;
    let expiry = shared.tokens.status().expires_at.map_or(0, unix);
    metrics
        .token_expiry
        .set(i64::try_from(expiry).unwrap_or(i64::MAX));
    if shared.tokens.store().is_shared() {
        let up = i64::from(shared.tokens.store_trouble().is_none());
        metrics.token_store_up.set(up);
    }
    let cert = shared.resolver.current().not_after_unix();
    metrics
        .client_cert_expiry
        .set(i64::try_from(cert).unwrap_or(i64::MAX));
    let mut response = Response::new(full(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
