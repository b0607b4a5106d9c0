//! The watchdog's deadlines on a paused clock, with a stand-in for hyper's connection.

use super::*;
use http::Version;
use std::sync::Mutex;
use std::task::Waker;

const TIMEOUTS: Timeouts = Timeouts {
    header_read: Duration::from_secs(10),
    idle: Duration::from_secs(90),
};

/// What the stand-in connection was told and is to do.
#[derive(Default)]
struct Script {
    /// Bytes to "read" at the next poll.
    read: bool,
    shutdowns: u32,
    /// Whether a graceful shutdown ends it (else it hangs on, like a silent HTTP/2 peer).
    ends_on_shutdown: bool,
    waker: Option<Waker>,
}

struct FakeConnection {
    script: Arc<Mutex<Script>>,
    activity: Arc<Activity>,
}

impl Future for FakeConnection {
    type Output = Result<(), ()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut script = self.script.lock().unwrap();
        if std::mem::take(&mut script.read) {
            self.activity.bytes_read();
        }
        if script.shutdowns > 0 && script.ends_on_shutdown {
            return Poll::Ready(Ok(()));
        }
        script.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Graceful for FakeConnection {
    fn graceful_shutdown(self: Pin<&mut Self>) {
        self.script.lock().unwrap().shutdowns += 1;
    }
}

/// A watched stand-in connection, run on its own task.
struct Watched {
    activity: Arc<Activity>,
    script: Arc<Mutex<Script>>,
    started: Instant,
    /// When the watchdog ended, and whether the connection ended itself.
    ended: tokio::task::JoinHandle<(Instant, bool)>,
}

fn watch(ends_on_shutdown: bool) -> Watched {
    let activity = Arc::new(Activity::new(None));
    let script = Arc::new(Mutex::new(Script {
        ends_on_shutdown,
        ..Script::default()
    }));
    let connection = FakeConnection {
        script: script.clone(),
        activity: activity.clone(),
    };
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let watchdog = Watchdog::new(connection, activity.clone(), TIMEOUTS, peer);
    Watched {
        activity,
        script,
        started: Instant::now(),
        ended: tokio::spawn(async move {
            let outcome = watchdog.await;
            (Instant::now(), outcome.is_some())
        }),
    }
}

impl Watched {
    /// Waits until the watchdog ends; how long after the start, and whether gracefully.
    async fn lifetime(self) -> (Duration, bool, u32) {
        let (ended, graceful) = self.ended.await.unwrap();
        let shutdowns = self.script.lock().unwrap().shutdowns;
        (ended - self.started, graceful, shutdowns)
    }

    /// Bytes from the peer, read by the connection as its task next runs.
    fn read(&self) {
        let mut script = self.script.lock().unwrap();
        script.read = true;
        if let Some(waker) = script.waker.take() {
            waker.wake();
        }
    }

    /// One request, `lasting` long, answered.
    async fn request(&self, version: Version, lasting: Duration) {
        let pending = self.activity.request_started(version);
        tokio::time::sleep(lasting).await;
        drop(pending.answered(()));
    }
}

async fn sleep_s(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_a_request_is_closed_at_the_header_read_timeout() {
    let watched = watch(true);
    assert_eq!(watched.lifetime().await, (TIMEOUTS.header_read, true, 1));
}

#[tokio::test(start_paused = true)]
async fn bytes_without_a_complete_head_do_not_extend_the_first_deadline() {
    let watched = watch(true);
    sleep_s(9).await;
    watched.read();
    assert_eq!(watched.lifetime().await.0, TIMEOUTS.header_read);
}

#[tokio::test(start_paused = true)]
async fn one_that_ignores_the_graceful_close_is_dropped_a_grace_later() {
    let watched = watch(false);
    assert_eq!(
        watched.lifetime().await,
        (TIMEOUTS.header_read + CLOSE_GRACE, false, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_lives_until_the_idle_timeout() {
    let watched = watch(true);
    sleep_s(1).await;
    watched
        .request(Version::HTTP_11, Duration::from_secs(1))
        .await;
    let (lived, graceful, _) = watched.lifetime().await;
    assert_eq!(lived, Duration::from_secs(2) + TIMEOUTS.idle);
    assert!(graceful);
}

#[tokio::test(start_paused = true)]
async fn a_head_begun_on_an_idle_http1_connection_has_the_header_read_timeout() {
    let watched = watch(true);
    watched.request(Version::HTTP_11, Duration::ZERO).await;
    sleep_s(30).await;
    watched.read();
    assert_eq!(
        watched.lifetime().await.0,
        Duration::from_secs(30) + TIMEOUTS.header_read
    );
}

#[tokio::test(start_paused = true)]
async fn pings_on_an_idle_http2_connection_do_not_keep_it_open() {
    let watched = watch(true);
    watched.request(Version::HTTP_2, Duration::ZERO).await;
    for _ in 0..8 {
        sleep_s(10).await;
        watched.read();
    }
    assert_eq!(watched.lifetime().await.0, TIMEOUTS.idle);
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_keeps_its_connection_then_the_idle_timeout_counts() {
    let watched = watch(true);
    watched
        .request(Version::HTTP_2, Duration::from_secs(300))
        .await;
    assert_eq!(
        watched.lifetime().await.0,
        Duration::from_secs(300) + TIMEOUTS.idle
    );
}

#[tokio::test(start_paused = true)]
async fn asked_to_close_it_closes_at_once() {
    let watched = watch(true);
    sleep_s(3).await;
    watched.activity.ask_to_close(CloseReason::MakeRoom);
    assert_eq!(watched.lifetime().await, (Duration::from_secs(3), true, 1));
}

#[tokio::test(start_paused = true)]
async fn abandoning_streams_beyond_the_allowance_closes_the_connection() {
    let activity = Arc::new(Activity::new(None));
    for _ in 0..80 {
        drop(activity.request_started(Version::HTTP_2).answered(()));
    }
    let allowed = MAX_ABANDONED_STREAMS + 80 / ABANDONED_PER_ANSWERED;
    for _ in 0..allowed {
        drop(activity.request_started(Version::HTTP_2));
    }
    assert!(activity.abandons_streams());
    assert!(!activity.closing(), "within the allowance");
    drop(activity.request_started(Version::HTTP_2));
    assert!(activity.closing());
    assert_eq!(activity.idle_since(), Some(Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn the_longest_idle_is_told_by_idle_since() {
    let activity = Arc::new(Activity::new(None));
    let accepted = Instant::now();
    assert_eq!(activity.idle_since(), Some(accepted));
    let pending = activity.request_started(Version::HTTP_11);
    assert_eq!(activity.idle_since(), None, "busy");
    sleep_s(5).await;
    let body = pending.answered(());
    assert_eq!(
        activity.idle_since(),
        None,
        "its answer is still being sent"
    );
    drop(body);
    assert_eq!(
        activity.idle_since(),
        Some(accepted + Duration::from_secs(5))
    );
}
