//! The host's slots as one pool that hands a freed slot to a request waiting on the
//! same serving lane ([`crate::lanes`]) while that lane holds no more than its fair
//! share. A FIFO semaphore woke the oldest waiter wherever it was, so with more requests
//! in flight than slots about every other handoff woke a task on the other lane's thread
//! (an eventfd write and a context switch). A lane over its share gives its freed slots
//! to the oldest waiter of a lane under its share first, so no lane starves.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A fixed number of slots, shared by the lanes.
pub struct LanePool {
    size: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for LanePool {
    /// The size only: the queues' senders are nothing to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanePool")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    free: usize,
    /// The order of arrival of waiters, for the oldest first.
    next: u64,
    /// Index 0: threads that are no lane's; index `n + 1`: lane `n`.
    lanes: Vec<Lane>,
}

#[derive(Debug, Default)]
struct Lane {
    held: usize,
    waiting: VecDeque<(u64, Sender)>,
}

type Sender = oneshot::Sender<PoolSlot>;

/// A slot of the pool, given back when dropped.
pub struct PoolSlot {
    pool: Arc<LanePool>,
    lane: usize,
    armed: bool,
}

impl std::fmt::Debug for PoolSlot {
    /// The serving lane it is charged to (`None`: no lane's thread), not the pool.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSlot")
            .field("lane", &self.lane.checked_sub(1))
            .finish_non_exhaustive()
    }
}

impl Drop for PoolSlot {
    fn drop(&mut self) {
        if self.armed {
            self.pool.give_back(self.lane);
        }
    }
}

/// This thread's index in [`State::lanes`].
fn this_lane() -> usize {
    crate::lanes::current().map_or(0, |lane| lane + 1)
}

impl State {
    fn lane(&mut self, index: usize) -> &mut Lane {
        if index >= self.lanes.len() {
            self.lanes.resize_with(index + 1, Lane::default);
        }
        &mut self.lanes[index]
    }

    /// The waiter that gets a slot freed on lane `from`, taken out of its queue with its
    /// lane's index; given-up waits are dropped from the front of every queue first.
    fn next_waiter(&mut self, from: usize, size: usize) -> Option<(usize, Sender)> {
        for lane in &mut self.lanes {
            while lane.waiting.front().is_some_and(|(_, tx)| tx.is_closed()) {
                lane.waiting.pop_front();
            }
        }
        let active = self
            .lanes
            .iter()
            .filter(|lane| lane.held > 0 || !lane.waiting.is_empty())
            .count();
        let fair = size / active.max(1);
        let oldest = |under: bool| {
            self.lanes
                .iter()
                .enumerate()
                .filter(|(_, lane)| !under || lane.held < fair)
                .filter_map(|(index, lane)| lane.waiting.front().map(|(seq, _)| (*seq, index)))
                .min()
                .map(|(_, index)| index)
        };
        let to = match self.lanes.get(from) {
            Some(lane) if !lane.waiting.is_empty() && lane.held < fair => from,
            _ => oldest(true).or_else(|| oldest(false))?,
        };
        let (_, sender) = self.lanes[to].waiting.pop_front()?;
        Some((to, sender))
    }
}

impl LanePool {
    pub fn new(size: usize) -> Arc<LanePool> {
        Arc::new(LanePool {
            size,
            state: Mutex::new(State {
                free: size,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A slot, at once if one is free, else the first one handed to this wait before
    /// `deadline`.
    pub async fn acquire(self: &Arc<Self>, deadline: Instant) -> Option<PoolSlot> {
        let lane = this_lane();
        let (seq, receiver) = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                state.lane(lane).held += 1;
                return Some(self.slot(lane));
            }
            let (sender, receiver) = oneshot::channel();
            let seq = state.next;
            state.next += 1;
            state.lane(lane).waiting.push_back((seq, sender));
            (seq, receiver)
        };
        let mut waiting = Waiting {
            pool: self,
            lane,
            seq,
            taken_out: false,
        };
        let mut receiver = receiver;
        let handed = match tokio::time::timeout_at(deadline, &mut receiver).await {
            Ok(handed) => handed.ok(),
            // A slot handed just as the deadline passed is still taken.
            Err(_) => receiver.try_recv().ok(),
        };
        // A handed slot came through a sender already taken out of the queue.
        waiting.taken_out = handed.is_some();
        handed
    }

    fn slot(self: &Arc<Self>, lane: usize) -> PoolSlot {
        PoolSlot {
            pool: self.clone(),
            lane,
            armed: true,
        }
    }

    /// Takes back a slot held by `lane` and hands it to the waiter [`State::next_waiter`]
    /// picks, or frees it.
    fn give_back(self: &Arc<Self>, lane: usize) {
        let from = this_lane();
        let mut state = self.lock();
        state.lane(lane).held -= 1;
        loop {
            let Some((to, sender)) = state.next_waiter(from, self.size) else {
                state.free += 1;
                return;
            };
            state.lanes[to].held += 1;
            drop(state);
            // Sent outside the lock: the wake may reach another thread.
            let Err(mut unsent) = sender.send(self.slot(to)) else {
                return;
            };
            unsent.armed = false;
            state = self.lock();
            state.lanes[to].held -= 1;
        }
    }
}

/// A wait in its lane's queue, taken out when the wait ends (handed a slot, timed out,
/// or dropped with its request).
struct Waiting<'a> {
    pool: &'a LanePool,
    lane: usize,
    seq: u64,
    /// Set when a slot came: its sender left the queue then, so there is nothing to scan.
    taken_out: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.taken_out {
            return;
        }
        let mut state = self.pool.lock();
        let waiting = &mut state.lane(self.lane).waiting;
        if let Some(at) = waiting.iter().position(|(seq, _)| *seq == self.seq) {
            waiting.remove(at);
        }
    }
}

#[cfg(test)]
#[path = "lane_pool_tests.rs"]
mod tests;
