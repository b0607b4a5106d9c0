//! A body with a pause limit: while wisegate waits for the next part, the sender must send
//! something within the limit, or the body fails with [`BodyStalled`]. The app's request
//! body has `limits.request_body_timeout`, Wise's response body `limits.upstream_timeout`.
//! A slow body that keeps moving is never cut; a stalled one no longer holds its request,
//! its upstream slot and its connections forever. A slow reader stalls nothing: the timer
//! runs only while wisegate asks for more and none has come.
//!
//! The app's body also has a rate floor (`limits.request_body_min_rate`): over each span of
//! waiting as long as the pause limit, at least the floor's worth of bytes must arrive, or
//! the body fails with [`BodyTooSlow`]. A pause limit alone let a body sending one byte
//! just inside each pause hold its upstream slot for as long as it liked. Only time spent
//! waiting for the sender counts, so a slow upstream (which reads the body late) or a
//! pause for a token never makes the app's body look slow.
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

/// The app's body arrived more slowly than the rate floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the app sent only {received} bytes of its request body in {} of waiting for it, under the floor of {min_rate} bytes/s (limits.request_body_min_rate): the request was ended so that it gives back its upstream slot; check why the app sends so slowly, or lower the floor (0 turns it off) if it does so on purpose", humantime::format_duration(*.window))]
pub struct BodyTooSlow {
    /// The floor, in bytes per second.
    pub min_rate: u64,
    /// The span of waiting the rate was judged over.
    pub window: Duration,
    /// The bytes that arrived in it.
    pub received: u64,
}

/// The rate floor's account of the current window.
struct Floor {
    min_rate: u64,
    window: Duration,
    /// Waiting counted in this window, up to `counted_from`.
    waited: Duration,
    /// Bytes arrived in this window.
    received: u64,
    /// While waiting: from when the wait counts toward this window.
    counted_from: Option<Instant>,
}

impl Floor {
    /// When the window ends if nothing arrives before.
    fn window_end(&self, now: Instant) -> Instant {
        self.counted_from.unwrap_or(now) + self.window.saturating_sub(self.waited)
    }

    /// Counts waiting up to `now`; at the window's end, judges it and opens the next.
    fn account(&mut self, now: Instant) -> Result<(), BodyTooSlow> {
        if let Some(from) = self.counted_from.replace(now) {
            self.waited += now.saturating_duration_since(from);
        }
        if self.waited < self.window {
            return Ok(());
        }
        let floor = u128::from(self.min_rate) * self.window.as_millis() / 1000;
        if u128::from(self.received) < floor {
            return Err(BodyTooSlow {
                min_rate: self.min_rate,
                window: self.window,
                received: self.received,
            });
        }
        self.waited = Duration::ZERO;
        self.received = 0;
        Ok(())
    }
}

/// `body`, failing with [`BodyStalled`] when nothing arrives for `limit` while it is read
/// (and, [`StallGuard::with_min_rate`], with [`BodyTooSlow`] below a rate floor).
pub struct StallGuard<B> {
    body: B,
    limit: Duration,
    sender: Sender,
    /// Armed when a read found nothing; disarmed by the next frame. Allocated on the first
    /// wait only, so a body that is already buffered costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the current wait began; `None` when not waiting.
    waiting_since: Option<Instant>,
    floor: Option<Floor>,
}

impl<B> StallGuard<B> {
    pub fn new(body: B, limit: Duration, sender: Sender) -> Self {
        StallGuard {
            body,
            limit,
            sender,
            timer: None,
            waiting_since: None,
            floor: None,
        }
    }

    /// Adds the floor: at least `min_rate` bytes per second of waiting, judged over each
    /// `limit` of waiting; 0: none.
    pub fn with_min_rate(mut self, min_rate: u64) -> Self {
        self.floor = (min_rate > 0).then_some(Floor {
            min_rate,
            window: self.limit,
            waited: Duration::ZERO,
            received: 0,
            counted_from: None,
        });
        self
    }

