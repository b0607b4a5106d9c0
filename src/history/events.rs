//! The event time line: what happened to the whole process, newest last, at most
//! [`MAX_EVENTS`] (the oldest go first). Events are rare (a refresh, a reload, a probe),
//! so a mutex-guarded ring does; the request path only writes one when a breaker opens.

use super::clock::Clock;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};

/// Events kept at most.
pub const MAX_EVENTS: usize = 256;

/// An event's detail is cut to this many characters.
const MAX_DETAIL: usize = 200;

/// What happened; each kind is one lane of the time line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An OAuth token refresh (`ok`: it succeeded).
    TokenRefresh,
    /// A config reload (`ok`: applied whole; else rejected, or applied without the new
    /// certificate).
    ConfigReload,
    /// A reload that changed a route's effective mode (`rollback.all`, a route's mode).
    RollbackFlip,
    /// A fallback route's breaker opened: its requests go the legacy way for a while.
    BreakerOpen,
    /// The client certificate was rotated.
    CertificateRotation,
    /// A rollback-readiness probe (`ok`: the legacy path would work).
    ReadinessProbe,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::TokenRefresh,
        EventKind::ConfigReload,
        EventKind::RollbackFlip,
        EventKind::BreakerOpen,
        EventKind::CertificateRotation,
        EventKind::ReadinessProbe,
    ];

    /// The name in JSON and in the page's `data-kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TokenRefresh => "token_refresh",
            EventKind::ConfigReload => "config_reload",
            EventKind::RollbackFlip => "rollback_flip",
            EventKind::BreakerOpen => "breaker_open",
            EventKind::CertificateRotation => "certificate_rotation",
            EventKind::ReadinessProbe => "readiness_probe",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the epoch.
    pub at_unix: u64,
    pub kind: EventKind,
    /// Whether it went well (see [`EventKind`]).
    pub ok: bool,
    /// A sentence for people: config values and error messages, never a secret.
    pub detail: String,
}

/// The ring of events.
#[derive(Debug)]
pub struct Timeline {
    clock: Clock,
    events: Mutex<VecDeque<Event>>,
}

impl Timeline {
    pub fn new(clock: Clock) -> Timeline {
        Timeline {
            clock,
            events: Mutex::new(VecDeque::with_capacity(MAX_EVENTS)),
        }
    }

    /// Records an event now; the oldest goes when the ring is full.
    pub fn record(&self, kind: EventKind, ok: bool, detail: &str) {
        let detail = match detail.char_indices().nth(MAX_DETAIL) {
            Some((cut, _)) => format!("{}...", &detail[..cut]),
            None => detail.to_owned(),
        };
        let event = Event {
            at_unix: self.clock.unix_seconds(),
            kind,
            ok,
            detail,
        };
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() == MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// A rollback-readiness probe (`available`: the legacy path would work).
    pub fn readiness_probe(&self, available: bool, detail: &str) {
        self.record(EventKind::ReadinessProbe, available, detail);
    }

    /// The events at or after `start_unix`, oldest first.
    pub fn since(&self, start_unix: u64) -> Vec<Event> {
        let events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        events
            .iter()
            .filter(|event| event.at_unix >= start_unix)
            .cloned()
            .collect()
    }
}

/// Where a part built before the history (the token manager, the client certificate
/// resolver, the fallback breakers) reports its events: nothing is recorded until the
/// time line is attached (as `run` does), so the command line's own token managers
/// record nothing.
#[derive(Debug, Default)]
pub struct EventSink(OnceLock<Arc<Timeline>>);

impl EventSink {
    /// Reports into `timeline` from now on (a second attach is ignored).
    pub fn attach(&self, timeline: Arc<Timeline>) {
        let _ = self.0.set(timeline);
    }

    pub fn record(&self, kind: EventKind, ok: bool, detail: &str) {
        if let Some(timeline) = self.0.get() {
            timeline.record(kind, ok, detail);
        }
    }

    /// A token refresh: `error` is `None` when it succeeded (else safe to show).
    pub fn token_refresh(&self, error: Option<&str>) {
        let detail = error.unwrap_or("access token refreshed");
        self.record(EventKind::TokenRefresh, error.is_none(), detail);
    }

    /// The client certificate rotated to the one `describe`d.
    pub fn certificate_rotation(&self, describe: &str) {
        self.record(EventKind::CertificateRotation, true, describe);
    }

    /// `route`'s breaker opened after `failures` in a row, for `cooldown`.
    pub fn breaker_open(&self, route: &str, failures: u32, cooldown: std::time::Duration) {
        let secs = cooldown.as_secs();
        let detail = format!(
            "{route}: {failures} mTLS failures in a row; the personal-token way for {secs} s"
        );
        self.record(EventKind::BreakerOpen, false, &detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_ring_is_bounded_and_details_are_cut() {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_000));
        let timeline = Arc::new(Timeline::new(clock.clone()));
        for i in 0..MAX_EVENTS + 10 {
            timeline.record(EventKind::ReadinessProbe, true, &format!("probe {i}"));
            clock.advance(Duration::from_secs(1));
        }
        let events = timeline.since(0);
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0].detail, "probe 10");
        assert_eq!(timeline.since(1_000 + MAX_EVENTS as u64 + 9).len(), 1);

        timeline.record(EventKind::ConfigReload, false, &"é".repeat(500));
        let last = timeline.since(0).pop().unwrap();
        assert_eq!(last.detail.chars().count(), MAX_DETAIL + 3);

        let sink = EventSink::default();
        sink.record(EventKind::TokenRefresh, true, "before attach: dropped");
        sink.attach(timeline.clone());
        sink.record(EventKind::TokenRefresh, true, "after attach");
        let last = timeline.since(0).pop().unwrap();
        assert_eq!(last.detail, "after attach");
    }
}
