//! The per-connection watchdog of the app and admin listeners. hyper bounds nothing
//! before it knows the protocol (the auto builder sniffs the first bytes without a
//! deadline), HTTP/2 has no head deadline at all, and HTTP/1's `header_read_timeout`
//! starts when the connection goes idle, which closed idle keep-alive connections after
//! it instead of `idle_timeout`. So the watchdog decides, from what the connection did:
//!
//! - no request yet: the first head must be complete `header_read_timeout` after accept
//!   (a silent socket, a partial HTTP/2 preface, an h2c client that only answers PINGs);
//! - no request in flight after one: closed `idle_timeout` after the last one ended,
//!   whatever control frames (PING, SETTINGS) come meanwhile; an HTTP/1 head that begins
//!   meanwhile must be complete `header_read_timeout` after its first byte;
//! - a request in flight: left alone (the body and write limits bound it).
//!
//! Closing is graceful first (GOAWAY for HTTP/2, closing an idle HTTP/1 connection,
//! ending the protocol sniffing); a connection that is still there [`CLOSE_GRACE`]
//! later with nothing in flight is dropped. The same path closes a connection when asked
//! ([`Activity::ask_to_close`]: room for a new one at `max_connections`, shutdown) and an
//! HTTP/2 connection that abandons too many streams after they were accepted.
//!
//! Cost on the request path: an `Arc` clone, a few relaxed atomics and one clock read per
//! request (two for an HTTP/1 keep-alive request), one atomic load per read; the timer is
//! re-armed lazily, only when it fires or an HTTP/1 head begins.
//!
//! What a connection did is its [`Activity`] (`watchdog/activity.rs`, with the deadlines
//! it is due for); this file holds the IO that reports reads to it and the [`Watchdog`]
//! that acts on it.

mod activity;

pub use activity::{
    Activity, CloseReason, Counted, Pending, RoomWanted, Timeouts, ABANDONED_PER_ANSWERED,
    MAX_ABANDONED_STREAMS,
};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection asked to close gracefully may take (an HTTP/2 client's answer
/// to the GOAWAY's PING, an HTTP/1 client finishing a head) before it is dropped, when
/// nothing of it is in flight.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The connection's IO, telling its [`Activity`] when bytes arrive.
pub struct Watched<S> {
    io: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub fn new(io: S, activity: Arc<Activity>) -> Watched<S> {
        Watched { io, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A connection that can be asked to finish gracefully (hyper's server connections).
pub trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, E, B> Graceful for hyper_util::server::conn::auto::Connection<'_, I, S, E>
where
    S: hyper::service::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    E: hyper_util::server::conn::auto::HttpServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper_util::server::conn::auto::Connection::graceful_shutdown(self);
    }
}

/// Serves a connection under its [`Activity`]'s deadlines; ends with the connection
/// (`Some` of its result) or when it was dropped after a graceful close did not finish
/// (`None`).
pub struct Watchdog<C> {
    connection: Pin<Box<C>>,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    timer: Pin<Box<Sleep>>,
    /// The last head beginning the timer was set for.
    head_seen: Option<Instant>,
    closing: bool,
    peer: SocketAddr,
}

impl<C: Graceful> Watchdog<C> {
    pub fn new(
        connection: C,
        activity: Arc<Activity>,
        timeouts: Timeouts,
        peer: SocketAddr,
    ) -> Watchdog<C> {
        let first = activity.accepted_at() + timeouts.header_read;
        Watchdog {
            connection: Box::pin(connection),
            activity,
            timeouts,
            timer: Box::pin(tokio::time::sleep_until(first)),
            head_seen: None,
            closing: false,
            peer,
        }
    }

    fn begin_close(&mut self, reason: CloseReason) {
        self.closing = true;
        match reason {
            CloseReason::AbandonedStreams => {
                tracing::warn!(peer = %self.peer, "the app abandoned more than {MAX_ABANDONED_STREAMS} HTTP/2 streams after they were accepted (and more than one in {ABANDONED_PER_ANSWERED} of those answered): connection closed with GOAWAY")
            }
            reason => tracing::debug!(peer = %self.peer, ?reason, "closing an app connection"),
        }
        self.connection.as_mut().graceful_shutdown();
        self.timer.as_mut().reset(Instant::now() + CLOSE_GRACE);
    }

    /// Re-arms or fires the timer; whether the connection should be polled again.
    fn on_timer(&mut self, cx: &mut Context<'_>) -> Result<bool, ()> {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if self.closing {
                if self.activity.in_flight() == 0 {
                    return Err(());
                }
                self.timer.as_mut().reset(now + CLOSE_GRACE);
                continue;
            }
            match self.activity.deadline(&self.timeouts) {
                Some((due, reason)) if due <= now => {
                    self.begin_close(reason);
                    return Ok(true);
                }
                Some((due, _)) => self.timer.as_mut().reset(due),
                // Busy: look again later (the idle deadline is at least this far).
                None => self.timer.as_mut().reset(now + self.timeouts.idle),
            }
        }
        Ok(false)
    }
}

impl<C: Graceful> Future for Watchdog<C> {
    type Output = Option<C::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.activity.wake_on_close(cx.waker());
        loop {
            if let Poll::Ready(result) = this.connection.as_mut().poll(cx) {
                return Poll::Ready(Some(result));
            }
            if this.closing {
                match this.on_timer(cx) {
                    Err(()) => return Poll::Ready(None),
                    Ok(_) => return Poll::Pending,
                }
            }
            if let Some(reason) = this.activity.close_reason() {
                this.begin_close(reason);
                continue;
            }
            // An HTTP/1 head began on an idle connection: its deadline is sooner.
            let head = this.activity.head_began();
            if head != this.head_seen {
                this.head_seen = head;
                if let Some(began) = head {
                    let due = began + this.timeouts.header_read;
                    if due < this.timer.deadline() {
                        this.timer.as_mut().reset(due);
                    }
                }
            }
            match this.on_timer(cx) {
                Ok(true) => continue,
                Ok(false) => return Poll::Pending,
                Err(()) => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
#[path = "watchdog_tests.rs"]
mod tests;
