//! The app's request body as wisegate reads it: its errors marked as the app's, its pauses
//! bounded by `limits.request_body_timeout` and its rate by `limits.request_body_min_rate`
//! ([`crate::body_stall`]), its size by
//! `limits.max_body_bytes`, and, while it streams to Wise, a [`AppBodyWatch`] that tells
//! why it failed and when it last moved (the upstream timeout counts from there, so a long
//! upload that keeps moving is not taken for a silent Wise). Its trailers never go on.

use crate::body::{stream, BoxError, Progress, ProxyBody, WithoutTrailers};
use crate::body_stall::{BodyStalled, BodyTooSlow, Sender, StallGuard};
use http_body_util::combinators::MapErr;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// An error of the app's request body (broken chunking, a reset): the app's fault, which
/// wisegate answers with 400 rather than blaming the upstream.
#[derive(Debug, thiserror::Error)]
#[error("the request body from the app is malformed or broke off: {0}")]
pub struct ClientBodyError(pub hyper::Error);

/// The app's request body, errors marked as the app's, pauses and rate bounded.
pub type AppIncoming = StallGuard<MapErr<Incoming, fn(hyper::Error) -> ClientBodyError>>;

/// Wraps the app's request body for reading (see [`AppIncoming`]): pauses of at most
/// `pause_limit`, at least `min_rate` bytes per second of waiting (0: no floor).
pub fn app_incoming(body: Incoming, pause_limit: Duration, min_rate: u64) -> AppIncoming {
    StallGuard::new(
        body.map_err(ClientBodyError as fn(_) -> _),
        pause_limit,
        Sender::App,
    )
    .with_min_rate(min_rate)
}

/// How the app's request body failed, recorded as it happens: over HTTP/2 the upstream
/// client reports only a reset stream, not the body's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppBodyFailure {
    TooLarge,
    Stalled(Duration),
    TooSlow(BodyTooSlow),
    Broken(String),
}

impl AppBodyFailure {
    /// What a failed read of the app's body was.
    pub fn of(error: &BoxError) -> AppBodyFailure {
        if error.is::<http_body_util::LengthLimitError>() {
            AppBodyFailure::TooLarge
        } else if let Some(stalled) = error.downcast_ref::<BodyStalled>() {
            AppBodyFailure::Stalled(stalled.limit)
        } else if let Some(slow) = error.downcast_ref::<BodyTooSlow>() {
            AppBodyFailure::TooSlow(*slow)
        } else {
            AppBodyFailure::Broken(error.to_string())
        }
    }
}

/// What happened to a streamed body: why it failed, and when a part of it last went to
/// the upstream client.
#[derive(Debug, Clone)]
pub struct AppBodyWatch(Arc<Watched>);

#[derive(Debug)]
struct Watched {
    failure: OnceLock<AppBodyFailure>,
    progress: Progress,
}

impl AppBodyWatch {
    fn new() -> AppBodyWatch {
        AppBodyWatch(Arc::new(Watched {
            failure: OnceLock::new(),
            progress: Progress::new(),
        }))
    }

    pub fn failure(&self) -> Option<&AppBodyFailure> {
        self.0.failure.get()
    }

    /// When the body last handed a part to the upstream client, for that client.
    pub fn progress(&self) -> &Progress {
        &self.0.progress
    }
}

/// The app's request body, streamed, failing once it exceeds `limit` bytes; the watch
/// records why it failed and when it last moved.
pub fn from_app(body: AppIncoming, limit: u64) -> (ProxyBody, AppBodyWatch) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let watch = AppBodyWatch::new();
    let (moved, failed) = (watch.clone(), watch.clone());
    // Without trailers: see [`WithoutTrailers`].
    let body = http_body_util::Limited::new(WithoutTrailers(body), limit)
        .map_frame(move |frame| {
            moved.0.progress.moved();
            frame
        })
        .map_err(move |error| {
            let _ = failed.0.failure.set(AppBodyFailure::of(&error));
            error
        });
    (stream(body), watch)
}
