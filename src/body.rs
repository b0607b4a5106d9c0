//! The one body type wisegate sends and answers with, and small constructors for it.
//! Streamed bodies (the app's request, Wise's response) and complete ones (wisegate's own
//! answers, token requests) are boxed into the same [`ProxyBody`]. [`Progress`] tells
//! when a streamed body last moved, for whoever sends it (the upstream client) without
//! knowing whose body it is.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

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

/// When a streamed body last handed a part on: the body marks it, its sender reads it
/// (the upstream client counts `upstream_timeout` from there, so a long upload that keeps
/// moving is not taken for a silent upstream).
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    /// Nanoseconds after `started` when the last part was handed on.
    moved_at: AtomicU64,
}

impl Progress {
    /// Progress starting now: until the first part, the body last moved now.
    pub fn new() -> Progress {
        Progress {
            started: Instant::now(),
            moved_at: AtomicU64::new(0),
        }
    }

    /// When the last part was handed on (when streaming began, before the first).
    pub fn last_moved(&self) -> Instant {
        self.started + Duration::from_nanos(self.moved_at.load(Ordering::Relaxed))
    }

    /// Marks a part handed on now.
    pub fn moved(&self) {
        let since = self.started.elapsed().as_nanos();
        self.moved_at
            .store(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

/// `body` without its trailers: the body ends where its trailers would begin. The app's
/// request trailers never go to Wise: its API has no use for them, and a trailer can carry
/// what wisegate removes from the head (the app's own `Authorization`, `Host`, hop-by-hop
/// fields) past the header hygiene, or a field HTTP/2 refuses (`Connection`), which left
/// the upstream stream open until `limits.upstream_timeout`.
pub struct WithoutTrailers<B>(pub B);

impl<B: http_body::Body + Unpin> http_body::Body for WithoutTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.0)
            .poll_frame(cx)
            // Trailers are always the last frame: what follows them is the end.
            .map(|frame| frame.filter(|frame| !matches!(frame, Ok(frame) if frame.is_trailers())))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    #[tokio::test]
    async fn trailers_are_dropped_and_data_kept() {
        let mut trailers = HeaderMap::new();
        trailers.insert("authorization", HeaderValue::from_static("Bearer app"));
        let body = Full::new(Bytes::from_static(b"hello")).with_trailers(Box::pin(async move {
            Some(Ok::<_, std::convert::Infallible>(trailers))
        }));
        let collected = WithoutTrailers(body).collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "hello");
    }
}
