//! Gathered writes over real loopback sockets; the run of a connection's task is a
//! stand-in future that writes what each test asks for.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A socket that counts the writes reaching it.
struct Counted {
    stream: TcpStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(_))) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The gathered server side of a loopback connection, its write count, and the peer.
async fn connected() -> (
    GatheredIo<Counted>,
    Sender<Counted>,
    Arc<AtomicUsize>,
    TcpStream,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let (io, sender) = gather(Counted {
        stream,
        writes: writes.clone(),
    });
    (io, sender, writes, peer)
}

/// Polls `future` once, on this task.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Byte `i` of the test stream (not a repeating multiple of a frame: a lost or reordered
/// frame shows).
fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn write_all_now(io: &mut GatheredIo<Counted>, cx: &mut Context<'_>, data: &[u8]) {
    write_all_now_to(io, cx, data);
}

fn write_all_now_to<S: AsyncWrite + Unpin>(
    io: &mut GatheredIo<S>,
    cx: &mut Context<'_>,
    data: &[u8],
) {
    match Pin::new(&mut *io).poll_write(cx, data) {
        Poll::Ready(Ok(n)) => assert_eq!(n, data.len(), "the whole write is taken"),
        other => panic!("the write was not taken at once: {other:?}"),
    }
}

/// Writes `data` from `*taken` on until all of it is taken (a loopback socket with room
/// takes a direct write at once).
fn write_rest_now(
    io: &mut GatheredIo<Counted>,
    cx: &mut Context<'_>,
    data: &[u8],
    taken: &mut usize,
) {
    while *taken < data.len() {
        match Pin::new(&mut *io).poll_write(cx, &data[*taken..]) {
            Poll::Ready(Ok(n)) => *taken += n,
            other => panic!("a loopback socket with room took nothing: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_writes_and_flushes_of_one_run_reach_the_socket_as_one_write() {
    let (mut io, sender, writes, mut peer) = connected().await;
    let sent: Vec<u8> = (0..10 * 1024).map(byte).collect();
    let frames = sent.clone();
    let counted = writes.clone();
    let mut ran = false;
    let run = std::future::poll_fn(move |cx| {
        if !std::mem::replace(&mut ran, true) {
            for frame in frames.chunks(1024) {
                write_all_now(&mut io, cx, frame);
                assert!(matches!(
                    Pin::new(&mut io).poll_flush(cx),
                    Poll::Ready(Ok(()))
                ));
            }
            assert_eq!(
                counted.load(Ordering::SeqCst),
                0,
                "nothing is written during the run"
            );
        }
        Poll::<io::Result<()>>::Pending
    });
    let mut gathering = Box::pin(Gathering::new(run, sender));
    assert!(poll_once(&mut gathering).await.is_pending());
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "one write at the end of the run"
    );
    let mut got = vec![0; sent.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_large_write_with_nothing_gathered_goes_straight_to_the_socket() {
    let (mut io, sender, writes, mut peer) = connected().await;
    let sent: Vec<u8> = (0..DIRECT_FROM * 2).map(byte).collect();
    let data = sent.clone();
    let counted = writes.clone();
    let mut taken = 0;
    let run = std::future::poll_fn(move |cx| {
        write_rest_now(&mut io, cx, &data, &mut taken);
        assert!(
            counted.load(Ordering::SeqCst) >= 1,
            "written during the run, not gathered"
        );
        Poll::<io::Result<()>>::Pending
    });
    let mut gathering = Box::pin(Gathering::new(run, sender));
    assert!(poll_once(&mut gathering).await.is_pending());
    let mut got = vec![0; sent.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_large_write_after_gathered_ones_keeps_their_order() {
    let (mut io, sender, _writes, mut peer) = connected().await;
    let sent: Vec<u8> = (0..1024 + DIRECT_FROM).map(byte).collect();
    let data = sent.clone();
    let mut taken = 0;
    let run = std::future::poll_fn(move |cx| {
        if taken == 0 {
            write_all_now(&mut io, cx, &data[..1024]);
            taken = 1024;
        }
        write_rest_now(&mut io, cx, &data, &mut taken);
        Poll::<io::Result<()>>::Pending
    });
    let mut gathering = Box::pin(Gathering::new(run, sender));
    assert!(poll_once(&mut gathering).await.is_pending());
    let mut got = vec![0; sent.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(got, sent, "the gathered kilobyte first");
}

#[tokio::test]
async fn a_peer_that_does_not_read_holds_back_writes_beyond_the_limit() {
    let (mut io, sender, _writes, mut peer) = connected().await;
    // Written until a write is refused: the socket's buffers fill, then the gathered bytes.
    let accepted = Arc::new(AtomicUsize::new(0));
    let taken = accepted.clone();
    let gather = sender.0.clone();
    let mut refused = false;
    let run = std::future::poll_fn(move |cx| {
        let mut frame = [0u8; 1024];
        while !refused {
            let start = taken.load(Ordering::SeqCst);
            for (i, b) in frame.iter_mut().enumerate() {
                *b = byte(start + i);
            }
            match Pin::new(&mut io).poll_write(cx, &frame) {
                Poll::Ready(Ok(n)) => {
                    taken.fetch_add(n, Ordering::SeqCst);
                }
                Poll::Ready(Err(error)) => panic!("{error}"),
                Poll::Pending => refused = true,
            }
            let held = lock(&gather).buffer.len();
            assert!(held <= GATHER_LIMIT, "{held} bytes in the buffer");
        }
        Poll::<io::Result<()>>::Pending
    });
    let gathering = tokio::spawn(Gathering::new(run, sender));
    // Once the peer reads, everything taken arrives, in order (the task is woken when
    // the socket has room again).
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let everything = async {
        loop {
            let n = peer.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
            let total = accepted.load(Ordering::SeqCst);
            if total > 0 && got.len() == total {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), everything)
        .await
        .expect("every accepted byte arrives");
    assert!(
        got.len() > GATHER_LIMIT,
        "the socket and the gather were full"
    );
    assert!(got.iter().enumerate().all(|(i, b)| *b == byte(i)));
    gathering.abort();
}

#[tokio::test]
async fn a_shutdown_sends_what_is_gathered_first() {
    let (mut io, sender, _writes, mut peer) = connected().await;
    let sent: Vec<u8> = (0..1024).map(byte).collect();
    let data = sent.clone();
    let mut written = false;
    let run = std::future::poll_fn(move |cx| {
        if !std::mem::replace(&mut written, true) {
            write_all_now(&mut io, cx, &data);
        }
        Pin::new(&mut io).poll_shutdown(cx)
    });
    let ended = Gathering::new(run, sender).await;
    assert!(ended.is_ok());
    let mut got = Vec::new();
    peer.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, sent, "the gathered bytes, then the end of the stream");
}

#[tokio::test]
async fn a_connection_that_ends_without_a_shutdown_ends_once_its_last_bytes_are_sent() {
    // As hyper does after its answer to a CONNECT: write, flush, end.
    let (mut io, sender, writes, mut peer) = connected().await;
    let sent: Vec<u8> = (0..1024).map(byte).collect();
    let data = sent.clone();
    let run = std::future::poll_fn(move |cx| {
        write_all_now(&mut io, cx, &data);
        assert!(matches!(
            Pin::new(&mut io).poll_flush(cx),
            Poll::Ready(Ok(()))
        ));
        Poll::Ready(Ok::<(), io::Error>(()))
    });
    assert!(Gathering::new(run, sender).await.is_ok());
    assert_eq!(writes.load(Ordering::SeqCst), 1);
    let mut got = vec![0; sent.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(got, sent);
}

/// A socket whose writes fail as the write timeout fails them.
#[derive(Default)]
struct TimedOut {
    attempts: Arc<AtomicUsize>,
}

impl AsyncRead for TimedOut {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

impl AsyncWrite for TimedOut {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_send_that_fails_after_the_run_fails_hypers_next_read_and_wakes_it() {
    let socket = TimedOut::default();
    let attempts = socket.attempts.clone();
    let (io, sender) = gather(socket);
    let io = Arc::new(Mutex::new(io));
    let writer = io.clone();
    let run = std::future::poll_fn(move |cx| {
        let mut io = writer.lock().unwrap();
        let taken = Pin::new(&mut *io).poll_write(cx, b"an answer");
        assert!(
            matches!(taken, Poll::Ready(Ok(9))),
            "gathered, not yet sent"
        );
        Poll::<io::Result<()>>::Pending
    });
    let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut gathering = Box::pin(Gathering::new(run, sender));
    assert!(gathering.as_mut().poll(&mut cx).is_pending());
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        1,
        "woken to learn of the failure"
    );
    let mut buf = [0u8; 16];
    let mut read = ReadBuf::new(&mut buf);
    let mut io = io.lock().unwrap();
    match Pin::new(&mut *io).poll_read(&mut cx, &mut read) {
        Poll::Ready(Err(error)) => assert_eq!(error.kind(), io::ErrorKind::TimedOut),
        other => panic!("the failure was not handed on: {other:?}"),
    }
    // Nothing is tried on the socket again: no second wait for a write timeout.
    let mut shutdown = Pin::new(&mut *io).poll_shutdown(&mut cx);
    assert!(matches!(shutdown, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::TimedOut));
    shutdown = Pin::new(&mut *io).poll_shutdown(&mut cx);
    assert!(matches!(shutdown, Poll::Ready(Err(ref e)) if e.kind() == io::ErrorKind::TimedOut));
    assert!(matches!(
        Pin::new(&mut *io).poll_write(&mut cx, b"more"),
        Poll::Ready(Err(_))
    ));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "one send tried");
}

#[tokio::test]
async fn a_last_send_that_fails_is_the_connections_error() {
    let (mut io, sender) = gather(TimedOut::default());
    let run = std::future::poll_fn(move |cx| {
        write_all_now_to(&mut io, cx, b"the last answer");
        Poll::Ready(Ok::<(), io::Error>(()))
    });
    let ended = Gathering::new(run, sender).await;
    assert_eq!(ended.unwrap_err().kind(), io::ErrorKind::TimedOut);
}
