//! Which connections a listener serves: at most `limits.max_connections` at once, and a
//! new connection at that limit makes room by closing (gracefully) the one that has had
//! nothing in flight for longest. So sockets that send nothing, or idle keep-alive
//! connections, can never keep a request out: they go first, oldest first; only
//! connections with requests in flight make a newcomer wait. (Counting only active
//! connections instead would leave the number of open sockets unbounded, up to the
//! process's file limit, where accept itself fails.)

use crate::watchdog::{Activity, CloseReason, RoomWanted};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listener's connections.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    open: Mutex<Open>,
    room: Arc<RoomWanted>,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    connections: HashMap<u64, Arc<Activity>>,
    /// The connection closed to make room and not gone yet: one at a time.
    making_room: Option<u64>,
}

/// A connection being served: counted until dropped.
#[derive(Debug)]
pub struct Admitted {
    id: u64,
    admission: Arc<Admission>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.admission.lock();
        open.connections.remove(&self.id);
        if open.making_room == Some(self.id) {
            open.making_room = None;
        }
    }
}

impl Admission {
    pub fn new(max_connections: usize) -> Arc<Admission> {
        Arc::new(Admission {
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            open: Mutex::default(),
            room: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection just accepted, making room for it at the limit (waiting while
    /// every connection has a request in flight). Returns its [`Activity`].
    pub async fn admit(self: &Arc<Self>) -> (Arc<Activity>, Admitted) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.make_room().await,
        };
        let activity = Arc::new(Activity::new(Some(self.room.clone())));
        let mut open = self.lock();
        let id = open.next;
        open.next += 1;
        open.connections.insert(id, activity.clone());
        drop(open);
        let admitted = Admitted {
            id,
            admission: self.clone(),
            _permit: permit,
        };
        (activity, admitted)
    }

    async fn make_room(&self) -> OwnedSemaphorePermit {
        loop {
            self.room.waiting.store(true, Ordering::Relaxed);
            let went_idle = self.room.went_idle.notified();
            tokio::pin!(went_idle);
            went_idle.as_mut().enable();
            self.close_longest_idle();
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => {
                    self.room.waiting.store(false, Ordering::Relaxed);
                    // (The semaphore is never closed.)
                    if let Ok(permit) = permit {
                        return permit;
                    }
                }
                () = &mut went_idle => {}
            }
        }
    }

    /// Asks the connection idle for longest to close, unless one asked is still open.
    fn close_longest_idle(&self) {
        let mut open = self.lock();
        if open.making_room.is_some() {
            return;
        }
        let longest = open
            .connections
            .iter()
            .filter(|(_, activity)| !activity.closing())
            .filter_map(|(id, activity)| Some((activity.idle_since()?, *id, activity)))
            .min_by_key(|(since, id, _)| (*since, *id));
        if let Some((_, id, activity)) = longest {
            tracing::debug!("limits.max_connections reached: closing the connection idle longest");
            activity.ask_to_close(CloseReason::MakeRoom);
            open.making_room = Some(id);
        }
    }

    /// Asks every connection to close (shutdown).
    pub fn close_all(&self) {
        for activity in self.lock().connections.values() {
            activity.ask_to_close(CloseReason::Shutdown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Version;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn at_the_limit_the_longest_idle_connection_makes_room() {
        let admission = Admission::new(3);
        let (oldest, first) = admission.admit().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (busy, _second) = admission.admit().await;
        let _request = busy.request_started(Version::HTTP_11);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (newer, _third) = admission.admit().await;

        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        tokio::task::yield_now().await;
        assert!(oldest.closing(), "the oldest idle one is asked to close");
        assert!(!busy.closing() && !newer.closing());
        assert!(!waiting.is_finished(), "room is made when it is gone");
        drop(first);
        let (fourth, _admitted) = waiting.await.unwrap();
        assert!(!fourth.closing());
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_connection_busy_a_newcomer_waits_for_one_to_go_idle() {
        let admission = Admission::new(1);
        let (busy, only) = admission.admit().await;
        let request = busy.request_started(Version::HTTP_2);
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!busy.closing(), "a busy connection is never taken");
        drop(request);
        tokio::task::yield_now().await;
        assert!(busy.closing(), "idle now: it makes room");
        drop(only);
        assert!(!waiting.await.unwrap().0.closing());
    }

    #[tokio::test]
    async fn shutdown_asks_every_connection_to_close() {
        let admission = Admission::new(4);
        let (a, _a) = admission.admit().await;
        let (b, _b) = admission.admit().await;
        admission.close_all();
        assert!(a.closing() && b.closing());
    }
}
