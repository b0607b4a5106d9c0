//! Serving lanes: one single-threaded runtime per core. The acceptor hands each new app
//! connection to the lane serving the fewest; a connection, its requests and the
//! upstream connection they share all stay on that lane's thread, so no request wakes a
//! task on another thread (each lane has its own upstream client: see
//! [`crate::upstream::Upstream`]). A lane that cannot start leaves its connections to
//! the acceptor's runtime.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

thread_local! {
    static LANE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The lane this thread serves, if it is a lane's thread.
pub fn current() -> Option<usize> {
    LANE.with(Cell::get)
}

/// Makes this thread count as `lane`'s (tests of lane-aware code on one thread).
#[cfg(test)]
pub fn set_current_for_test(lane: Option<usize>) {
    LANE.with(|cell| cell.set(lane));
}

/// How many lanes `threads` asks for: itself when set, else one per available core.
pub fn count(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

/// The acceptor's side of the lanes that started.
pub struct Lanes<T> {
    lanes: Vec<Lane<T>>,
}

/// One lane, seen from the acceptor: where to send connections, how many it has open,
/// and word when it has finished.
struct Lane<T> {
    sender: mpsc::UnboundedSender<(T, Open)>,
    open: Arc<AtomicUsize>,
    done: oneshot::Receiver<()>,
}

/// Counts a connection on its lane while alive.
pub struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T: Send + 'static> Lanes<T> {
    /// Starts `count` lanes; each runs `serve(connections)` on its own thread and
    /// runtime, and ends when `serve` returns (after `connections` ends: the acceptor
    /// stopped).
    pub fn start<S, F>(count: usize, serve: S) -> Lanes<T>
    where
        S: Fn(mpsc::UnboundedReceiver<(T, Open)>) -> F + Send + Clone + 'static,
        F: std::future::Future<Output = ()> + 'static,
    {
        let mut lanes = Lanes {
            lanes: Vec::with_capacity(count),
        };
        for lane in 0..count {
            // Made here, so a lane that cannot start is never handed a connection.
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(lane, %error, "cannot start a serving lane; the others serve its connections");
                    continue;
                }
            };
            let (sender, connections) = mpsc::unbounded_channel();
            let (finished, done) = oneshot::channel();
            let serve = serve.clone();
            let started = std::thread::Builder::new()
                .name(format!("wisegate-lane-{lane}"))
                .spawn(move || {
                    LANE.with(|cell| cell.set(Some(lane)));
                    runtime.block_on(serve(connections));
                    let _ = finished.send(());
                });
            if let Err(error) = started {
                tracing::error!(lane, %error, "cannot start a serving lane's thread; the others serve its connections");
                continue;
            }
            lanes.lanes.push(Lane {
                sender,
                open: Arc::new(AtomicUsize::new(0)),
                done,
            });
        }
        lanes
    }

    /// Hands `item` to the lane with the fewest open connections; gives it back when no
    /// lane takes it (none could start).
    pub fn dispatch(&self, item: T) -> Result<(), T> {
        let mut order: Vec<&Lane<T>> = self.lanes.iter().collect();
        order.sort_by_key(|lane| lane.open.load(Ordering::Relaxed));
        let mut item = item;
        for lane in order {
            lane.open.fetch_add(1, Ordering::Relaxed);
            match lane.sender.send((item, Open(lane.open.clone()))) {
                Ok(()) => return Ok(()),
                // The returned `Open` is dropped: the count goes back down.
                Err(mpsc::error::SendError((back, _))) => item = back,
            }
        }
        Err(item)
    }

    /// Stops handing out connections and waits for every lane to finish.
    pub async fn finish(self) {
        let (senders, finished): (Vec<_>, Vec<_>) = self
            .lanes
            .into_iter()
            .map(|lane| (lane.sender, lane.done))
            .unzip();
        drop(senders);
        for done in finished {
            let _ = done.await;
        }
    }

    /// Open connections per lane.
    #[cfg(test)]
    fn open_counts(&self) -> Vec<usize> {
        self.lanes
            .iter()
            .map(|lane| lane.open.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lanes that keep what they are handed (and so its `Open`) until the acceptor stops,
    /// and report which lane took each item.
    fn keeping_lanes(count: usize) -> (Lanes<u32>, std::sync::mpsc::Receiver<(u32, usize)>) {
        let (taken, report) = std::sync::mpsc::channel();
        let lanes = Lanes::start(
            count,
            move |mut items: mpsc::UnboundedReceiver<(u32, Open)>| {
                let taken = taken.clone();
                async move {
                    let mut kept = Vec::new();
                    while let Some((item, open)) = items.recv().await {
                        taken.send((item, current().unwrap())).unwrap();
                        kept.push(open);
                    }
                }
            },
        );
        (lanes, report)
    }

    #[tokio::test]
    async fn each_connection_goes_to_the_lane_with_the_fewest_open() {
        let (lanes, report) = keeping_lanes(3);
        for item in 0..6 {
            assert!(lanes.dispatch(item).is_ok());
            // Wait until the lane has it, so the next choice sees the count.
            let (got, _) = report.recv().unwrap();
            assert_eq!(got, item);
        }
        let counts = lanes.open_counts();
        assert_eq!(counts, vec![2, 2, 2]);
        lanes.finish().await;
    }

    #[tokio::test]
    async fn a_closed_connection_frees_its_place_on_the_lane() {
        let (taken, report) = std::sync::mpsc::channel();
        // Lane drops each item (its connection ended) at once.
        let lanes = Lanes::start(2, move |mut items: mpsc::UnboundedReceiver<(u32, Open)>| {
            let taken = taken.clone();
            async move {
                while let Some((item, open)) = items.recv().await {
                    drop(open);
                    taken.send((item, current().unwrap())).unwrap();
                }
            }
        });
        for item in 0..4 {
            assert!(lanes.dispatch(item).is_ok());
            let (_, lane) = report.recv().unwrap();
            assert_eq!(lane, 0, "every lane is empty again: the first is chosen");
        }
        lanes.finish().await;
    }

    #[tokio::test]
    async fn a_connection_no_lane_can_take_is_given_back() {
        let (ready, started) = std::sync::mpsc::channel();
        let lanes = Lanes::start(2, move |items: mpsc::UnboundedReceiver<(u32, Open)>| {
            // This lane cannot serve: it drops its end at once.
            drop(items);
            ready.send(()).unwrap();
            async {}
        });
        started.recv().unwrap();
        started.recv().unwrap();
        assert_eq!(lanes.dispatch(7).unwrap_err(), 7);
        assert!(lanes.open_counts().iter().all(|&open| open == 0));
        lanes.finish().await;
    }

    #[test]
    fn the_count_is_the_setting_or_one_per_core() {
        assert_eq!(count(Some(3)), 3);
        assert!(count(None) >= 1);
        assert_eq!(count(Some(0)), 1);
    }
}