    /// The earlier of the pause limit and the floor's window end, for a wait begun `since`.
    fn deadline(&self, since: Instant, now: Instant) -> Instant {
        let paused = since + self.limit;
        match &self.floor {
            Some(floor) => paused.min(floor.window_end(now)),
            None => paused,
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
            let waited = this.waiting_since.take();
            if let (Some(floor), Some(Ok(part))) = (&mut this.floor, &frame) {
                floor.received += part.data_ref().map_or(0, |data| data.len() as u64);
                if waited.is_some() {
                    let judged = floor.account(Instant::now());
                    floor.counted_from = None;
                    judged?;
                }
            }
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        loop {
            let now = Instant::now();
            let since = *this.waiting_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= this.limit {
                return Poll::Ready(Some(Err(Box::new(BodyStalled {
                    limit: this.limit,
                    sender: this.sender,
                }))));
            }
            if let Some(floor) = &mut this.floor {
                match floor.counted_from {
                    None => floor.counted_from = Some(now),
                    // The window ended while waiting: judged, and the next one begins.
                    Some(_) if now >= floor.window_end(now) => floor.account(now)?,
                    Some(_) => {}
                }
            }
            let deadline = this.deadline(since, now);
            let limit = this.limit;
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            if timer.deadline() != deadline || timer.is_elapsed() {
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
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

    /// A body fed by hand with a rate floor of `min_rate` bytes/s over `limit`.
    fn fed_with_floor(
        limit: Duration,
        min_rate: u64,
    ) -> (Parts, impl Body<Data = Bytes, Error = BoxError> + Unpin) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|frame| (frame, receiver))
        })
        .boxed();
        let body = StallGuard::new(StreamBody::new(stream), limit, Sender::App);
        (sender, body.with_min_rate(min_rate))
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_inside_every_pause_is_cut_at_the_end_of_a_window_below_the_floor() {
        let limit = Duration::from_secs(10);
        let (parts, mut body) = fed_with_floor(limit, 100);
        tokio::spawn(async move {
            // One byte every 2 s: each pause well inside the limit, 0.5 bytes/s in all.
            while parts.send(part("x")).is_ok() {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        let started = Instant::now();
        let error = loop {
            match body.frame().await.expect("the trickle never ends") {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        let slow = error.downcast_ref::<BodyTooSlow>().expect("BodyTooSlow");
        assert_eq!(slow.window, limit);
        assert!(slow.received < 1000, "{slow:?}");
        assert_eq!(
            started.elapsed(),
            limit,
            "judged after one window of waiting"
        );
        assert!(error.to_string().contains("limits.request_body_min_rate"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_body_above_the_floor_is_read_whole_over_many_windows() {
        let limit = Duration::from_secs(1);
        let (parts, body) = fed_with_floor(limit, 20);
        tokio::spawn(async move {
            // 30 bytes every 100 ms (300 bytes/s, the floor 20) for 5 windows, with a pause of
            // 900 ms: every window of waiting holds at least one part.
            for round in 0..50 {
                let pause = if round == 20 { 900 } else { 100 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                parts.send(part("012345678901234567890123456789")).unwrap();
            }
        });
        let whole = body.collect().await.unwrap().to_bytes();
        assert_eq!(whole.len(), 50 * 30);
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_reader_does_not_ask_never_counts_against_the_floor() {
        let limit = Duration::from_secs(1);
        let (parts, mut body) = fed_with_floor(limit, 1000);
        // The upstream reads one part, then reads nothing for far longer than a window
        // (a slow upstream, a token wait): only waiting while asking counts.
        parts.send(part("first")).unwrap();
        body.frame().await.unwrap().unwrap();
        tokio::time::sleep(limit * 30).await;
        parts.send(part("second")).unwrap();
        let second = body.frame().await.unwrap().unwrap();
        assert_eq!(second.into_data().unwrap(), "second");
        drop(parts);
        assert!(body.frame().await.is_none(), "ends cleanly");
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
