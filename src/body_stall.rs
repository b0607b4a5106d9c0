//! A body with a pause limit: while wisegate waits for the next part, the sender must send
//! something within the limit, or the body fails with [`BodyStalled`]. The app's request
//! body has `limits.request_body_timeout`, Wise's response body `limits.upstream_timeout`.
//! A slow body that keeps moving is never cut; a stalled one no longer holds its request,
//! its upstream slot and its connections forever. A slow reader stalls nothing: the timer
//! runs only while wisegate asks for more and none has come.
//!
//! tower-http's `TimeoutBody` does the same job but drops the body's size hint and
//! end-of-stream flag, which the upstream client uses to frame the request.

use crate::body::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// Whose body paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The app's request body.
    App,
    /// The upstream's response body.
    Upstream,
}

/// A body paused for longer than its limit.
#[derive(Debug, thiserror::Error)]
pub struct BodyStalled {
    pub limit: Duration,
    pub sender: Sender,
}

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = humantime::format_duration(self.limit);
        match self.sender {
            Sender::App => write!(f, "the app sent no part of its request body for {limit} (limits.request_body_timeout): check why the app stalls, or raise the limit if it sends slowly on purpose"),
            Sender::Upstream => write!(f, "the upstream sent no part of its response body for {limit} (limits.upstream_timeout): the response to the app was cut off; the app may retry, and if this upstream answers that slowly on purpose, raise limits.upstream_timeout"),
        }
    }
}

/// `body`, failing with [`BodyStalled`] when nothing arrives for `limit` while it is read.
pub struct StallGuard<B> {
    body: B,
    limit: Duration,
    sender: Sender,
    /// Armed when a read found nothing; disarmed by the next frame. Allocated on the first
    /// wait only, so a body that is already buffered costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl<B> StallGuard<B> {
    pub fn new(body: B, limit: Duration, sender: Sender) -> Self {
        StallGuard {
            body,
            limit,
            sender,
            timer: None,
            waiting: false,
        }
    }
}

impl<B> Body for StallGuard<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        // The body first: what has arrived is never refused because the reader was late.
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let limit = this.limit;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !this.waiting {
            timer.as_mut().reset(Instant::now() + limit);
            this.waiting = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyStalled {
                limit: this.limit,
                sender: this.sender,
            })))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;
    use tokio::sync::mpsc;

    type Parts = mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>;

    /// A body fed by hand, and its sender.
    fn fed(limit: Duration) -> (Parts, impl Body<Data = Bytes, Error = BoxError> + Unpin) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|frame| (frame, receiver))
        })
        .boxed();
        (
            sender,
            StallGuard::new(StreamBody::new(stream), limit, Sender::App),
        )
    }

    fn part(text: &'static str) -> Result<Frame<Bytes>, Infallible> {
        Ok(Frame::data(Bytes::from_static(text.as_bytes())))
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_that_keeps_moving_is_read_whole() {
        let limit = Duration::from_secs(10);
        let (parts, body) = fed(limit);
        tokio::spawn(async move {
            for text in ["a", "b", "c", "d"] {
                // Each pause just under the limit: 36 s in all, more than three limits.
                tokio::time::sleep(Duration::from_secs(9)).await;
                parts.send(part(text)).unwrap();
            }
        });
        let whole = body.collect().await.unwrap().to_bytes();
        assert_eq!(whole, "abcd");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_longer_than_the_limit_fails_with_body_stalled() {
        let limit = Duration::from_secs(10);
        let (parts, mut body) = fed(limit);
        parts.send(part("first")).unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let started = Instant::now();
        let error = body.frame().await.unwrap().unwrap_err();
        let stalled = error.downcast_ref::<BodyStalled>().expect("BodyStalled");
        assert_eq!(stalled.limit, limit);
        assert_eq!(started.elapsed(), limit, "failed at the limit, not before");
        assert!(error.to_string().contains("limits.request_body_timeout"));
        assert!(error.to_string().contains("10s"), "{error}");
        drop(parts);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_reader_still_gets_what_arrived() {
        let limit = Duration::from_secs(10);
        let (parts, mut body) = fed(limit);
        // The reader waits once (arming the timer), then the app sends and the reader
        // comes back long after the limit: the part is delivered, not refused.
        let waited = tokio::time::timeout(Duration::from_millis(1), body.frame()).await;
        assert!(waited.is_err(), "nothing had arrived yet");
        parts.send(part("late")).unwrap();
        tokio::time::sleep(limit * 3).await;
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "late");
    }

    #[tokio::test]
    async fn length_and_end_are_those_of_the_body() {
        let body = StallGuard::new(
            Full::new(Bytes::from_static(b"12345")),
            Duration::ZERO,
            Sender::App,
        );
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let empty = StallGuard::new(
            http_body_util::Empty::<Bytes>::new(),
            Duration::from_secs(1),
            Sender::Upstream,
        );
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }
}
