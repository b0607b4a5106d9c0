//! Writes gathered per run: what hyper writes to an app connection while the
//! connection's task runs is copied into one buffer and sent when the run ends, with one
//! write. hyper's HTTP/2 side writes every DATA frame of 256 bytes or more on its own (h2
//! keeps the payload instead of copying it, and flushes before it takes the next frame),
//! so an h2c connection answering ten streams in one run made ten writes to the socket,
//! each a trip through the kernel's network stack and a wake-up of the app; gathered,
//! they are one. HTTP/1.1 answers were already one write each, and still are.
//!
//! Backpressure is kept: the buffer holds at most [`GATHER_LIMIT`] bytes; past it, a
//! write waits for the socket as before. A write of [`DIRECT_FROM`] bytes or more with nothing
//! gathered goes straight to the socket (a download's chunks are not copied). hyper's
//! flush returns at once (the run's end sends); its shutdown sends what is gathered
//! first, and a connection that ends without one (after an answer to `CONNECT`) ends once
//! its last bytes are sent. A failed send (the socket closed,
//! `limits.response_write_timeout`) is handed to hyper at its next read or write of the
//! connection, which ends it with that error; every later send fails at once.
//!
//! [`gather`] splits a connection's IO into the part hyper owns ([`GatheredIo`]) and the
//! part that wraps hyper's connection future ([`Gathering`]) and sends after each run.

use crate::watchdog::Graceful;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes gathered before a write waits for the socket.
pub(super) const GATHER_LIMIT: usize = 64 * 1024;
/// A write at least this large, with nothing gathered, goes to the socket uncopied.
pub(super) const DIRECT_FROM: usize = 16 * 1024;

/// The socket and what waits to be written to it, shared by both halves.
struct Gather<S> {
    io: S,
    /// Gathered bytes; `sent` of them already written.
    buffer: Vec<u8>,
    sent: usize,
    /// A send that failed at the end of a run, for hyper's next read or write.
    failed: Option<io::Error>,
    /// Once a send failed, its kind: every later send or write fails at once with it
    /// (a socket whose write timed out is not waited on again for another timeout).
    broken: Option<io::ErrorKind>,
}

impl<S: AsyncWrite + Unpin> Gather<S> {
    /// Writes what is gathered; `Ready(Ok)` once all of it is in the socket.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(kind) = self.broken {
            return Poll::Ready(Err(kind.into()));
        }
        let mut outcome = Ok(());
        while self.sent < self.buffer.len() {
            match std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.buffer[self.sent..]))
            {
                Ok(0) => outcome = Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(error) => outcome = Err(error),
            }
            if let Err(error) = &outcome {
                self.broken = Some(error.kind());
                break;
            }
        }
        // Nothing is kept between runs (an idle connection holds no buffer), nor after a
        // failure.
        self.buffer = Vec::new();
        self.sent = 0;
        Poll::Ready(outcome)
    }
}

impl<S> Gather<S> {
    /// The failed send's error for hyper, once; after it, the kind of failure, every time.
    fn take_failure(&mut self) -> io::Result<()> {
        match (self.failed.take(), self.broken) {
            (Some(error), _) => Err(error),
            (None, Some(kind)) => Err(kind.into()),
            (None, None) => Ok(()),
        }
    }
}

fn lock<S>(gather: &Mutex<Gather<S>>) -> MutexGuard<'_, Gather<S>> {
    gather.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Splits `io` into hyper's half and the half that sends after each run of the
/// connection's task (give it the connection future with [`Gathering::new`]).
pub(super) fn gather<S>(io: S) -> (GatheredIo<S>, Sender<S>) {
    let gather = Arc::new(Mutex::new(Gather {
        io,
        buffer: Vec::new(),
        sent: 0,
        failed: None,
        broken: None,
    }));
    (GatheredIo(gather.clone()), Sender(gather))
}

/// The connection's IO as hyper sees it: reads pass through, writes are gathered.
pub(super) struct GatheredIo<S>(Arc<Mutex<Gather<S>>>);

/// The sending half, before it is paired with the connection future.
pub(super) struct Sender<S>(Arc<Mutex<Gather<S>>>);

impl<S: AsyncRead + Unpin> AsyncRead for GatheredIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut gather = lock(&self.0);
        gather.take_failure()?;
        Pin::new(&mut gather.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GatheredIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut gather = lock(&self.0);
        gather.take_failure()?;
        let len: usize = bufs.iter().map(|buf| buf.len()).sum();
        // The buffer's whole length counts: what was sent of it is only let go once all
        // of it was.
        if len >= DIRECT_FROM || gather.buffer.len() + len > GATHER_LIMIT {
            std::task::ready!(gather.poll_send(cx))?;
            if len >= DIRECT_FROM {
                return Pin::new(&mut gather.io).poll_write_vectored(cx, bufs);
            }
        }
        for buf in bufs {
            gather.buffer.extend_from_slice(buf);
        }
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Returns at once: the end of the run sends.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(lock(&self.0).take_failure())
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut gather = lock(&self.0);
        gather.take_failure()?;
        std::task::ready!(gather.poll_send(cx))?;
        Pin::new(&mut gather.io).poll_shutdown(cx)
    }
}

pin_project_lite::pin_project! {
    /// hyper's connection future, followed by a send of what its run gathered. `ended`:
    /// hyper's result, once it ended without a shutdown (after an answer to a `CONNECT`,
    /// say), held until what it wrote last is sent.
    pub(super) struct Gathering<C: Future, S> {
        #[pin]
        connection: C,
        gather: Arc<Mutex<Gather<S>>>,
        ended: Option<C::Output>,
    }
}

impl<C: Future, S> Gathering<C, S> {
    pub(super) fn new(connection: C, sender: Sender<S>) -> Gathering<C, S> {
        Gathering {
            connection,
            gather: sender.0,
            ended: None,
        }
    }
}

impl<C, E, S> Future for Gathering<C, S>
where
    C: Future<Output = Result<(), E>>,
    E: From<io::Error>,
    S: AsyncWrite + Unpin,
{
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let this = self.project();
        if this.ended.is_none() {
            if let Poll::Ready(output) = this.connection.poll(cx) {
                *this.ended = Some(output);
            }
        }
        let mut gather = lock(this.gather);
        let sent = gather.poll_send(cx);
        match (this.ended.take(), sent) {
            // hyper's last answer is sent (or cannot be) before the connection ends; a
            // send that failed is the connection's error (the write timeout's, say).
            (Some(Ok(())), Poll::Ready(Err(error))) => Poll::Ready(Err(error.into())),
            (Some(output), Poll::Ready(_)) => Poll::Ready(output),
            (Some(output), Poll::Pending) => {
                *this.ended = Some(output);
                Poll::Pending
            }
            (None, sent) => {
                if let Poll::Ready(Err(error)) = sent {
                    // hyper learns of it at its next read or write, on the next run (a
                    // later send fails at once: nothing is retried).
                    gather.failed = Some(error);
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        }
    }
}

impl<C, E, S> Graceful for Gathering<C, S>
where
    C: Graceful + Future<Output = Result<(), E>>,
    E: From<io::Error>,
    S: AsyncWrite + Unpin,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.project().connection.graceful_shutdown();
    }
}

#[cfg(test)]
#[path = "gathered_tests.rs"]
mod tests;
