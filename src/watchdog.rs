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

use futures_util::task::AtomicWaker;
use http::Version;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection asked to close gracefully may take (an HTTP/2 client's answer
/// to the GOAWAY's PING, an HTTP/1 client finishing a head) before it is dropped, when
/// nothing of it is in flight.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Streams an HTTP/2 app may abandon (reset, or hang up) after wisegate accepted them,
/// beyond one in [`ABANDONED_PER_ANSWERED`] of those it let finish, before its connection
/// is closed with GOAWAY. The same number as h2's bound on streams reset before they were
/// accepted (`max_pending_accept_reset_streams`), which does not count these.
pub const MAX_ABANDONED_STREAMS: u32 = 20;
/// See [`MAX_ABANDONED_STREAMS`].
pub const ABANDONED_PER_ANSWERED: u32 = 8;

/// The two listener deadlines the watchdog applies.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `limits.header_read_timeout`.
    pub header_read: Duration,
    /// `limits.idle_timeout`.
    pub idle: Duration,
}

const PROTOCOL_UNKNOWN: u8 = 0;
const PROTOCOL_HTTP1: u8 = 1;
const PROTOCOL_HTTP2: u8 = 2;

/// Why a connection is asked to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request head within `header_read_timeout`.
    HeadTimeout,
    /// No request in flight for `idle_timeout`.
    Idle,
    /// The listener is at `max_connections` and this one was idle longest.
    MakeRoom,
    /// wisegate is shutting down.
    Shutdown,
    /// The app abandoned too many streams after they were accepted.
    AbandonedStreams,
}

impl CloseReason {
    const ALL: [CloseReason; 5] = [
        CloseReason::HeadTimeout,
        CloseReason::Idle,
        CloseReason::MakeRoom,
        CloseReason::Shutdown,
        CloseReason::AbandonedStreams,
    ];

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(code: u8) -> Option<CloseReason> {
        CloseReason::ALL
            .get(usize::from(code.checked_sub(1)?))
            .copied()
    }
}

/// What one connection has done, shared by its IO, its requests and its watchdog (and
/// the listener's admission, which picks the longest idle).
#[derive(Debug)]
pub struct Activity {
    /// When the connection was accepted; the offsets below count from here (nanoseconds).
    origin: Instant,
    in_flight: AtomicU32,
    protocol: AtomicU8,
    /// When the last request ended (or 0: accept).
    idle_since: AtomicU64,
    /// 1 + when an HTTP/1 head began while idle; 0: none.
    head_since: AtomicU64,
    answered: AtomicU32,
    abandoned: AtomicU32,
    /// A [`CloseReason`] code once asked to close; 0 before.
    close: AtomicU8,
    /// The connection's task, woken when asked to close.
    waker: AtomicWaker,
    /// Set when the listener waits for room: a connection going idle says so.
    room_wanted: Option<Arc<RoomWanted>>,
}

/// The listener's side of "a connection went idle": someone waits for room.
#[derive(Debug, Default)]
pub struct RoomWanted {
    pub waiting: AtomicBool,
    pub went_idle: tokio::sync::Notify,
}

impl Activity {
    /// A connection accepted now; `room_wanted` is told when it goes idle.
    pub fn new(room_wanted: Option<Arc<RoomWanted>>) -> Activity {
        Activity {
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            protocol: AtomicU8::new(PROTOCOL_UNKNOWN),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            answered: AtomicU32::new(0),
            abandoned: AtomicU32::new(0),
            close: AtomicU8::new(0),
            waker: AtomicWaker::new(),
            room_wanted,
        }
    }

