//! The request path: refuse what an open proxy would accept ([`guard`]), pick the route
//! from the current snapshot, attach the mode's credential in place of whatever the app
//! sent, forward to the mode's upstream ([`send`]: with one replay after a 401) and
//! stream the answer back. One access log line and one set of metrics per request.

mod fallback;
pub mod guard;
pub mod rewrite;
mod send;
mod shadow;

pub use send::{RequestHead, REPLAY_BUFFER_BYTES};

/// Migration-safety state that outlives config snapshots: fallback breakers and the
/// bound on shadow copies.
#[derive(Debug, Default)]
pub struct Migration {
    pub breakers: fallback::Breakers,
    pub shadow_permits: shadow::ShadowPermits,
}

use crate::app::Snapshot;
use crate::body::{stream, ProxyBody};
use crate::body_stall::{BodyStalled, Sender, StallGuard};
use crate::error::ProxyError;
use crate::headers::strip_hop_by_hop;
use crate::metrics::RouteReasonLabels;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, RouteModeLabels};
use crate::route::Mode;
use crate::sca;
use crate::token::CredentialError;
use crate::upstream::UpstreamBody;
use crate::Shared;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus_client::metrics::gauge::Gauge;
use send::AppBody;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Handles one request from the app; never fails (errors become wisegate's answers).
pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    // What only the access line needs is copied only when the line is written (the
    // copies share the request's buffers).
    let asked = tracing::enabled!(target: "wisegate::access", tracing::Level::INFO).then(|| {
        (
            request.method().clone(),
            request.uri().clone(),
            request.headers().get(CORRELATION_ID).cloned(),
        )
    });
    let mut log = AccessLog {
        chosen: None,
        mode: "-",
        sent_to: None,
    };
    let in_flight = InFlight::enter(&shared.metrics.in_flight);
    let response = forward(&shared, request, &mut log).await;
    drop(in_flight);
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(kind = error.kind(), route = log.route(), "{error}");
            error.into_response()
        }
    };
    let elapsed = started.elapsed();
    record(&shared.metrics, &log, response.status(), elapsed);
    if let Some((method, uri, correlation)) = asked {
        let upstream = match &log.chosen {
            Some((snapshot, _)) => log.sent_to.map(|side| snapshot.upstream(side).target()),
            None => None,
        };
        tracing::info!(
            target: "wisegate::access",
            method = %method,
            path = uri.path(),
            route = log.route(),
            mode = log.mode,
            status = response.status().as_u16(),
            duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            upstream = upstream.unwrap_or("-"),
            trace_id = header_text(response.headers(), "x-trace-id").unwrap_or_default(),
            correlation_id = correlation.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default(),
            "request"
        );
    }
    response
}

const CORRELATION_ID: &str = "x-external-correlation-id";

