//! Rollback readiness: whether the legacy path (the legacy host with the personal token)
//! would still work if ops flipped `rollback.all`. Once Wise enforces mTLS for a client,
//! the legacy host refuses the personal token and a rollback turns a partial outage into
//! a total one; this finds out beforehand.
//!
//! One cheap authenticated read (`GET /v1/profiles` with the personal token) at start,
//! after a reload that changes the personal token, and every `rollback.probe_interval`
//! (plus up to a tenth of it as jitter, so that replicas spread out and the probe never
//! runs more often than the interval). The probe never carries an app's request, and its
//! result never affects readiness: it is shown on `/status`, in
//! `wisegate_legacy_path_up` and `wisegate_legacy_path_info{state}`. It says what it is
//! in its `User-Agent` ([`PROBE_USER_AGENT`]), so that Wise's logs (and the test double)
//! can tell it from app traffic.

use crate::account::AccountSet;
use crate::assembly::Snapshot;
use crate::legacy_path::{LegacyPath, Probe};
use crate::upstream::UpstreamError;
use crate::Shared;
use http::{header, Request, StatusCode};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// The probe's `User-Agent`.
pub const PROBE_USER_AGENT: &str = concat!(
    "wisegate/",
    env!("CARGO_PKG_VERSION"),
    " (rollback readiness probe)"
);

/// Probes the legacy path of `snapshot` once with `personal_bearer` (an account's).
pub async fn probe(snapshot: &Snapshot, personal_bearer: Option<&http::HeaderValue>) -> Probe {
    let at = SystemTime::now();
    let (state, detail) = match personal_bearer {
        None => (
            LegacyPath::NotConfigured,
            "no [personal_token] is configured: a rollback has no credential to use".to_owned(),
        ),
        Some(bearer) => ask(snapshot, bearer.clone()).await,
    };
    Probe { state, at, detail }
}

/// Probes the legacy path with every account's personal token, one after the other:
/// with one account its probe; with several the first that is not available (its
/// detail naming the account), else the first.
pub async fn probe_accounts(snapshot: &Snapshot, accounts: &AccountSet) -> Probe {
    let mut first = None;
    for account in accounts.iter() {
        let mut probe = probe(snapshot, account.personal_bearer.as_ref()).await;
        if accounts.len() > 1 {
            probe.detail = format!("account {}: {}", account.name, probe.detail);
        }
        if probe.state != LegacyPath::Available {
            return probe;
        }
        first.get_or_insert(probe);
    }
    first.unwrap_or_else(|| Probe {
        state: LegacyPath::NotConfigured,
        at: SystemTime::now(),
        detail: "no account is configured".to_owned(),
    })
}

async fn ask(snapshot: &Snapshot, bearer: http::HeaderValue) -> (LegacyPath, String) {
    let target = snapshot.legacy.target().to_owned();
    let path = http::uri::PathAndQuery::from_static("/v1/profiles");
    let request = Request::get(snapshot.legacy.uri_for(Some(&path)))
        .header(header::AUTHORIZATION, bearer)
        .header(header::USER_AGENT, PROBE_USER_AGENT)
        .body(crate::body::full(""));
    let Ok(request) = request else {
        return (LegacyPath::Unreachable, "cannot build the probe".to_owned());
    };
    let answer: Result<StatusCode, UpstreamError> = snapshot
        .legacy
        .send(request)
        .await
        .map(|response| response.status());
    classify(&target, answer)
}

/// The state an answer of the legacy host means.
fn classify(target: &str, answer: Result<StatusCode, UpstreamError>) -> (LegacyPath, String) {
    match answer {
        Ok(status) if status.is_success() => (
            LegacyPath::Available,
            format!("the legacy host {target} accepted the personal token (HTTP {})", status.as_u16()),
        ),
        Ok(status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)) => (
            LegacyPath::Refused,
            format!("the legacy host {target} refused the personal token (HTTP {}): Wise has likely enforced mTLS for this client; a rollback would fail", status.as_u16()),
        ),
        Ok(status) => (
            LegacyPath::Unreachable,
            format!("the legacy host {target} answered HTTP {}: the probe will try again", status.as_u16()),
        ),
        Err(error) => (LegacyPath::Unreachable, error.to_string()),
    }
}

