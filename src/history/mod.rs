//! The last hour, for `/status`: per route, requests per minute by status class, the way
//! they went and their latency ([`series`]), and one time line of what happened to the
//! process: token refreshes, reloads, rollback flips, breaker openings, certificate
//! rotations, rollback-readiness probes ([`events`]).
//!
//! Bounded whatever the traffic: [`MINUTES`] one-minute buckets per route series, at most
//! [`MAX_ROUTES`] series (routes past that share one "(more routes)" series) and at most
//! [`events::MAX_EVENTS`] events. The request path writes with relaxed atomic adds into
//! the series its snapshot resolved once ([`History::series_for`]): no lock, no
//! allocation. Memory with 50 routes: `examples/history_memory.rs` measures it (the
//! figure is in docs/operations.md, "Status page").
//!
//! Time comes from a [`Clock`]: the system clock, or a manual one that a test or the
//! scripted hour (`tests/it/status_page.rs`, `a_scripted_hour_...`) moves forward.

mod clock;
mod events;
mod series;

pub use clock::{Clock, MINUTES};

pub use events::{Event, EventKind, EventSink, Timeline, MAX_EVENTS};
pub use series::{
    latency_bucket_bounds_us, ClassSeries, Latency, RouteHour, RouteSeries, ShadowResult, Way,
    WaySeries, LATENCY_BUCKETS,
};

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Route series kept at most (the default route counts as one).
pub const MAX_ROUTES: usize = 64;

/// The series name routes share once [`MAX_ROUTES`] are taken.
pub const OVERFLOW_ROUTE: &str = "(more routes)";

/// The process's history: the route series and the event time line.
#[derive(Debug)]
pub struct History {
    clock: Clock,
    timeline: Arc<Timeline>,
    routes: Mutex<Vec<(Arc<str>, Arc<RouteSeries>)>>,
    overflow: Arc<RouteSeries>,
}

/// The hour as `/status` shows it: when it starts and the events in it. The route
/// series are in each route's entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    /// Start of the oldest minute shown (seconds since the epoch).
    pub start_unix: u64,
    /// The width of one bucket, in seconds.
    pub minute_s: u64,
    /// When this was read.
    pub now_unix: u64,
    /// Each latency figure is the middle of a histogram bucket: within this share of
    /// the true value.
    pub latency_resolution: String,
    /// The events of the hour, oldest first.
    pub events: Vec<Event>,
}

impl History {
    pub fn new(clock: Clock) -> History {
        History {
            timeline: Arc::new(Timeline::new(clock.clone())),
            overflow: Arc::new(RouteSeries::new(clock.clone())),
            routes: Mutex::new(Vec::new()),
            clock,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The event time line (parts built before the history attach it to their
    /// [`EventSink`]).
    pub fn timeline(&self) -> &Arc<Timeline> {
        &self.timeline
    }

    /// Records an event now.
    pub fn event(&self, kind: EventKind, ok: bool, detail: &str) {
        self.timeline.record(kind, ok, detail);
    }

    /// Records a rejected reload.
    pub fn reload_rejected(&self, message: &str) {
        self.event(
            EventKind::ConfigReload,
            false,
            &format!("rejected: {message}"),
        );
    }

    /// Records an applied reload (`result`: the metric's, `success` or `cert_rejected`)
    /// and, when it changed routes' effective modes (`changes`: route, from, to), a
    /// rollback flip (`ok` when `rollback.all` is off after it).
    pub fn reload_applied(
        &self,
        generation: u64,
        result: &str,
        rollback_all: bool,
        changes: &[(String, (String, String))],
    ) {
        let applied = format!("generation {generation} applied ({result})");
        self.event(EventKind::ConfigReload, result == "success", &applied);
        if changes.is_empty() {
            return;
        }
        let flips: Vec<String> = changes
            .iter()
            .map(|(route, (from, to))| format!("{route}: {from} -> {to}"))
            .collect();
        let state = if rollback_all { "on" } else { "off" };
        let detail = format!("rollback.all {state}; {}", flips.join("; "));
        self.event(EventKind::RollbackFlip, !rollback_all, &detail);
    }

    /// The series of each route named in `labels` (a snapshot's route labels, in order),
    /// kept across reloads by name. Series of routes no longer in `labels` make room
    /// when all [`MAX_ROUTES`] are taken; past that, routes share [`OVERFLOW_ROUTE`].
    pub fn series_for(&self, labels: &[Arc<str>]) -> Vec<Arc<RouteSeries>> {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        labels
            .iter()
            .map(|label| {
                if let Some((_, series)) = routes.iter().find(|(name, _)| name == label) {
                    return series.clone();
                }
                let series = Arc::new(RouteSeries::new(self.clock.clone()));
                if routes.len() < MAX_ROUTES {
                    routes.push((label.clone(), series.clone()));
                    return series;
                }
                match routes.iter().position(|(name, _)| !labels.contains(name)) {
                    Some(unused) => {
                        routes[unused] = (label.clone(), series.clone());
                        series
                    }
                    None => self.overflow.clone(),
                }
            })
            .collect()
    }

    /// The current hour: its start and its events.
    pub fn hour(&self) -> Hour {
        let now = self.clock.unix_seconds();
        let start_unix = (now / 60 + 1).saturating_sub(MINUTES as u64) * 60;
        Hour {
            start_unix,
            minute_s: 60,
            now_unix: now,
            latency_resolution: series::LATENCY_RESOLUTION.to_owned(),
            events: self.timeline.since(start_unix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn labels(names: &[&str]) -> Vec<Arc<str>> {
        names.iter().map(|name| Arc::from(*name)).collect()
    }

    #[test]
    fn series_are_kept_by_name_across_snapshots_and_bounded() {
        let history = History::new(Clock::manual(SystemTime::now()));
        let first = history.series_for(&labels(&["a", "b", "default"]));
        first[0].record(200, Way::Mtls, Duration::from_millis(5));
        let second = history.series_for(&labels(&["b", "a", "default"]));
        assert!(Arc::ptr_eq(&first[0], &second[1]), "a keeps its series");
        assert_eq!(second[1].hour().requests.c2xx.iter().sum::<u32>(), 1);

        let many: Vec<String> = (0..MAX_ROUTES + 5).map(|i| format!("r{i}")).collect();
        let many: Vec<Arc<str>> = many.iter().map(|n| Arc::from(n.as_str())).collect();
        let series = history.series_for(&many);
        assert!(Arc::ptr_eq(&series[MAX_ROUTES], &history.overflow));
        assert!(!Arc::ptr_eq(&series[MAX_ROUTES - 1], &history.overflow));
        assert_eq!(history.routes.lock().unwrap().len(), MAX_ROUTES);
    }

    #[test]
    fn the_hour_starts_59_minutes_before_the_current_one() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000 * 60 + 30));
        let history = History::new(clock.clone());
        history.event(EventKind::ConfigReload, true, "generation 2");
        clock.advance(Duration::from_secs(61 * 60));
        history.event(EventKind::ConfigReload, false, "bad key");
        let hour = history.hour();
        assert_eq!(hour.start_unix, (1_061 - 59) * 60);
        assert_eq!(
            hour.events.len(),
            1,
            "the first reload is older than the hour"
        );
        assert!(!hour.events[0].ok);
    }
}
