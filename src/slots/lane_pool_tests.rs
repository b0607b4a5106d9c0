use super::*;
use crate::lanes::set_current_for_test;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;

fn later() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// A slot taken at once on `lane`.
async fn take_on(pool: &Arc<LanePool>, lane: usize) -> PoolSlot {
    set_current_for_test(Some(lane));
    pool.acquire(later()).await.expect("a free slot")
}

/// A wait for a slot on `lane`, queued before this returns; ends with the slot.
async fn wait_on(pool: &Arc<LanePool>, lane: usize) -> JoinHandle<Option<PoolSlot>> {
    set_current_for_test(Some(lane));
    let task = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire(later()).await }
    });
    tokio::task::yield_now().await;
    task
}

/// Runs the woken tasks.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn waiting(pool: &LanePool) -> usize {
    pool.lock()
        .lanes
        .iter()
        .map(|lane| lane.waiting.len())
        .sum()
}

/// The index of each waiter's lane (in [`State::lanes`]).
fn waiting_on(pool: &LanePool) -> Vec<usize> {
    let state = pool.lock();
    let lanes = state.lanes.iter().enumerate();
    lanes
        .flat_map(|(index, lane)| vec![index; lane.waiting.len()])
        .collect()
}

/// Slots held on the lanes in `held`, then waits queued on the lanes in `waiters`
/// (oldest first); the first held slot is freed on its own lane.
struct Handoff {
    held: [usize; 2],
    waiters: [usize; 2],
    /// Which of `waiters` gets the slot, and the [`State::lanes`] index it is charged to.
    handed_to: usize,
    charged_to: usize,
    /// The [`State::lanes`] index of the waiter left waiting.
    still_waiting_on: usize,
}

