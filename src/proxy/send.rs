//! Sending a request upstream, with the one replay the token lifecycle allows: a
//! user-token request whose body is small enough to keep (at most
//! [`REPLAY_BUFFER_BYTES`]) is sent with a kept copy and, if Wise answers 401 (the token
//! was invalidated, e.g. by a refresh elsewhere), sent once more with the refreshed
//! token. Everything else streams through untouched.

use crate::body::{self, full, AppBodyFailure, ProxyBody};
use crate::error::ProxyError;
use crate::token::TokenManager;
use crate::upstream::{Upstream, UpstreamError};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

/// The most request body kept for a replay after a 401.
pub const REPLAY_BUFFER_BYTES: u64 = 64 * 1024;

/// What is kept of a request to send it (again).
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl RequestHead {
    fn request(&self, bearer: HeaderValue, body: ProxyBody) -> Request<ProxyBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        request
    }
}

/// Maps an upstream failure to wisegate's answer, naming the app's part where it is the
/// app's fault.
fn answer(limit: u64) -> impl Fn(UpstreamError) -> ProxyError {
    move |error| match error {
        UpstreamError::BodyTooLarge => ProxyError::BodyTooLarge { limit },
        UpstreamError::AppBody { detail } => ProxyError::BadRequestBody { detail },
        other => ProxyError::Upstream(other),
    }
}

/// Sends `head` + `body` with `bearer`; `tokens` is given when a 401 may be answered by
/// one refresh and replay (user-token routes).
pub async fn send(
    upstream: &Upstream,
    head: RequestHead,
    body: Incoming,
    bearer: HeaderValue,
    limit: u64,
    tokens: Option<&Arc<TokenManager>>,
) -> Result<Response<Incoming>, ProxyError> {
    let replayable = tokens.is_some()
        && body
            .size_hint()
            .exact()
            .is_some_and(|n| n <= REPLAY_BUFFER_BYTES.min(limit));
    let Some(tokens) = tokens.filter(|_| replayable) else {
        let (body, watch) = body::from_app(body, limit);
        let response = upstream
            .send(head.request(bearer.clone(), body))
            .await
            .map_err(|error| match watch.failure() {
                Some(AppBodyFailure::TooLarge) => ProxyError::BodyTooLarge { limit },
                Some(AppBodyFailure::Broken(detail)) => ProxyError::BadRequestBody {
                    detail: detail.clone(),
                },
                None => answer(limit)(error),
            })?;
        if response.status() == StatusCode::UNAUTHORIZED {
            if let Some(tokens) = tokens {
                // Not replayable, but the next request should not meet the same 401.
                let tokens = tokens.clone();
                tokio::spawn(async move { tokens.replace_rejected(&bearer).await });
            }
        }
        return Ok(response);
    };
    let kept = Limited::new(
        body.map_err(body::ClientBodyError),
        REPLAY_BUFFER_BYTES as usize,
    )
    .collect()
    .await
    .map_err(|error| ProxyError::BadRequestBody {
        detail: error.to_string(),
    })?
    .to_bytes();
    let first = upstream
        .send(head.request(bearer.clone(), full(kept.clone())))
        .await
        .map_err(answer(limit))?;
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(first);
    }
    // Never loop: one refresh, one replay; a second 401 goes to the app.
    let fresh = tokens.replace_rejected(&bearer).await?;
    tracing::info!("Wise answered 401; replaying once with the refreshed token");
    upstream
        .send(head.request(fresh, full(kept)))
        .await
        .map_err(answer(limit))
}
