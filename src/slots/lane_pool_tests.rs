use super::*;
use crate::lanes::set_current_for_test;
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

// Real time: a paused clock would end the waits while the test yields.
#[tokio::test]
async fn a_freed_slot_goes_to_a_waiter_on_its_own_lane_before_an_older_one() {
    let pool = LanePool::new(2);
    let on_zero = take_on(&pool, 0).await;
    let _on_one = take_on(&pool, 1).await;
    let older_on_one = wait_on(&pool, 1).await;
    let on_zero_waiter = wait_on(&pool, 0).await;
    set_current_for_test(Some(0));
    drop(on_zero);
    settle().await;
    assert_eq!(waiting_on(&pool), vec![2], "lane 1's waiter still waits");
    assert_eq!(
        on_zero_waiter.await.unwrap().map(|slot| slot.lane),
        Some(1),
        "charged to lane 0"
    );
    older_on_one.abort();
    set_current_for_test(None);
}

// Real time: a paused clock would end the waits while the test yields.
#[tokio::test]
async fn a_lane_over_its_share_hands_its_freed_slot_to_another_lane() {
    let pool = LanePool::new(2);
    let first = take_on(&pool, 0).await;
    let _second = take_on(&pool, 0).await;
    // Lane 0's own waiter is the older; lane 1 holds nothing and waits too.
    let on_zero_waiter = wait_on(&pool, 0).await;
    let on_one_waiter = wait_on(&pool, 1).await;
    set_current_for_test(Some(0));
    drop(first);
    settle().await;
    assert_eq!(waiting_on(&pool), vec![1], "lane 0's waiter still waits");
    assert_eq!(
        on_one_waiter.await.unwrap().map(|slot| slot.lane),
        Some(2),
        "charged to lane 1"
    );
    on_zero_waiter.abort();
    set_current_for_test(None);
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
