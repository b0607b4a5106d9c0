//! The request path: refuse what an open proxy would accept, pick the route from the
//! current snapshot, attach the mode's credential in place of whatever the app sent,
//! forward to the mode's upstream and stream the answer back. One access log line per
//! request.

use crate::body::{full, stream, ProxyBody};
use crate::error::ProxyError;
use crate::headers::strip_hop_by_hop;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, RouteModeLabels};
use crate::route::Mode;
use crate::token::CredentialError;
use crate::upstream::UpstreamError;
use crate::Shared;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Instant;

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
    if request.method() == Method::CONNECT {
        return Err(ProxyError::ConnectRefused);
    }
    // HTTP/2 always carries :authority; for HTTP/1 an authority means absolute-form.
    if request.version() != Version::HTTP_2 && request.uri().authority().is_some() {
        return Err(ProxyError::AbsoluteForm);
    }
    let snapshot = shared.snapshot.load_full();
    let (route, mode) = snapshot.select(request.method(), request.uri().path());
    log.route = route.to_owned();
    log.mode = mode.as_str();
    let upstream = snapshot.upstream(mode);
    log.upstream = upstream.target().to_owned();

    let limit = snapshot.config.limits.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
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

    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::AUTHORIZATION);
    parts.uri = upstream.uri_for(parts.uri.path_and_query());
    parts.version = Version::HTTP_11;
    let send = |parts: &RequestHead, bearer: HeaderValue, body: ProxyBody| {
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = parts.uri.clone();
        *request.headers_mut() = parts.headers.clone();
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        upstream.send(request)
    };
    let head = RequestHead {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
    };
    let too_large = |error| match error {
        UpstreamError::BodyTooLarge => ProxyError::BodyTooLarge { limit },
        other => ProxyError::Upstream(other),
    };

    // A user-token request small enough to keep can be replayed once after a 401 (the
    // token was invalidated, e.g. by a refresh elsewhere); others stream through.
    let replayable = mode == Mode::OAuthMtls
        && body
            .size_hint()
            .exact()
            .is_some_and(|n| n <= REPLAY_BUFFER_BYTES);
    let response = if replayable {
        let kept = Limited::new(body, REPLAY_BUFFER_BYTES as usize)
            .collect()
            .await
            .map_err(|error| {
                ProxyError::Upstream(UpstreamError::Other {
                    target: "the app".into(),
                    detail: format!("reading the request body failed: {error}"),
                })
            })?
            .to_bytes();
        let first = send(&head, bearer.clone(), full(kept.clone()))
            .await
            .map_err(too_large)?;
        if first.status() == StatusCode::UNAUTHORIZED {
            // Never loop: one refresh, one replay; a second 401 goes to the app.
            let fresh = shared.tokens.replace_rejected(&bearer).await?;
            tracing::info!(route = %log.route, "Wise answered 401; replaying once with the refreshed token");
            send(&head, fresh, full(kept)).await.map_err(too_large)?
        } else {
            first
        }
    } else {
        let body = stream(Limited::new(
            body,
            usize::try_from(limit).unwrap_or(usize::MAX),
        ));
        let response = send(&head, bearer.clone(), body).await.map_err(too_large)?;
        if response.status() == StatusCode::UNAUTHORIZED && mode == Mode::OAuthMtls {
            // Not replayable, but the next request should not meet the same 401.
            let tokens = shared.tokens.clone();
            tokio::spawn(async move { tokens.replace_rejected(&bearer).await });
        }
        response
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, stream(body)))
}

/// The most request body kept for a replay after a 401.
pub const REPLAY_BUFFER_BYTES: u64 = 64 * 1024;

/// What is kept of a request to send it (again).
struct RequestHead {
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
}
