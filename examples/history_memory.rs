//! What `/status`'s last hour costs in memory with 50 routes (and the default route),
//! every minute of every route used and the event ring full: the heap bytes the history
//! holds, counted by a wrapping allocator.
//!
//! `cargo run --example history_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use wisegate::history::{Clock, EventKind, History, ShadowResult, Way, MAX_EVENTS, MINUTES};

/// The system allocator, counting the bytes in use.
struct Counting;

static IN_USE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let names: Vec<Arc<str>> = (0..50)
        .map(|i| Arc::from(format!("route-{i:02}").as_str()))
        .chain([Arc::from("default")])
        .collect();
    let before = IN_USE.load(Ordering::Relaxed);
    let clock = Clock::manual(SystemTime::now());
    let history = History::new(clock.clone());
    let series = history.series_for(&names);
    let routes = IN_USE.load(Ordering::Relaxed) - before;
    for _ in 0..MINUTES {
        for route in &series {
            route.record(200, Way::Mtls, Duration::from_millis(12));
            route.shadow(ShadowResult::Match);
        }
        clock.advance(Duration::from_secs(60));
    }
    let after_traffic = IN_USE.load(Ordering::Relaxed) - before;
    let detail = "x".repeat(200);
    for _ in 0..MAX_EVENTS {
        history.event(EventKind::ConfigReload, false, &detail);
    }
    let total = IN_USE.load(Ordering::Relaxed) - before;
    println!(
        "history with {} route series: {routes} bytes when made, {after_traffic} after an hour of traffic (the request path allocates nothing), {total} with {MAX_EVENTS} events of 200 characters",
        names.len()
    );
    assert_eq!(routes, after_traffic, "recording allocates nothing");
    drop(series);
    drop(history);
}
