//! Sending a request upstream. The body is kept (at most [`REPLAY_BUFFER_BYTES`]) when
//! a second send may be needed: a replay after a 401 on a user-token route (the token was
//! invalidated, e.g. by a refresh elsewhere), an SCA-signed repeat on the personal-token
//! path, or a fallback; otherwise it streams through untouched and is sent once.

use crate::app_body::{self, AppBodyFailure, AppBodyWatch, AppIncoming};
use crate::body::{full, ProxyBody};
use crate::body_stall::{BodyStalled, Sender};
use crate::config::Limits;
use crate::error::ProxyError;
use crate::slots::AppConnection;
use crate::token::{Rejection, TokenManager};
use crate::upstream::{Upstream, UpstreamBody, UpstreamError};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::sync::Arc;

/// The most request body kept for a second send.
pub const REPLAY_BUFFER_BYTES: u64 = 64 * 1024;

/// What is kept of a request to send it (again, or elsewhere).
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// The app connection it came on: it takes that connection's share of the slots.
    pub connection: AppConnection,
}

impl RequestHead {
    pub fn request(&self, bearer: HeaderValue, body: ProxyBody) -> Request<ProxyBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request.headers_mut().insert(header::AUTHORIZATION, bearer);
        request
    }

    /// The same request aimed at another upstream.
    pub fn to(&self, upstream: &Upstream) -> RequestHead {
        RequestHead {
            uri: upstream.uri_for(self.uri.path_and_query()),
            ..self.clone()
        }
    }
}

/// The app's body: kept whole (sendable any number of times) or streaming (once), with
/// the most it may be (`limits.max_body_bytes`).
pub struct AppBody {
    state: BodyState,
    limit: u64,
}

enum BodyState {
    Kept(Bytes),
    Streaming(Option<AppIncoming>),
}

impl AppBody {
    /// Keeps `body` when `keep` and it is known to be small enough, else streams it. The
    /// app may pause at most `limits.request_body_timeout` while sending it, and must keep
    /// above `limits.request_body_min_rate`.
    pub async fn prepare(
        body: Incoming,
        keep: bool,
        limits: &Limits,
    ) -> Result<AppBody, ProxyError> {
        let limit = limits.max_body_bytes;
        let body = app_body::app_incoming(
            body,
            limits.request_body_timeout,
            limits.request_body_min_rate,
        );
        let small = body
            .size_hint()
            .exact()
            .is_some_and(|n| n <= REPLAY_BUFFER_BYTES.min(limit));
        if !(keep && small) {
            return Ok(AppBody {
                state: BodyState::Streaming(Some(body)),
                limit,
            });
        }
        let kept = Limited::new(body, REPLAY_BUFFER_BYTES as usize)
            .collect()
            .await
            .map_err(|error| app_body_error(AppBodyFailure::of(&error), limit))?;
        Ok(AppBody {
            state: BodyState::Kept(kept.to_bytes()),
            limit,
        })
    }

    pub fn is_kept(&self) -> bool {
        matches!(self.state, BodyState::Kept(_))
    }
}

/// Maps an upstream failure to wisegate's answer: the app's fault when its streamed body
/// failed (the watch saw it fail before the upstream client did), else the upstream's.
fn answer(limit: u64, watch: Option<&AppBodyWatch>) -> impl Fn(UpstreamError) -> ProxyError + '_ {
    move |error| match watch.and_then(AppBodyWatch::failure) {
        Some(failure) => app_body_error(failure.clone(), limit),
        None => ProxyError::Upstream(error),
    }
}

/// wisegate's answer when reading the app's body failed.
fn app_body_error(failure: AppBodyFailure, limit: u64) -> ProxyError {
    match failure {
        AppBodyFailure::TooLarge => ProxyError::BodyTooLarge { limit },
        AppBodyFailure::Stalled(pause_limit) => ProxyError::RequestBodyTimeout(BodyStalled {
            limit: pause_limit,
            sender: Sender::App,
        }),
        AppBodyFailure::TooSlow(slow) => ProxyError::RequestBodyTooSlow(slow),
        AppBodyFailure::Broken(detail) => ProxyError::BadRequestBody { detail },
    }
}

/// Sends once with whatever body is left.
pub async fn send_once(
    upstream: &Upstream,
    head: &RequestHead,
    body: &mut AppBody,
    bearer: HeaderValue,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let limit = body.limit;
    match &mut body.state {
        BodyState::Kept(bytes) => upstream
            .send_watched(
                head.request(bearer, full(bytes.clone())),
                None,
                Some(&head.connection),
            )
            .await
            .map_err(answer(limit, None)),
        BodyState::Streaming(incoming) => {
            let Some(incoming) = incoming.take() else {
                return Err(ProxyError::BadRequestBody {
                    detail: "the request body was already sent".into(),
                });
            };
            let (streamed, watch) = app_body::from_app(incoming, limit);
            upstream
                .send_watched(
                    head.request(bearer, streamed),
                    Some(watch.progress()),
                    Some(&head.connection),
                )
                .await
                .map_err(answer(limit, Some(&watch)))
        }
    }
}

/// Sends with the user's token: a 401 to a kept request is answered by one refresh (or
/// the token another request already refreshed) and one replay; a second 401 goes to the
/// app. A 401 to a streamed request still triggers the refresh, for the next request.
/// A 401 soon after a token was obtained refreshes nothing ([`Rejection`]).
pub async fn send_with_user_token(
    upstream: &Upstream,
    head: &RequestHead,
    body: &mut AppBody,
    bearer: HeaderValue,
    tokens: &Arc<TokenManager>,
) -> Result<Response<UpstreamBody>, ProxyError> {
    let first = send_once(upstream, head, body, bearer.clone()).await?;
    if first.status() != StatusCode::UNAUTHORIZED {
        return Ok(first);
    }
    // The 401 paths are boxed: inline, they made every request's future (moved whole
    // into each HTTP/2 stream's task) about 3 KB larger.
    let rejection = Box::pin(tokens.on_rejection(&bearer)).await;
    if !body.is_kept() {
        if let Rejection::Refresh = rejection {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.replace_rejected(&bearer).await });
        }
        return Ok(first);
    }
    if let Rejection::PassOn = rejection {
        return Ok(first);
    }
    // The 401 gives back its upstream slot before the replay takes one.
    drop(first);
    let fresh = match rejection {
        Rejection::Replay(newer) => newer,
        _ => Box::pin(tokens.replace_rejected(&bearer)).await?,
    };
    tracing::info!("Wise answered 401; replaying once with the refreshed token");
    Box::pin(send_once(upstream, head, body, fresh)).await
}