/// Counts a request in `wisegate_requests_in_flight` until dropped: also when the app
/// hangs up and hyper drops the request's future before it finishes.
struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a Gauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts one answer: metrics and the route's `/status` counts.
fn record(metrics: &Metrics, log: &AccessLog, status: StatusCode, elapsed: Duration) {
    // Refused before a route was chosen: route "-" (the one label that allocates).
    let route: Arc<str> = match &log.chosen {
        Some((snapshot, index)) => {
            snapshot.counts[*index].record(status.as_u16());
            snapshot.labels[*index].clone()
        }
        None => Arc::from("-"),
    };
    metrics
        .request_duration
        .get_or_create(&RouteModeLabels {
            route: route.clone(),
            mode: log.mode,
        })
        .observe(elapsed.as_secs_f64());
    if status == StatusCode::TOO_MANY_REQUESTS {
        metrics
            .rate_limited
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .inc();
    }
    let labels = RequestLabels {
        route,
        mode: log.mode,
        status: status.as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
}

/// What the access line and the metrics report about where a request went.
struct AccessLog {
    /// The snapshot and the index of the route, once chosen.
    chosen: Option<(Arc<Snapshot>, usize)>,
    mode: &'static str,
    /// The side the answer came from.
    sent_to: Option<Mode>,
}

impl AccessLog {
    fn route(&self) -> &str {
        match &self.chosen {
            Some((snapshot, index)) => &snapshot.labels[*index],
            None => "-",
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn forward(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    log: &mut AccessLog,
) -> Result<Response<ProxyBody>, ProxyError> {
    let snapshot = shared.snapshot.load_full();
    let limit = snapshot.config.limits.max_body_bytes;
    guard::check(&request, limit)?;
    let selected = snapshot.route(request.method(), request.uri().path());
    let route = selected.label.clone();
    log.mode = selected.mode.as_str();
    log.chosen = Some((snapshot.clone(), selected.index));

    // Keep the body when a second send may be needed and the route allows one.
    let sca = selected.mode == Mode::PersonalToken
        && snapshot.sca.is_some()
        && !sca::app_signs(request.headers());
    let keep = selected.mode == Mode::OAuthMtls || selected.fallback.is_some() || sca;
    let shadow = selected.shadow && shadow::applies(request.method());
    let idempotent = request.method().is_idempotent();
    let (parts, body) = request.into_parts();
    let head = rewrite::head(parts, snapshot.upstream(selected.mode).authority());
    let mut body = AppBody::prepare(body, keep, &snapshot.config.limits).await?;

    let mut side = selected.mode;
    if let Some(cooldown) = selected.fallback {
        if shared.migration.breakers.decide(&route, cooldown) == fallback::Decision::Legacy {
            count_fallback(shared, &route, "circuit_open");
            side = Mode::PersonalToken;
        }
    }
    let response = if side == Mode::PersonalToken {
        if side == selected.mode {
            send_legacy(&snapshot, &head, &mut body, limit, sca).await
        } else {
            send_legacy_instead(&snapshot, &head, &mut body, limit).await
        }
    } else {
        match send_oauth(shared, &snapshot, side, &head, &mut body, limit).await {
            Ok(response) => {
                if selected.fallback.is_some() {
                    shared.migration.breakers.success(&route);
                }
                Ok(response)
            }
            Err(error) => match (selected.fallback, fallback::reason(&error, idempotent)) {
                // The failure counts for the breaker whatever the body; only a kept body
                // can be sent again. Nothing reached Wise: the personal-token way is safe
                // for any method.
                (Some(cooldown), Some(reason)) => {
                    shared.migration.breakers.failure(&route, cooldown);
                    if !body.is_kept() {
                        return Err(error);
                    }
                    count_fallback(shared, &route, reason);
                    tracing::info!(%route, %reason, "mTLS side unusable ({error}); sending the personal-token way");
                    side = Mode::PersonalToken;
                    send_legacy_instead(&snapshot, &head, &mut body, limit).await
                }
                _ => Err(error),
            },
        }
    }?;
    log.mode = side.as_str();
    log.sent_to = Some(side);
    sca::count(&shared.metrics, &route, side, &response);
    // wisegate never asks for an upgrade (it strips `Upgrade`), so a 101 is a protocol
    // error: passed on, an HTTP/1.1 app got a bare 101 and a close, an h2c app a
    // `:status 101` its HTTP/2 stack must reject. (hyper handles other 1xx itself.)
    if response.status().is_informational() {
        return Err(ProxyError::UpstreamProtocol {
            target: snapshot.upstream(side).target().to_owned(),
            status: response.status().as_u16(),
        });
    }

    if shadow {
        let primary = shadow::Primary {
            route,
            side,
            status: response.status(),
            trace_id: header_text(response.headers(), "x-trace-id"),
        };
        shadow::spawn(shared.clone(), snapshot.clone(), head, primary);
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    // Wise pausing its body for longer than upstream_timeout: the answer is cut off (the
    // app sees it break off, never a short body that looks complete) and its slot freed.
    let label = snapshot.labels[selected.index].clone();
    let body = StallGuard::new(
        body,
        snapshot.config.limits.upstream_timeout,
        Sender::Upstream,
    )
    .map_err(move |error| {
        if let Some(stalled) = error.downcast_ref::<BodyStalled>() {
            tracing::warn!(route = &*label, "{stalled}");
        }
        error
    });
    Ok(Response::from_parts(parts, stream(body)))
}

fn count_fallback(shared: &Shared, route: &str, reason: &str) {
    let labels = RouteReasonLabels::of(route, reason);
    shared.metrics.fallback.get_or_create(&labels).inc();
}

/// The mTLS side: the client certificate must be current and the route's OAuth token
/// usable before anything is sent.
async fn send_oauth(
    shared: &Arc<Shared>,
    snapshot: &Snapshot,
    mode: Mode,
    head: &RequestHead,
    body: &mut AppBody,
    limit: u64,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let identity = shared.resolver.current();
    if identity.check_current().is_err() {
        return Err(ProxyError::ClientCertExpired {
            file: identity.cert_file.display().to_string(),
        });
    }
    if mode == Mode::OAuthClient {
        let bearer = shared.tokens.client_bearer().await?;
        return send::send_once(&snapshot.mtls, head, body, bearer, limit).await;
    }
    let bearer = shared.tokens.user_bearer_or_refresh().await?;
    send::send_with_user_token(&snapshot.mtls, head, body, bearer, limit, &shared.tokens).await
}

/// An OAuth route's request sent the personal-token way (fallback), SCA left to the app.
async fn send_legacy_instead(
    snapshot: &Snapshot,
    head: &RequestHead,
    body: &mut AppBody,
    limit: u64,
) -> Result<Response<UpstreamBody>, ProxyError> {
    send_legacy(snapshot, &head.to(&snapshot.legacy), body, limit, false).await
}

/// The personal-token side; with `sca`, a challenge to a kept request is signed and the
/// request repeated once with `x-2fa-approval` and `X-Signature`.
async fn send_legacy(
    snapshot: &Snapshot,
    head: &RequestHead,
    body: &mut AppBody,
    limit: u64,
    sca: bool,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let bearer =
        snapshot
            .personal_bearer
            .clone()
            .ok_or_else(|| CredentialError::PersonalTokenMissing {
                reason: "no [personal_token] token_file is configured".into(),
            })?;
    let response = send::send_once(&snapshot.legacy, head, body, bearer.clone(), limit).await?;
    let (Some(signer), true) = (snapshot.sca.as_ref().filter(|_| sca), body.is_kept()) else {
        return Ok(response);
    };
    let Some(one_time_token) = sca::challenge(response.status(), response.headers()) else {
        return Ok(response);
    };
    // The challenge gives back its upstream slot before the signed repeat takes one.
    drop(response);
    let mut signed = head.clone();
    sca::approve(
        &mut signed.headers,
        &one_time_token,
        &signer.sign(&one_time_token),
    );
    tracing::info!("SCA challenge on the personal-token path: signed and repeated once");
    send::send_once(&snapshot.legacy, &signed, body, bearer, limit)
        .await
        .map(sca::mark_signed)
}
