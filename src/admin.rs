//! The admin listener: `/healthz` (the process answers), `/readyz` (200 only when the
//! config is loaded, the client certificate is valid and every credential some route
//! needs is usable; otherwise 503 with the reasons as JSON). Trouble that does not stop
//! requests yet, such as an unreachable shared token store while the held token is
//! valid, is listed as `degraded` and keeps the status at 200.
//!
//! `POST /token/refresh` and `POST /token/reload` let the command line act through the
//! running process, so that one lineage stays in one hand: `wisegate token refresh`
//! refreshes here (a refresh elsewhere would invalidate the token this process holds),
//! and `wisegate authorize` hands over the lineage it stored. Both change state, so they
//! answer only POST, only from loopback peers, and only with the header
//! [`CONFIG_SHA256_HEADER`] naming the config this process runs (a browser cannot send
//! that header cross-site without a preflight, which nothing here answers).

use crate::account::Account;
use crate::body::{full, ProxyBody};
use crate::lineage_metrics::LineageState;
use crate::readiness::{degraded_reasons, not_ready_reasons, unavailable_accounts};
use crate::slots::AppConnection;
use crate::timestamps::unix_seconds;
use crate::token::adopt::Reloaded;
use crate::Shared;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::sync::Arc;

/// The header a caller of the token endpoints names its config's SHA-256 in: a process
/// running another config (or another version of it) refuses with 409.
pub const CONFIG_SHA256_HEADER: &str = "x-wisegate-config-sha256";

/// Answers one request to the admin listener, which came on `connection`.
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    connection: AppConnection,
) -> Response<ProxyBody> {
    match request.uri().path() {
        "/healthz" => json(StatusCode::OK, serde_json::json!({ "status": "ok" })),
        "/readyz" => {
            let reasons = not_ready_reasons(&shared);
            let degraded = degraded_reasons(&shared);
            let (status, mut body) = if reasons.is_empty() {
                (StatusCode::OK, serde_json::json!({ "ready": true }))
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    serde_json::json!({ "ready": false, "reasons": reasons }),
                )
            };
            if !degraded.is_empty() {
                body["degraded"] = serde_json::json!(degraded);
            }
            let unavailable = unavailable_accounts(&shared);
            if !unavailable.is_empty() {
                body["accounts_not_ready"] = serde_json::json!(unavailable);
            }
            json(status, body)
        }
        "/metrics" => metrics(&shared),
        "/status" => status(&shared, &request),
        "/token/refresh" => token_refresh(shared, &request, connection).await,
        "/token/reload" => token_reload(shared, &request, connection).await,
        _ => json(
            StatusCode::NOT_FOUND,
            crate::error::error_body(
                "not_found",
                "the admin listener serves /healthz, /readyz, /metrics, /status, and POST /token/refresh and /token/reload",
            ),
        ),
    }
}

