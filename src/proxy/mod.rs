//! The request path: [`handle`] takes one request from the app, [`exchange`] forwards it
//! in named phases (plan, send with fallback, finish), and every request, answered by
//! Wise or refused, gets one access log line and one set of metrics ([`access`]).
//! [`guard`] refuses what an open proxy would accept, [`rewrite`] makes the upstream
//! head, [`send`] sends it (with one replay after a 401), [`fallback`] and [`shadow`]
//! are the migration-safety steps (their state, kept across reloads, in [`migration`]),
//! [`side`] names where a request went.

mod access;
mod exchange;
mod fallback;
pub mod guard;
mod migration;
pub mod rewrite;
mod send;
mod shadow;
mod side;

pub use migration::Migration;
pub use send::{RequestHead, REPLAY_BUFFER_BYTES};

use crate::body::ProxyBody;
use crate::slots::AppConnection;
use crate::Shared;
use access::{AccessLog, InFlight};
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Instant;

/// Handles one request from the app, which came on `connection`; never fails (errors
/// become wisegate's answers).
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    connection: AppConnection,
) -> Response<ProxyBody> {
    let started = Instant::now();
    // What only the access line needs is copied only when the line is written (the
    // copies share the request's buffers).
    let asked = tracing::enabled!(target: "wisegate::access", tracing::Level::INFO).then(|| {
        (
            request.method().clone(),
            request.uri().clone(),
            request.headers().get(CORRELATION_ID).cloned(),
        )
    });
    let mut log = AccessLog::new();
    let in_flight = InFlight::enter(&shared.metrics.in_flight);
    let response = exchange::forward(&shared, request, connection, &mut log).await;
    drop(in_flight);
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(kind = error.kind(), route = log.route(), "{error}");
            error.into_response()
        }
    };
    let elapsed = started.elapsed();
    access::record(&shared.metrics, &log, response.status(), elapsed);
    if let Some((method, uri, correlation)) = asked {
        tracing::info!(
            target: "wisegate::access",
            method = %method,
            path = uri.path(),
            route = log.route(),
            account = log.account.as_deref().unwrap_or("-"),
            mode = log.mode,
            status = response.status().as_u16(),
            duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            upstream = log.upstream().unwrap_or("-"),
            trace_id = response.headers().get("x-trace-id").and_then(|v| v.to_str().ok()).unwrap_or_default(),
            correlation_id = correlation.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default(),
            "request"
        );
    }
    response
}

const CORRELATION_ID: &str = "x-external-correlation-id";
