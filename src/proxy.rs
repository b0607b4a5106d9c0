//! The request path: refuse what an open proxy would accept, pick the route from the
//! current snapshot, attach the mode's credential in place of whatever the app sent,
//! forward to the mode's upstream and stream the answer back. One access log line per
//! request.

use crate::body::{stream, ProxyBody};
use crate::error::ProxyError;
use crate::headers::strip_hop_by_hop;
use crate::route::Mode;
use crate::token::CredentialError;
use crate::Shared;
use http::{header, HeaderMap, Method, Request, Response, Version};
use http_body_util::Limited;
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
    let response = match forward(&shared, request, &mut log).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(kind = error.kind(), route = %log.route, "{error}");
            error.into_response()
        }
    };
    tracing::info!(
        target: "wisegate::access",
        method = %method,
        path = %path,
        route = %log.route,
        mode = log.mode,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        upstream = %log.upstream,
        trace_id = header_text(response.headers(), "x-trace-id").unwrap_or_default(),
        correlation_id = correlation.unwrap_or_default(),
        "request"
    );
    response
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
        Mode::OAuthMtls => shared.tokens.user_bearer()?,
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
    parts.headers.insert(header::AUTHORIZATION, bearer);
    parts.uri = upstream.uri_for(parts.uri.path_and_query());
    parts.version = Version::HTTP_11;
    let body = stream(Limited::new(
        body,
        usize::try_from(limit).unwrap_or(usize::MAX),
    ));
    let upstream_request = Request::from_parts(parts, body);

    let response = upstream
        .send(upstream_request)
        .await
        .map_err(|error| match error {
            crate::upstream::UpstreamError::BodyTooLarge => ProxyError::BodyTooLarge { limit },
            other => ProxyError::Upstream(other),
        })?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.version = Version::HTTP_11;
    Ok(Response::from_parts(parts, stream(body)))
}
