//! What one app or admin connection has done, shared by its IO, its requests, its
//! [`super::Watchdog`] and the listener's admission (which picks the longest idle):
//! when it was accepted, whether a request is in flight and since when none is, whether
//! an HTTP/1 head began while idle, how many HTTP/2 streams it abandoned, and whether it
//! was asked to close and why. The deadlines it is due for follow from these
//! ([`Activity`]'s `deadline`); the watchdog acts on them.

use futures_util::task::AtomicWaker;
use http::Version;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

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

    /// When the connection was accepted.
    pub(super) fn accepted_at(&self) -> Instant {
        self.origin
    }

    /// How many of its requests are in flight.
    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// When an HTTP/1 head began while the connection was idle; `None`: none did.
    pub(super) fn head_began(&self) -> Option<Instant> {
        match self.head_since.load(Ordering::Relaxed) {
            0 => None,
            head => Some(self.at(head - 1)),
        }
    }

    /// Why it was asked to close; `None`: it was not.
    pub(super) fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_code(self.close.load(Ordering::Acquire))
    }

    /// `waker` is woken when the connection is asked to close.
    pub(super) fn wake_on_close(&self, waker: &Waker) {
        self.waker.register(waker);
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
    pub(super) fn bytes_read(&self) {
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
    pub(super) fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, CloseReason)> {
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