// Real time: a paused clock would end the waits while the test yields.
#[tokio::test]
async fn a_freed_slot_stays_on_its_lane_unless_that_lane_is_over_its_share() {
    let cases = [
        // Lane 0 holds its share (1 of 2) and its waiter is the younger: it still wins.
        Handoff {
            held: [0, 1],
            waiters: [1, 0],
            handed_to: 1,
            charged_to: 1,
            still_waiting_on: 2,
        },
        // Lane 0 holds both slots: its freed slot goes to lane 1, though younger.
        Handoff {
            held: [0, 0],
            waiters: [0, 1],
            handed_to: 1,
            charged_to: 2,
            still_waiting_on: 1,
        },
    ];
    for (case, handoff) in cases.iter().enumerate() {
        let pool = LanePool::new(2);
        let mut held = Vec::new();
        for lane in handoff.held {
            held.push(take_on(&pool, lane).await);
        }
        let mut waits = Vec::new();
        for lane in handoff.waiters {
            waits.push(wait_on(&pool, lane).await);
        }
        set_current_for_test(Some(handoff.held[0]));
        drop(held.remove(0));
        settle().await;
        assert_eq!(
            waiting_on(&pool),
            vec![handoff.still_waiting_on],
            "case {case}: who still waits"
        );
        let handed = waits.remove(handoff.handed_to).await.unwrap();
        assert_eq!(
            handed.map(|slot| slot.lane),
            Some(handoff.charged_to),
            "case {case}: which lane the slot is charged to"
        );
        waits.iter().for_each(JoinHandle::abort);
        set_current_for_test(None);
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_times_out_or_is_dropped_leaves_nothing_behind() {
    let pool = LanePool::new(1);
    let held = take_on(&pool, 0).await;
    let soon = Instant::now() + Duration::from_millis(50);
    assert!(pool.acquire(soon).await.is_none(), "timed out");
    let dropped = wait_on(&pool, 1).await;
    dropped.abort();
    settle().await;
    assert_eq!(waiting(&pool), 0);
    drop(held);
    assert_eq!(
        pool.lock().free,
        1,
        "the slot is free, not handed to a gone wait"
    );
    set_current_for_test(None);
}

// Real time: a paused clock would end the waits while the test yields.
#[tokio::test]
async fn a_slot_handed_to_a_wait_dropped_before_it_ran_is_given_back() {
    let pool = LanePool::new(1);
    let held = take_on(&pool, 0).await;
    let wait = wait_on(&pool, 0).await;
    drop(held);
    // The slot is in the wait's channel; the wait goes before it runs.
    wait.abort();
    settle().await;
    let state = pool.lock();
    assert_eq!(state.free, 1);
    assert!(state.lanes.iter().all(|lane| lane.held == 0));
}

/// A small generator of varied numbers, seeded per lane: every run draws the same
/// deadlines and aborts (the threads' interleaving still varies).
struct Varied(u64);

impl Varied {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// Waits that ended without a slot, in the test below.
static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);

/// Rounds of requests on one lane's thread, some dropped mid-wait.
fn run_lane(pool: Arc<LanePool>, lane: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    set_current_for_test(Some(lane));
    let mut varied = Varied(lane as u64 + 1);
    runtime.block_on(async {
        // Enough rounds that a slot is now and then sent to a wait that just ended.
        for _ in 0..50 {
            let mut tasks = Vec::new();
            for _ in 0..400 {
                tasks.push(tokio::spawn(request(&pool, &mut varied)));
                if varied.below(5) == 0 {
                    tasks
                        .swap_remove(varied.below(tasks.len() as u64) as usize)
                        .abort();
                }
                if varied.below(3) == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for task in tasks {
                let _ = task.await;
            }
        }
    });
}

/// One request: waits up to a varied deadline, then holds its slot for a few polls.
fn request(pool: &Arc<LanePool>, varied: &mut Varied) -> impl std::future::Future<Output = ()> {
    let pool = pool.clone();
    let wait = Duration::from_micros(varied.below(2_000));
    let holds = varied.below(4);
    async move {
        match pool.acquire(Instant::now() + wait).await {
            Some(slot) => {
                for _ in 0..holds {
                    tokio::task::yield_now().await;
                }
                drop(slot);
            }
            None => {
                TIMED_OUT.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[test]
fn slots_add_up_under_lanes_that_wait_time_out_and_give_up_at_once() {
    let pool = LanePool::new(3);
    let lanes: Vec<_> = (0..3)
        .map(|lane| {
            let pool = pool.clone();
            std::thread::spawn(move || run_lane(pool, lane))
        })
        .collect();
    let mut sampled = 0;
    let hung = std::time::Instant::now() + Duration::from_secs(60);
    while !lanes.iter().all(|lane| lane.is_finished()) {
        assert!(std::time::Instant::now() < hung, "the lanes hung");
        // try_lock: a lane deadlocked on the pool must not block the sampler too.
        if let Ok(state) = pool.state.try_lock() {
            let held: usize = state.lanes.iter().map(|lane| lane.held).sum();
            assert_eq!(state.free + held, 3, "no slot made or lost while running");
            sampled += 1;
        }
        std::thread::yield_now();
    }
    for lane in lanes {
        lane.join().expect("a lane's thread ended without a panic");
    }
    let state = pool.lock();
    // Coverage, not behaviour: the run must have queued waits and timed some out (a
    // deadline of 0-2 ms against 400 requests for 3 slots), or it tested nothing.
    assert!(state.next > 0, "some requests waited ({sampled} samples)");
    assert!(
        TIMED_OUT.load(Ordering::Relaxed) > 0,
        "some waits timed out"
    );
    assert_eq!(state.free, 3, "every slot is free again");
    assert!(state.lanes.iter().all(|lane| lane.held == 0));
    assert!(state.lanes.iter().all(|lane| lane.waiting.is_empty()));
}

#[tokio::test]
async fn debug_shows_the_lane_and_the_size_but_not_the_queues() {
    let pool = LanePool::new(2);
    let slot = take_on(&pool, 1).await;
    set_current_for_test(None);
    assert_eq!(format!("{slot:?}"), "PoolSlot { lane: Some(1), .. }");
    assert_eq!(format!("{pool:?}"), "LanePool { size: 2, .. }");
}
