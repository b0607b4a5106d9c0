//! The request path, as three phases over one per-request context, [`Exchange`]:
//!
//! 1. [`Exchange::plan`]: refuse what the guard refuses, pick the route from the current
//!    snapshot, decide whether the body is kept for a second send (a replay after a
//!    401, an SCA-signed repeat, a fallback) and rewrite the head for the route's side.
//! 2. [`Exchange::send_with_fallback`]: send to the route's side with its credential; an
//!    OAuth route with `fallback = true` goes to the legacy side instead when its breaker
//!    is open, or when nothing could be sent on the mTLS side.
//! 3. [`Exchange::finish`]: refuse an informational answer, start the shadow copy, and
//!    stream the answer back with hop-by-hop headers gone and Wise's pauses bounded.

use super::access::AccessLog;
use super::migration::Decision;
use super::send::{self, AppBody, RequestHead};
use super::side::Side;
use super::{fallback, guard, rewrite, shadow};
use crate::account::Account;
use crate::assembly::Snapshot;
use crate::body::{stream, ProxyBody};
use crate::body_stall::{BodyStalled, Sender, StallGuard};
use crate::error::ProxyError;
use crate::headers::strip_hop_by_hop;
use crate::metrics::RouteReasonLabels;
use crate::route::Mode;
use crate::sca;
use crate::shared::Shared;
use crate::slots::AppConnection;
use crate::token::CredentialError;
use crate::upstream::UpstreamBody;
use http::{HeaderMap, Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

/// Forwards one request (which came on `connection`): the three phases in order. `log`
/// learns the route as soon as it is chosen and the side once an answer came.
pub async fn forward(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    connection: AppConnection,
    log: &mut AccessLog,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut exchange = Exchange::plan(shared, request, connection, log).await?;
    let (side, response) = exchange.send_with_fallback().await?;
    let served_as = side.served_as(exchange.mode);
    log.mode = served_as.as_str();
    log.sent_to = Some(side);
    log.fell_back = side != Side::of(exchange.mode);
    sca::count(&shared.metrics, &exchange.route, served_as, &response);
    exchange.finish(side, response)
}

/// One request on its way: what `plan` decided, for the phases after it.
pub struct Exchange<'a> {
    shared: &'a Arc<Shared>,
    snapshot: Arc<Snapshot>,
    /// The account the app's credential selected: its lineage and personal token.
    account: Arc<Account>,
    /// The route's name (also its metric label).
    route: Arc<str>,
    /// The route's effective mode (after the rollback flag).
    mode: Mode,
    /// The cool-down when the route falls back to the legacy side.
    fallback: Option<Duration>,
    /// Whether an SCA challenge to this request is signed and the request repeated.
    sca: bool,
    /// Whether a shadow copy goes the other way.
    shadow: bool,
    idempotent: bool,
    head: RequestHead,
    body: AppBody,
}

