//! The request path: refuse what an open proxy would accept ([`guard`]), pick the route
//! from the current snapshot, attach the mode's credential in place of whatever the app
//! sent, forward to the mode's upstream ([`send`]: with one replay after a 401) and
//! stream the answer back. One access log line and one set of metrics per request.

mod guard;
pub(crate) mod rewrite;
mod send;

pub use rewrite::rewrite;
pub use send::{RequestHead, REPLAY_BUFFER_BYTES};

use crate::body::{stream, ProxyBody};
use crate::error::ProxyError;
use crate::headers::strip_hop_by_hop;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, RouteModeLabels};
use crate::route::Mode;
use crate::token::CredentialError;
use crate::Shared;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Handles one request from the app; never fails (errors become wisegate's answers).
pub async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<ProxyBody> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let correlation = header_text(request.headers(), "x-external-correlation-id");
    let mut log = AccessLog {
        route: "-".into(),
        mode: "-",
        upstream: "-".into(),
    };
    shared.metrics.in_flight.inc();
    let response = forward(&shared, request, &mut log).await;
    shared.metrics.in_flight.dec();
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(kind = error.kind(), route = %log.route, "{error}");
            error.into_response()
        }
    };
    let elapsed = started.elapsed();
    record(&shared.metrics, &log, response.status());
    shared
        .metrics
        .request_duration
        .get_or_create(&RouteModeLabels {
            route: log.route.clone(),
            mode: log.mode.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "wisegate::access",
        method = %method,
        path = %path,
        route = %log.route,
        mode = log.mode,
        status = response.status().as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        upstream = %log.upstream,
        trace_id = header_text(response.headers(), "x-trace-id").unwrap_or_default(),
        correlation_id = correlation.unwrap_or_default(),
        "request"
    );
    response
}

fn record(metrics: &Metrics, log: &AccessLog, status: StatusCode) {
    let labels = RequestLabels {
        route: log.route.clone(),
        mode: log.mode.to_owned(),
        status: status.as_str().to_owned(),
    };
    metrics.requests.get_or_create(&labels).inc();
    if status == StatusCode::TOO_MANY_REQUESTS {
        metrics
            .rate_limited
            .get_or_create(&RouteLabels {
                route: log.route.clone(),
            })
            .inc();
    }
}

/// What the access line reports about where a request went.
struct AccessLog {
    route: String,
    mode: &'static str,
    upstream: String,
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn forward(
    shared: &Shared,
    request: Request<Incoming>,
    log: &mut AccessLog,
) -> Result<Response<ProxyBody>, ProxyError> {
    let snapshot = shared.snapshot.load_full();
    let limit = snapshot.config.limits.max_body_bytes;
    guard::check(&request, limit)?;
    let (route, mode) = snapshot.select(request.method(), request.uri().path());
    log.route = route.to_owned();
    log.mode = mode.as_str();
    let upstream = snapshot.upstream(mode);
    log.upstream = upstream.target().to_owned();

    if mode != Mode::PersonalToken {
        let identity = shared.resolver.current();
        if identity.not_after <= SystemTime::now() {
            return Err(ProxyError::ClientCertExpired {
                file: identity.cert_file.display().to_string(),
            });
        }
    }
    let bearer = match mode {
        Mode::OAuthMtls => shared.tokens.user_bearer_or_refresh().await?,
        Mode::OAuthClient => shared.tokens.client_bearer().await?,
        Mode::PersonalToken => snapshot.personal_bearer.clone().ok_or_else(|| {
            CredentialError::PersonalTokenMissing {
                reason: "no [personal_token] token_file is configured".into(),
            }
        })?,
    };

    let (parts, body) = request.into_parts();
    let head = rewrite::head(parts, upstream.authority());
    let replay_with = (mode == Mode::OAuthMtls).then_some(&shared.tokens);
    let response = send::send(upstream, head, body, bearer, limit, replay_with).await?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, stream(body)))
}
