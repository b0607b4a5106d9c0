//! The one body type wisegate sends and answers with, and small constructors for it.
//! Streamed bodies (the app's request, Wise's response) and complete ones (wisegate's own
//! answers, token requests) are boxed into the same [`ProxyBody`].

use crate::body_stall::{BodyStalled, StallGuard};
use bytes::Bytes;
use http_body_util::combinators::{MapErr, UnsyncBoxBody};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::error::Error as StdError;
use std::time::Duration;

/// Any boxed error a body can fail with.
pub type BoxError = Box<dyn StdError + Send + Sync>;
/// Streamed, boxed once per request.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Any streaming body, boxed.
pub fn stream<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// An error of the app's request body (broken chunking, a reset): the app's fault, which
/// wisegate answers with 400 rather than blaming the upstream.
#[derive(Debug, thiserror::Error)]
#[error("the request body from the app is malformed or broke off: {0}")]
pub struct ClientBodyError(pub hyper::Error);

/// The app's request body as wisegate reads it: errors marked as the app's, pauses
/// bounded by `limits.request_body_timeout`.
pub type AppIncoming = StallGuard<MapErr<Incoming, fn(hyper::Error) -> ClientBodyError>>;

/// Wraps the app's request body for reading (see [`AppIncoming`]).
pub fn app_incoming(body: Incoming, pause_limit: Duration) -> AppIncoming {
    StallGuard::new(body.map_err(ClientBodyError as fn(_) -> _), pause_limit)
}

/// How the app's request body failed, recorded as it happens: over HTTP/2 the upstream
/// client reports only a reset stream, not the body's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppBodyFailure {
    TooLarge,
    Stalled(Duration),
    Broken(String),
}

impl AppBodyFailure {
    /// What a failed read of the app's body was.
    pub fn of(error: &BoxError) -> AppBodyFailure {
        if error.is::<http_body_util::LengthLimitError>() {
            AppBodyFailure::TooLarge
        } else if let Some(stalled) = error.downcast_ref::<BodyStalled>() {
            AppBodyFailure::Stalled(stalled.limit)
        } else {
            AppBodyFailure::Broken(error.to_string())
        }
    }
}

/// Tells, after a failed exchange, whether the app's body was the cause.
#[derive(Debug, Clone, Default)]
pub struct AppBodyWatch(std::sync::Arc<std::sync::OnceLock<AppBodyFailure>>);

impl AppBodyWatch {
    pub fn failure(&self) -> Option<&AppBodyFailure> {
        self.0.get()
    }
}

/// The app's request body, streamed, failing once it exceeds `limit` bytes; the watch
/// records why it failed.
pub fn from_app(body: AppIncoming, limit: u64) -> (ProxyBody, AppBodyWatch) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let watch = AppBodyWatch::default();
    let record = watch.clone();
    let body = http_body_util::Limited::new(body, limit).map_err(move |error| {
        let _ = record.0.set(AppBodyFailure::of(&error));
        error
    });
    (stream(body), watch)
}