impl<'a> Exchange<'a> {
    /// Phase 1: checks the request, picks its route, keeps its body if a second send may
    /// be needed and the route allows one.
    pub async fn plan(
        shared: &'a Arc<Shared>,
        request: Request<Incoming>,
        connection: AppConnection,
        log: &mut AccessLog,
    ) -> Result<Exchange<'a>, ProxyError> {
        let snapshot = shared.snapshot.load_full();
        guard::check(&request, snapshot.config.limits.max_body_bytes)?;
        let account = shared.accounts.load().select(request.headers())?.clone();
        log.account = Some(account.name.clone());
        let selected = snapshot.route(request.method(), request.uri().path(), account.rollback());
        let (route, mode, fallback) = (selected.label.clone(), selected.mode, selected.fallback);
        log.mode = mode.as_str();
        log.chosen = Some((snapshot.clone(), selected.index));
        let sca = mode == Mode::PersonalToken
            && account.sca.is_some()
            && !sca::app_signs(request.headers());
        let keep = mode == Mode::OAuthMtls || fallback.is_some() || sca;
        let shadow = selected.shadow && shadow::applies(request.method());
        let idempotent = request.method().is_idempotent();
        let (parts, body) = request.into_parts();
        let authority = Side::of(mode).upstream(&snapshot).authority();
        let head = rewrite::head(parts, authority, connection);
        let body = AppBody::prepare(body, keep, &snapshot.config.limits).await?;
        Ok(Exchange {
            shared,
            snapshot,
            account,
            route,
            mode,
            fallback,
            sca,
            shadow,
            idempotent,
            head,
            body,
        })
    }

    /// Phase 2: the answer, and the side it came from.
    pub async fn send_with_fallback(
        &mut self,
    ) -> Result<(Side, Response<UpstreamBody>), ProxyError> {
        if Side::of(self.mode) == Side::Legacy {
            let response = self.send_legacy(self.sca).await?;
            return Ok((Side::Legacy, response));
        }
        if let Some(cooldown) = self.fallback {
            let breakers = &self.shared.migration.breakers;
            if breakers.decide(&self.route, cooldown) == Decision::Legacy {
                self.count_fallback("circuit_open");
                return Ok((Side::Legacy, Box::pin(self.send_legacy_instead()).await?));
            }
        }
        match self.send_oauth().await {
            Ok(response) => {
                if self.fallback.is_some() {
                    self.shared.migration.breakers.success(&self.route);
                }
                Ok((Side::Mtls, response))
            }
            // Boxed, as every rare path here: inline, they made each request's future
            // (moved whole into an HTTP/2 stream's task) larger.
            Err(error) => Ok((Side::Legacy, Box::pin(self.fall_back(error)).await?)),
        }
    }

    /// Phase 3: the answer as the app gets it.
    pub fn finish(
        self,
        side: Side,
        response: Response<UpstreamBody>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // wisegate never asks for an upgrade (it strips `Upgrade`), so a 101 is a protocol
        // error: passed on, an HTTP/1.1 app got a bare 101 and a close, an h2c app a
        // `:status 101` its HTTP/2 stack must reject. (hyper handles other 1xx itself.)
        if response.status().is_informational() {
            return Err(ProxyError::UpstreamProtocol {
                target: side.upstream(&self.snapshot).target().to_owned(),
                status: response.status().as_u16(),
            });
        }
        let label = self.route.clone();
        if self.shadow {
            let primary = shadow::Primary {
                route: self.route,
                side,
                status: response.status(),
                trace_id: header_text(response.headers(), "x-trace-id"),
                account: self.account.clone(),
            };
            shadow::spawn(
                self.shared.clone(),
                self.snapshot.clone(),
                self.head,
                primary,
            );
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts.version = Version::HTTP_11;
        // Wise pausing its body for longer than upstream_timeout: the answer is cut off
        // (the app sees it break off, never a short body that looks complete) and its
        // slot freed.
        let pause_limit = self.snapshot.config.limits.upstream_timeout;
        let body = StallGuard::new(body, pause_limit, Sender::Upstream).map_err(move |error| {
            if let Some(stalled) = error.downcast_ref::<BodyStalled>() {
                tracing::warn!(route = &*label, "{stalled}");
            }
            error
        });
        Ok(Response::from_parts(parts, stream(body)))
    }

    /// The mTLS side failed: the legacy side when the route falls back and nothing
    /// reached Wise, else the failure. The failure counts for the breaker whatever the
    /// body; only a kept body can be sent again. Nothing reached Wise, so the legacy
    /// side is safe for any method.
    async fn fall_back(&mut self, error: ProxyError) -> Result<Response<UpstreamBody>, ProxyError> {
        let (Some(cooldown), Some(reason)) =
            (self.fallback, fallback::reason(&error, self.idempotent))
        else {
            return Err(error);
        };
        self.shared
            .migration
            .breakers
            .failure(&self.route, cooldown);
        if !self.body.is_kept() {
            return Err(error);
        }
        self.count_fallback(reason);
        let route = &self.route;
        tracing::info!(%route, %reason, "mTLS side unusable ({error}); sending the personal-token way");
        self.send_legacy_instead().await
    }

    fn count_fallback(&self, reason: &str) {
        let labels = RouteReasonLabels::of(&self.route, reason);
        self.shared.metrics.fallback.get_or_create(&labels).inc();
    }

    /// The mTLS side: the client certificate must be current and the route's OAuth token
    /// usable before anything is sent.
    async fn send_oauth(&mut self) -> Result<Response<UpstreamBody>, ProxyError> {
        let identity = self.shared.resolver.current();
        if identity.check_current().is_err() {
            return Err(ProxyError::ClientCertExpired {
                file: identity.cert_file.display().to_string(),
            });
        }
        let (mtls, tokens) = (&self.snapshot.mtls, &self.account.tokens);
        if self.mode == Mode::OAuthClient {
            let bearer = tokens.client_bearer().await?;
            return send::send_once(mtls, &self.head, &mut self.body, bearer).await;
        }
        let bearer = tokens.user_bearer_or_refresh().await?;
        send::send_with_user_token(mtls, &self.head, &mut self.body, bearer, tokens).await
    }

    /// An OAuth route's request sent the personal-token way (fallback), SCA left to the
    /// app.
    async fn send_legacy_instead(&mut self) -> Result<Response<UpstreamBody>, ProxyError> {
        self.head = self.head.to(&self.snapshot.legacy);
        self.send_legacy(false).await
    }

    /// The legacy side; with `sca`, a challenge to a kept request is signed and the
    /// request repeated once with `x-2fa-approval` and `X-Signature`.
    async fn send_legacy(&mut self, sca: bool) -> Result<Response<UpstreamBody>, ProxyError> {
        let account = &self.account;
        let bearer = account.personal_bearer.clone().ok_or_else(|| {
            CredentialError::PersonalTokenMissing {
                reason: format!(
                    "no personal token is configured for account `{}` ([personal_token] token_file, or personal_token_file in its [[account]])",
                    account.name
                ),
            }
        })?;
        let (legacy, head) = (&self.snapshot.legacy, &self.head);
        let response = send::send_once(legacy, head, &mut self.body, bearer.clone()).await?;
        let (Some(signer), true) = (account.sca.as_ref().filter(|_| sca), self.body.is_kept())
        else {
            return Ok(response);
        };
        let Some(one_time_token) = sca::challenge(response.status(), response.headers()) else {
            return Ok(response);
        };
        // The challenge gives back its upstream slot before the signed repeat takes one.
        drop(response);
        let mut signed = head.clone();
        let signature = signer.sign(&one_time_token);
        sca::approve(&mut signed.headers, &one_time_token, &signature);
        tracing::info!("SCA challenge on the personal-token path: signed and repeated once");
        Box::pin(send::send_once(legacy, &signed, &mut self.body, bearer))
            .await
            .map(sca::mark_signed)
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