    fn offset(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    fn at(&self, offset: u64) -> Instant {
        self.origin + Duration::from_nanos(offset)
    }

    /// A request's head arrived: the connection is busy until the request ends (the
    /// returned guard, then the answer's body, is dropped).
    pub fn request_started(self: &Arc<Self>, version: Version) -> Pending {
        let protocol = if version == Version::HTTP_2 {
            PROTOCOL_HTTP2
        } else {
            PROTOCOL_HTTP1
        };
        self.protocol.store(protocol, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Pending(Some(self.clone()))
    }

    fn request_ended(&self, answered: bool) {
        if answered {
            self.answered.fetch_add(1, Ordering::Relaxed);
        } else {
            let abandoned = self.abandoned.fetch_add(1, Ordering::Relaxed) + 1;
            let answered = self.answered.load(Ordering::Relaxed);
            if abandoned > MAX_ABANDONED_STREAMS + answered / ABANDONED_PER_ANSWERED {
                self.ask_to_close(CloseReason::AbandonedStreams);
            }
        }
        // Recorded before the count falls, so whoever sees it idle sees when.
        self.idle_since
            .fetch_max(self.offset(Instant::now()), Ordering::AcqRel);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(room) = &self.room_wanted {
                if room.waiting.load(Ordering::Relaxed) {
                    room.went_idle.notify_one();
                }
            }
        }
    }

    /// Whether this connection's app abandoned streams after they were accepted: its new
    /// streams are checked for a reset before they start any work.
    pub fn abandons_streams(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed) > 0
    }

    /// Bytes arrived from the peer: on an idle HTTP/1 connection, a head begins.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.protocol.load(Ordering::Relaxed) == PROTOCOL_HTTP1
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            let offset = self.offset(Instant::now()).saturating_add(1);
            self.head_since.store(offset, Ordering::Relaxed);
        }
    }

    /// Asks the connection to close gracefully (the first reason given sticks).
    pub fn ask_to_close(&self, reason: CloseReason) {
        if self
            .close
            .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.waker.wake();
        }
    }

    /// Whether it was asked to close.
    pub fn closing(&self) -> bool {
        self.close.load(Ordering::Acquire) != 0
    }

    /// Since when nothing is in flight; `None` while a request is.
    pub fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.at(self.idle_since.load(Ordering::Acquire)))
    }

    /// When the connection is due to close; `None` while a request is in flight.
    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, CloseReason)> {
        let idle_since = self.idle_since()?;
        if self.protocol.load(Ordering::Relaxed) == PROTOCOL_UNKNOWN {
            return Some((self.origin + timeouts.header_read, CloseReason::HeadTimeout));
        }
        match self.head_since.load(Ordering::Relaxed) {
            0 => Some((idle_since + timeouts.idle, CloseReason::Idle)),
            head => Some((
                self.at(head - 1) + timeouts.header_read,
                CloseReason::HeadTimeout,
            )),
        }
    }
}

/// A request in flight whose answer is not made yet; dropped so, it was abandoned.
pub struct Pending(Option<Arc<Activity>>);

impl Pending {
    /// The answer is made: the request stays in flight until `body` ends.
    pub fn answered<B>(mut self, body: B) -> Counted<B> {
        Counted {
            body,
            _in_flight: InFlight(self.0.take()),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(activity) = self.0.take() {
            activity.request_ended(false);
        }
    }
}

/// Ends an answered request when dropped.
struct InFlight(Option<Arc<Activity>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(activity) = self.0.take() {
            activity.request_ended(true);
        }
    }
}

/// An answer's body, keeping its request in flight until it ends or is dropped.
pub struct Counted<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: http_body::Body + Unpin> http_body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

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
    /// The last `head_since` the timer was set for.
    head_seen: u64,
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
        let first = activity.origin + timeouts.header_read;
        Watchdog {
            connection: Box::pin(connection),
            activity,
            timeouts,
            timer: Box::pin(tokio::time::sleep_until(first)),
            head_seen: 0,
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
                if self.activity.in_flight.load(Ordering::Acquire) == 0 {
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
        this.activity.waker.register(cx.waker());
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
            if let Some(reason) =
                CloseReason::from_code(this.activity.close.load(Ordering::Acquire))
            {
                this.begin_close(reason);
                continue;
            }
            // An HTTP/1 head began on an idle connection: its deadline is sooner.
            let head = this.activity.head_since.load(Ordering::Relaxed);
            if head != this.head_seen {
                this.head_seen = head;
                if head != 0 {
                    let due = this.activity.at(head - 1) + this.timeouts.header_read;
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
