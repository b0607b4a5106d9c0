//! Shadow comparison for routes with `shadow = true`: for GET and HEAD, once the primary
//! answer is in, a copy goes the other way (personal token + legacy host for an OAuth
//! route, and the reverse), off the request's critical path and bounded: at most
//! [`super::migration::MAX_SHADOWS_IN_FLIGHT`] copies at once, further ones are dropped and counted. Status classes
//! are compared; each mismatch is logged with both `x-trace-id`s.

use super::send::RequestHead;
use super::side::Side;
use crate::account::Account;
use crate::assembly::Snapshot;
use crate::history::ShadowResult;
use crate::metrics::RouteResultLabels;
use crate::Shared;
use http::{Method, StatusCode};
use std::sync::Arc;

/// Whether a request of `method` is shadowed at all.
pub fn applies(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// What the primary exchange was, for the comparison.
pub struct Primary {
    pub route: Arc<str>,
    /// The side the answer came from; the copy goes to the other.
    pub side: Side,
    pub status: StatusCode,
    pub trace_id: Option<String>,
    /// The request's account: the copy carries that account's credential.
    pub account: Arc<Account>,
}

fn count(shared: &Shared, route: &str, result: &str) {
    let labels = RouteResultLabels::of(route, result);
    shared.metrics.shadow.get_or_create(&labels).inc();
}

/// Sends the copy the other way in the background.
pub fn spawn(shared: Arc<Shared>, snapshot: Arc<Snapshot>, head: RequestHead, primary: Primary) {
    let Some(permit) = shared.migration.shadow_permits.try_acquire() else {
        count(&shared, &primary.route, "dropped");
        return;
    };
    tokio::spawn(async move {
        let side = primary.side.other();
        let bearer = match side {
            Side::Legacy => primary.account.personal_bearer.clone(),
            Side::Mtls => primary.account.tokens.user_bearer().ok(),
        };
        let upstream = side.upstream(&snapshot);
        let Some(bearer) = bearer else {
            count(&shared, &primary.route, "error");
            return;
        };
        let request = head.to(upstream).request(bearer, crate::body::full(""));
        let result = match upstream.send(request).await {
            Ok(response) if response.status().as_u16() / 100 == primary.status.as_u16() / 100 => {
                "match"
            }
            Ok(response) => {
                let trace_id = response
                    .headers()
                    .get("x-trace-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::warn!(
                    route = %primary.route,
                    primary_status = primary.status.as_u16(),
                    primary_trace_id = primary.trace_id.as_deref().unwrap_or("-"),
                    shadow_status = response.status().as_u16(),
                    shadow_trace_id = trace_id,
                    shadow_host = upstream.target(),
                    "shadow mismatch: the other way answered a different status class"
                );
                "mismatch"
            }
            Err(error) => {
                tracing::debug!(route = %primary.route, "shadow copy failed: {error}");
                "error"
            }
        };
        count(&shared, &primary.route, result);
        let compared = match result {
            "match" => Some(ShadowResult::Match),
            "mismatch" => Some(ShadowResult::Mismatch),
            _ => None,
        };
        if let (Some(compared), Some(series)) = (compared, snapshot.series_of(&primary.route)) {
            series.shadow(compared);
        }
        drop(permit);
    });
}
