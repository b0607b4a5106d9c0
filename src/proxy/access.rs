//! What each request reports, whatever its outcome: the access log line's fields (the
//! route, the mode it was served in, the side it went to), the request metrics and the
//! route's `/status` counts and last hour, and `wisegate_requests_in_flight` while it runs.

use super::side::Side;
use crate::assembly::Snapshot;
use crate::history::Way;
use crate::metrics::{Metrics, RequestLabels, RouteLabels, RouteModeLabels};
use crate::route::Mode;
use http::StatusCode;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;

/// What the access line and the metrics report about where a request went.
pub struct AccessLog {
    /// The snapshot and the index of the route, once chosen.
    pub chosen: Option<(Arc<Snapshot>, usize)>,
    /// The route's mode once chosen, then the mode it was served in.
    pub mode: &'static str,
    /// The side the answer came from.
    pub sent_to: Option<Side>,
    /// An OAuth route's request that went the legacy way (fallback).
    pub fell_back: bool,
    /// The account the app's credential selected, once chosen (its name only).
    pub account: Option<Arc<str>>,
}

impl AccessLog {
    /// Nothing chosen yet: route and mode "-".
    pub fn new() -> AccessLog {
        AccessLog {
            chosen: None,
            mode: "-",
            sent_to: None,
            fell_back: false,
            account: None,
        }
    }

    /// The way the request went, for `/status`'s last hour (one that failed before an
    /// answer counts for the way it was meant to go).
    pub fn way(&self) -> Way {
        let legacy = match self.sent_to {
            Some(side) => side == Side::Legacy,
            None => self.mode == Mode::PersonalToken.as_str(),
        };
        match (self.fell_back, legacy) {
            (true, _) => Way::Fallback,
            (false, true) => Way::Legacy,
            (false, false) => Way::Mtls,
        }
    }

    /// The route's name, "-" before one was chosen.
    pub fn route(&self) -> &str {
        match &self.chosen {
            Some((snapshot, index)) => &snapshot.labels[*index],
            None => "-",
        }
    }

    /// `host:port` of the upstream the answer came from, if one did.
    pub fn upstream(&self) -> Option<&str> {
        let (snapshot, _) = self.chosen.as_ref()?;
        Some(self.sent_to?.upstream(snapshot).target())
    }
}

/// Counts one answer: metrics and the route's `/status` counts.
pub fn record(metrics: &Metrics, log: &AccessLog, status: StatusCode, elapsed: Duration) {
    // Refused before a route was chosen: route "-" (the one label that allocates).
    let route: Arc<str> = match &log.chosen {
        Some((snapshot, index)) => {
            snapshot.counts[*index].record(status.as_u16());
            if let Some(series) = snapshot.series.get(*index) {
                series.record(status.as_u16(), log.way(), elapsed);
            }
            snapshot.labels[*index].clone()
        }
        None => Arc::from("-"),
    };
    metrics
        .request_duration
        .get_or_create(&RouteModeLabels {
            route: route.clone(),
            mode: log.mode,
        })
        .observe(elapsed.as_secs_f64());
    if status == StatusCode::TOO_MANY_REQUESTS {
        metrics
            .rate_limited
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .inc();
    }
    let labels = RequestLabels {
        route,
        mode: log.mode,
        status: status.as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
}

/// Counts a request in `wisegate_requests_in_flight` until dropped: also when the app
/// hangs up and hyper drops the request's future before it finishes.
pub struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub fn enter(gauge: &'a Gauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