/// Probes at start, then every interval of the current config (and at once when asked),
/// until `shutdown`. `rollback.probe_interval = "off"` stops the periodic probes (a
/// reload that turns it on again resumes them).
pub async fn keep_probing(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let snapshot = shared.snapshot.load_full();
        let interval = snapshot.config.rollback_probe_interval;
        if interval.is_some() {
            let accounts = shared.accounts.load_full();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                result = probe_accounts(&snapshot, &accounts) => result,
            };
            record(&shared, result);
        }
        drop(snapshot);
        // Off: wait for a reload to ask (probe_now); else the interval plus jitter.
        let wait = interval.map_or(Duration::from_secs(365 * 86_400), |every| {
            next_wait(every, rand::rng().random_range(0.0..1.0))
        });
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.rollback_readiness.probe_requested() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// The wait before the next periodic probe, for a random `draw` in `[0, 1)`: the interval
/// plus up to a tenth of it, never less than the interval.
fn next_wait(interval: Duration, draw: f64) -> Duration {
    interval + interval.mul_f64(draw.clamp(0.0, 1.0) / 10.0)
}

fn record(shared: &Shared, probe: Probe) {
    let before = shared.rollback_readiness.last().map(|p| p.state);
    if before != Some(probe.state) {
        match probe.state {
            LegacyPath::Refused => tracing::error!(
                state = probe.state.as_str(),
                "rollback readiness: {}",
                probe.detail
            ),
            LegacyPath::Available => tracing::info!(
                state = probe.state.as_str(),
                "rollback readiness: {}",
                probe.detail
            ),
            _ => tracing::warn!(
                state = probe.state.as_str(),
                "rollback readiness: {}",
                probe.detail
            ),
        }
    }
    shared.metrics.set_legacy_path(probe.state);
    shared
        .history
        .timeline()
        .readiness_probe(probe.state == LegacyPath::Available, &probe.detail);
    shared.rollback_readiness.set_last(probe);
}

/// After a reload: probes again when a personal token changed, and says loudly when
/// the rollback was turned on while the last probe found the legacy path refused.
/// `personal_changed`: some account's personal token is not what it was.
pub fn after_reload(shared: &Shared, old: &Snapshot, new: &Snapshot, personal_changed: bool) {
    if personal_changed || old.config.rollback_probe_interval != new.config.rollback_probe_interval
    {
        shared.rollback_readiness.probe_now();
    }
    let last = shared.rollback_readiness.last();
    if new.config.rollback_all && !old.config.rollback_all {
        if let Some(probe) = last.filter(|p| p.state == LegacyPath::Refused) {
            tracing::error!(
                generation = new.generation,
                probed_at = %humantime::format_rfc3339_seconds(probe.at),
                "rollback.all turned on although the last probe found the legacy path refused ({}): requests will likely fail until rollback.all is false again",
                probe.detail
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_states() {
        let state = |answer| classify("legacy:443", answer).0;
        assert_eq!(state(Ok(StatusCode::OK)), LegacyPath::Available);
        assert_eq!(state(Ok(StatusCode::UNAUTHORIZED)), LegacyPath::Refused);
        assert_eq!(state(Ok(StatusCode::FORBIDDEN)), LegacyPath::Refused);
        assert_eq!(
            state(Ok(StatusCode::TOO_MANY_REQUESTS)),
            LegacyPath::Unreachable
        );
        assert_eq!(state(Ok(StatusCode::BAD_GATEWAY)), LegacyPath::Unreachable);
    }

    #[test]
    fn the_jitter_only_ever_adds_at_most_a_tenth() {
        let every = Duration::from_secs(600);
        for draw in [0.0, 0.25, 0.5, 0.999_999, 1.0, -3.0, 7.0] {
            let wait = next_wait(every, draw);
            assert!(
                wait >= every && wait <= every + every / 10,
                "{draw}: {wait:?}"
            );
        }
    }

    #[test]
    fn a_refusal_says_what_it_means_for_a_rollback() {
        let (_, detail) = classify("legacy:443", Ok(StatusCode::FORBIDDEN));
        assert!(detail.contains("enforced mTLS"), "{detail}");
        assert!(detail.contains("a rollback would fail"), "{detail}");
    }
}
