//! Prometheus metrics. Every name starts with `wisegate_`; labels are bounded: route
//! names from the config (never raw paths), modes, status codes, results. Gauges that
//! mirror state (expiry times, rollback) are set when they change or at scrape time.

use crate::legacy_path::LegacyPath;
use crate::lineage_metrics::LineageMetrics;
use crate::route::{Mode, Route};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;

// The per-request label sets hold shared and static strings: counting a request
// allocates nothing once its label set exists.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Arc<str>,
    pub mode: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteModeLabels {
    pub route: Arc<str>,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScaLabels {
    pub route: Arc<str>,
    pub mode: &'static str,
    /// One of [`SCA_OUTCOMES`].
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteResultLabels {
    pub route: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteReasonLabels {
    pub route: String,
    pub reason: String,
}

impl RouteResultLabels {
    pub fn of(route: &str, result: &str) -> RouteResultLabels {
        debug_assert!(
            SHADOW_RESULTS.contains(&result),
            "{result} is not in SHADOW_RESULTS"
        );
        RouteResultLabels {
            route: route.to_owned(),
            result: result.to_owned(),
        }
    }
}

impl RouteReasonLabels {
    pub fn of(route: &str, reason: &str) -> RouteReasonLabels {
        debug_assert!(
            FALLBACK_REASONS.contains(&reason),
            "{reason} is not in FALLBACK_REASONS"
        );
        RouteReasonLabels {
            route: route.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

impl ResultLabels {
    pub fn of(result: &str) -> ResultLabels {
        ResultLabels {
            result: result.to_owned(),
        }
    }
}

/// Every `result` of `wisegate_token_refresh_total`.
pub const REFRESH_RESULTS: [&str; 2] = ["success", "failure"];
/// Every `result` of `wisegate_config_reload_total`.
pub const RELOAD_RESULTS: [&str; 3] = ["success", "failure", "cert_rejected"];
/// Every `result` of `wisegate_shadow_total`.
pub const SHADOW_RESULTS: [&str; 4] = ["match", "mismatch", "error", "dropped"];
/// Every `outcome` of `wisegate_sca_challenges_total`: wisegate signed the challenge and
/// repeated the request, or the app got the challenge as Wise sent it.
pub const SCA_OUTCOMES: [&str; 2] = ["signed", "passed_to_app"];
/// Every `reason` of `wisegate_fallback_total`.
pub const FALLBACK_REASONS: [&str; 6] = [
    "connection_lost",
    "connect",
    "tls",
    "client_certificate",
    "token",
    "circuit_open",
];

type HistogramFamily = Family<RouteModeLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// All of wisegate's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: HistogramFamily,
    pub rate_limited: Family<RouteLabels, Counter>,
    /// Requests between arrival and response head.
    pub in_flight: Gauge,
    /// The series where a lineage is involved, per account.
    pub lineages: LineageMetrics,
    pub client_cert_expiry: Gauge,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub rollback_active: Gauge,
    /// 1 for each route's effective mode, 0 for the others.
    pub route_mode: Family<RouteModeLabels, Gauge>,
    pub shadow: Family<RouteResultLabels, Counter>,
    pub fallback: Family<RouteReasonLabels, Counter>,
    /// SCA challenges (403, `x-2fa-approval-result: REJECTED`) from Wise.
    pub sca_challenges: Family<ScaLabels, Counter>,
    /// 1 while `/readyz` answers 200 (set at scrape time).
    pub ready: Gauge,
    /// 1 while the last probe found the legacy path available (a rollback would work).
    pub legacy_path_up: Gauge,
    /// 1 for the last probe's state, 0 for the others.
    pub legacy_path_info: Family<StateLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

impl Metrics {
    /// The metrics; `shared_store`: some account keeps its lineage in Redis (then
    /// `wisegate_token_store_up` is exported).
    pub fn new(shared_store: bool) -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(duration_histogram),
            rate_limited: Family::default(),
            in_flight: Gauge::default(),
            lineages: LineageMetrics::default(),
            client_cert_expiry: Gauge::default(),
            config_reloads: Family::default(),
            rollback_active: Gauge::default(),
            route_mode: Family::default(),
            shadow: Family::default(),
            fallback: Family::default(),
            sca_challenges: Family::default(),
            ready: Gauge::default(),
            legacy_path_up: Gauge::default(),
            legacy_path_info: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "wisegate_requests",
            "Requests answered, by route, mode and status",
            metrics.requests.clone(),
        );
        registry.register(
            "wisegate_request_duration_seconds",
            "Time from request to response head, by route and mode",
            metrics.request_duration.clone(),
        );
        registry.register(
            "wisegate_rate_limited",
            "429 answers from Wise, by route",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "wisegate_requests_in_flight",
            "Requests received and not yet answered",
            metrics.in_flight.clone(),
        );
        for result in RELOAD_RESULTS {
            drop(
                metrics
                    .config_reloads
                    .get_or_create(&ResultLabels::of(result)),
            );
        }
        metrics.lineages.register(&mut registry, shared_store);
        registry.register(
            "wisegate_client_cert_expiry_timestamp_seconds",
            "When the client certificate in use expires (Unix time)",
            metrics.client_cert_expiry.clone(),
        );
        registry.register(
            "wisegate_config_reload",
            "Config reloads, by result (success, failure, cert_rejected)",
            metrics.config_reloads.clone(),
        );
        registry.register(
            "wisegate_rollback_active",
            "1 while rollback.all sends every route to the legacy host",
            metrics.rollback_active.clone(),
        );
        registry.register(
            "wisegate_route_mode",
            "1 for each route's effective mode",
            metrics.route_mode.clone(),
        );
        registry.register(
            "wisegate_shadow",
            "Shadow copies, by route and result (match, mismatch, error, dropped)",
            metrics.shadow.clone(),
        );
        registry.register(
            "wisegate_fallback",
            "Requests sent the personal-token way because the mTLS side could not be used, by route and reason",
            metrics.fallback.clone(),
        );
        registry.register(
            "wisegate_sca_challenges",
            "SCA challenges from Wise (403 with x-2fa-approval-result: REJECTED), by route, mode and outcome (signed: wisegate signed and repeated the request; passed_to_app: the app got it untouched)",
            metrics.sca_challenges.clone(),
        );
        registry.register(
            "wisegate_ready",
            "1 while /readyz answers 200 (config loaded, client certificate valid, the modes' credentials usable)",
            metrics.ready.clone(),
        );
        registry.register(
            "wisegate_legacy_path_up",
            "1 while the last probe found the legacy path (legacy host, personal token) available: a rollback would work",
            metrics.legacy_path_up.clone(),
        );
        registry.register(
            "wisegate_legacy_path_info",
            "1 for the state of the last rollback-readiness probe (available, refused, unreachable, not_configured)",
            metrics.legacy_path_info.clone(),
        );
        for state in LegacyPath::ALL {
            metrics
                .legacy_path_info
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(0);
        }
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Creates, at 0, the shadow and fallback series of every route that can count
    /// them, so that `increase()` and `rate()` alerts see the first event. A route a
    /// reload removes keeps its series until restart (a counter never goes back).
    pub fn zero_route_counters<'a>(&self, routes: impl IntoIterator<Item = &'a Route>) {
        for route in routes {
            if route.shadow {
                for result in SHADOW_RESULTS {
                    drop(
                        self.shadow
                            .get_or_create(&RouteResultLabels::of(&route.name, result)),
                    );
                }
            }
            if route.fallback.is_some() {
                for reason in FALLBACK_REASONS {
                    drop(
                        self.fallback
                            .get_or_create(&RouteReasonLabels::of(&route.name, reason)),
                    );
                }
            }
        }
    }

    /// Creates, at 0, the SCA challenge series of a route whose configured mode is
    /// `mode`: `passed_to_app` in that mode and on the personal-token side (where
    /// rollback and fallback send it), `signed` on the personal-token side, the only one
    /// where wisegate signs.
    pub fn zero_sca_counters(&self, route: &Arc<str>, mode: Mode) {
        let series = [
            (mode, "passed_to_app"),
            (Mode::PersonalToken, "passed_to_app"),
            (Mode::PersonalToken, "signed"),
        ];
        for (mode, outcome) in series {
            drop(self.sca_challenges.get_or_create(&ScaLabels {
                route: route.clone(),
                mode: mode.as_str(),
                outcome,
            }));
        }
    }

    /// Mirrors a rollback-readiness probe's state.
    pub fn set_legacy_path(&self, now: LegacyPath) {
        self.legacy_path_up
            .set(i64::from(now == LegacyPath::Available));
        for state in LegacyPath::ALL {
            self.legacy_path_info
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(i64::from(state == now));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