/// `/status`: HTML for browsers (`Accept: text/html`) or `?format=html`, else JSON.
fn status(shared: &Shared, request: &Request<Incoming>) -> Response<ProxyBody> {
    let status = crate::status::gather(shared);
    let wants_html = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("format=html"))
        || request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return json(
            StatusCode::OK,
            serde_json::to_value(&status).unwrap_or_default(),
        );
    }
    let mut response = Response::new(full(crate::status::html(&status)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Refreshes the gauges that mirror state, then renders every metric.
fn metrics(shared: &Shared) -> Response<ProxyBody> {
    let metrics = &shared.metrics;
    let accounts = shared.accounts.load();
    let states: Vec<LineageState<'_>> = accounts
        .iter()
        .map(|account| {
            let tokens = &account.tokens;
            let expiry = tokens.status().expires_at.map_or(0, unix_seconds);
            LineageState {
                account: &account.name,
                token_expiry: i64::try_from(expiry).unwrap_or(i64::MAX),
                authorization_required: tokens.authorization_required().is_some(),
                store_up: tokens
                    .store()
                    .is_shared()
                    .then(|| tokens.store_trouble().is_none()),
            }
        })
        .collect();
    metrics.lineages.set(&states);
    metrics
        .ready
        .set(i64::from(not_ready_reasons(shared).is_empty()));
    let cert = shared.resolver.current().not_after_unix();
    metrics
        .client_cert_expiry
        .set(i64::try_from(cert).unwrap_or(i64::MAX));
    let mut response = Response::new(full(metrics.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `POST /token/refresh`: refreshes the held lineage now, as a task of its own (a caller
/// that hangs up must not drop a refresh Wise already answered).
async fn token_refresh(
    shared: Arc<Shared>,
    request: &Request<Incoming>,
    connection: AppConnection,
) -> Response<ProxyBody> {
    let account = match token_call_account(&shared, request, connection) {
        Ok(account) => account,
        Err(refused) => return *refused,
    };
    let tokens = account.tokens.clone();
    match tokio::spawn(async move { tokens.refresh_now().await }).await {
        Ok(Ok(())) => json(StatusCode::OK, token_answer(&account, true)),
        Ok(Err(error)) => admin_error(
            StatusCode::BAD_GATEWAY,
            "refresh_failed",
            &format!("the running wisegate could not refresh the token: {error}"),
        ),
        Err(error) => admin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "refresh_failed",
            &format!("the refresh task ended without an answer ({error}): see the running wisegate's log"),
        ),
    }
}

/// `POST /token/reload`: re-reads the token store and adopts a newer lineage.
async fn token_reload(
    shared: Arc<Shared>,
    request: &Request<Incoming>,
    connection: AppConnection,
) -> Response<ProxyBody> {
    let account = match token_call_account(&shared, request, connection) {
        Ok(account) => account,
        Err(refused) => return *refused,
    };
    match account.tokens.reload_from_store().await {
        Ok(reloaded) => json(
            StatusCode::OK,
            token_answer(&account, reloaded == Reloaded::Adopted),
        ),
        Err(error) => admin_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "token_store_unreadable",
            &format!("the running wisegate could not read the token store: {error}"),
        ),
    }
}

/// What a token call answers: whether the account's held token changed, and its expiry.
fn token_answer(account: &Account, changed: bool) -> serde_json::Value {
    let expires_at = account
        .tokens
        .status()
        .expires_at
        .map(crate::timestamps::rfc3339);
    serde_json::json!({ "account": &*account.name, "changed": changed, "expires_at": expires_at })
}

/// The account a token call may act on: the call refused (see [`refuse_token_call`]),
/// or the account it names.
fn token_call_account(
    shared: &Shared,
    request: &Request<Incoming>,
    connection: AppConnection,
) -> Result<Arc<Account>, Box<Response<ProxyBody>>> {
    if let Some(refused) = refuse_token_call(shared, request, connection) {
        return Err(Box::new(refused));
    }
    named_account(shared, request)
}

/// The account a token call is for: `?account=NAME`, or the only one.
fn named_account(
    shared: &Shared,
    request: &Request<Incoming>,
) -> Result<Arc<Account>, Box<Response<ProxyBody>>> {
    let name = request.uri().query().and_then(|query| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "account")
            .map(|(_, value)| value.into_owned())
    });
    let accounts = shared.accounts.load();
    let found = match &name {
        Some(name) => accounts.get(name),
        None if accounts.len() == 1 => Some(accounts.first()),
        None => None,
    };
    found.cloned().ok_or_else(|| {
        let message = match name {
            Some(name) => format!(
                "this wisegate serves no account named `{name}`; its accounts are: {}",
                accounts.names()
            ),
            None => format!(
                "this wisegate serves several accounts: name one with ?account=NAME (one of: {})",
                accounts.names()
            ),
        };
        Box::new(admin_error(
            StatusCode::NOT_FOUND,
            "unknown_account",
            &message,
        ))
    })
}

/// Whether the request names this host by a loopback address (`Host`, or the HTTP/2
/// authority): 127.0.0.1, [::1] or localhost, with any port.
fn host_is_loopback(request: &Request<Incoming>) -> bool {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let Some(authority) = host.and_then(|h| h.parse::<http::uri::Authority>().ok()) else {
        return false;
    };
    let name = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Why a token call is refused, if it is: not POST, not from loopback, or not naming
/// the config this process runs.
fn refuse_token_call(
    shared: &Shared,
    request: &Request<Incoming>,
    connection: AppConnection,
) -> Option<Response<ProxyBody>> {
    if request.method() != Method::POST {
        let mut refused = admin_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!("{} changes state: send POST", request.uri().path()),
        );
        refused
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Some(refused);
    }
    let loopback = connection.peer().ip().to_canonical().is_loopback();
    if !loopback {
        return Some(admin_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token endpoints answer only callers on this host (a loopback address): run the command next to wisegate",
        ));
    }
    // A browser page whose name was rebound to 127.0.0.1 is a loopback peer of the same
    // origin; it still sends its own name as Host.
    if !host_is_loopback(request) {
        return Some(admin_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token endpoints answer only requests addressed to this host by a loopback address (Host: 127.0.0.1, [::1] or localhost): run the command next to wisegate",
        ));
    }
    let running = shared.snapshot.load().config.sha256.clone();
    let named = request
        .headers()
        .get(CONFIG_SHA256_HEADER)
        .and_then(|value| value.to_str().ok());
    match named {
        Some(named) if named.eq_ignore_ascii_case(&running) => None,
        Some(_) => Some(admin_error(
            StatusCode::CONFLICT,
            "config_mismatch",
            "this wisegate runs another config (its SHA-256 differs from the caller's): reload it (SIGHUP) or use its config file",
        )),
        None => Some(admin_error(
            StatusCode::BAD_REQUEST,
            "config_sha256_missing",
            &format!("name the config's SHA-256 in the {CONFIG_SHA256_HEADER} header"),
        )),
    }
}

/// An admin error in the contract's shape.
fn admin_error(status: StatusCode, kind: &'static str, message: &str) -> Response<ProxyBody> {
    let mut response = json(
        status,
        serde_json::json!({ "error": kind, "message": message, "error_description": message }),
    );
    response
        .headers_mut()
        .insert("x-wisegate-error", HeaderValue::from_static(kind));
    response
}
