//! `/status` on the admin listener: what an operator wants to see at a glance, as JSON
//! (the default) and as an HTML page for people (`Accept: text/html`, as browsers send,
//! or `?format=html`). Routes with their configured and effective modes, shadow and
//! fallback state and status counts; token and certificate expiry; whether a person must
//! authorize again; rollback; the config generation and when it was loaded; readiness;
//! the last hour ([`crate::history`]). This file gathers the one [`Status`] value
//! ([`model`]); [`page`] renders it for people.

mod accounts_table;
mod escape;
mod graphs;
mod model;
mod page;
mod timeline;

pub use model::*;
pub use page::html;

use crate::readiness::not_ready_reasons;
use crate::route_counts::RouteCounts;
use crate::timestamps::{rfc3339, unix_seconds as unix};
use crate::Shared;

fn responses(counts: &RouteCounts) -> Responses {
    let [c1xx, c2xx, c3xx, c4xx, c5xx] = counts.by_class();
    Responses {
        c1xx,
        c2xx,
        c3xx,
        c4xx,
        c5xx,
    }
}

/// The status now.
pub fn gather(shared: &Shared) -> Status {
    let snapshot = shared.snapshot.load_full();
    let rollback = snapshot.config.rollback_all;
    let readiness = shared.rollback_readiness.last();
    let reload = shared.last_reload.load_full();
    let reasons = not_ready_reasons(shared);
    Status {
        ready: reasons.is_empty(),
        reasons,
        rollback_all: rollback,
        rollback_readiness: RollbackReadiness {
            state: readiness.as_ref().map(|p| p.state.as_str().to_owned()),
            checked_at: readiness.as_ref().map(|p| rfc3339(p.at)),
            detail: readiness.as_ref().map(|p| p.detail.clone()),
            probe_interval_s: snapshot.config.rollback_probe_interval.map(|d| d.as_secs()),
        },
        config: ConfigStatus {
            file: snapshot.config.file.display().to_string(),
            generation: snapshot.generation,
            sha256: snapshot.config.sha256.clone(),
            loaded_at: rfc3339(snapshot.loaded_at),
            last_reload: reload.map(|r| LastReload {
                at: rfc3339(r.at),
                result: r.result.to_owned(),
                error: r.error.clone(),
            }),
        },
        routes: routes(shared, &snapshot),
        token: token(&shared.accounts.load().first().tokens, None),
        accounts: accounts(shared),
        client_certificate: certificate(shared),
        last_hour: shared.history.hour(),
    }
}

/// The routes of `snapshot` in table order, the default route last.
fn routes(shared: &Shared, snapshot: &crate::assembly::Snapshot) -> Vec<RouteStatus> {
    let open = shared.migration.breakers.open();
    let rollback = snapshot.config.rollback_all;
    snapshot
        .config
        .routes
        .all()
        .iter()
        .enumerate()
        .map(|(index, route)| RouteStatus {
            name: route.name.clone(),
            path: route.pattern.as_str().to_owned(),
            methods: route
                .methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            mode: route.mode.as_str().to_owned(),
            effective_mode: route.effective(rollback).mode.as_str().to_owned(),
            shadow: route.shadow,
            fallback: route.fallback.map(|cooldown| FallbackStatus {
                cooldown_s: cooldown.as_secs(),
                open: open.contains_key(&route.name),
                probe_in_s: open.get(&route.name).copied(),
            }),
            responses: responses(&snapshot.counts[index]),
            last_hour: snapshot
                .series
                .get(index)
                .map(|series| series.hour())
                .unwrap_or_default(),
        })
        .collect()
}

/// Every account's token, store and rollback state.
fn accounts(shared: &Shared) -> Vec<AccountStatus> {
    let accounts = shared.accounts.load();
    let several = accounts.len() > 1;
    accounts
        .iter()
        .map(|account| AccountStatus {
            name: account.name.to_string(),
            token: token(&account.tokens, several.then_some(&*account.name)),
            store: account.tokens.store().describe(),
            store_trouble: account.tokens.store_trouble(),
            rollback: account.rollback(),
            personal_token: account.personal_bearer.is_some(),
            app_tokens: account.config.app_token_sha256.len(),
        })
        .collect()
}

/// An account's OAuth access token expiry, the last refresh and whether Wise refused
/// the grant (`account`: the name `--account` takes, with several accounts).
fn token(tokens: &crate::token::TokenManager, account: Option<&str>) -> TokenStatus {
    let token = tokens.status();
    let last = tokens.last_refresh();
    let authorize = match account {
        Some(name) => format!("wisegate authorize --account {name}"),
        None => "wisegate authorize".to_owned(),
    };
    TokenStatus {
        expires_at: token.expires_at.map(rfc3339),
        expires_unix: token.expires_at.map(unix),
        profile_id: token.profile_id,
        last_refresh: last.as_ref().map(|o| LastRefresh {
            at: rfc3339(o.at),
            error: o.error.clone(),
            grant_refused: o.grant_refused,
            error_code: o.error_code.clone(),
        }),
        authorization_required: last
            .filter(|o| o.grant_refused)
            .map(|o| AuthorizationRequired {
                refused_at: rfc3339(o.at),
                error_code: o
                    .error_code
                    .clone()
                    .unwrap_or_else(|| "invalid_grant".to_owned()),
                action: format!("a person must run `{authorize}`"),
            }),
    }
}

fn certificate(shared: &Shared) -> CertificateStatus {
    let identity = shared.resolver.current();
    CertificateStatus {
        file: identity.cert_file.display().to_string(),
        expires_at: rfc3339(identity.not_after),
        expires_unix: unix(identity.not_after),
    }
}

/// `/status` of a wisegate running with admin listener `admin` (a wildcard address is
/// asked on loopback), or `None` when none answers within a second.
pub async fn fetch_running(admin: std::net::SocketAddr) -> Option<Status> {
    use http_body_util::BodyExt;
    let mut address = admin;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri = format!("http://{address}/status").parse().ok()?;
    let ask = async {
        let response = client.get(uri).await.ok()?;
        let body = response.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), ask)
        .await
        .ok()
        .flatten()
}
