//! `wisegate check --online`: Wise itself, without changing anything. The legacy host
//! is reached over TLS; the mTLS host is reached presenting the client certificate, and
//! one call shows whether Wise accepted it, whether or not a user token exists yet. The
//! token endpoint is tested by client authentication (a client-credentials grant, which
//! leaves the user's lineage alone). Nothing is refreshed: a refresh here would
//! invalidate the token a running wisegate holds, and its next requests would meet 401.

use crate::admin_client::{self, Lookup};
use crate::assembly::{self, Snapshot};
use crate::checklist::Checklist;
use crate::config::{AccountConfig, Config, DEFAULT_ACCOUNT};
use crate::tls::{self, ClientIdentity};
use crate::token::bearer_header;
use http::{header, HeaderValue, Request, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;

/// Wise's test call: answers 200 to any valid token presented over mTLS.
const TEST_CALL: &str = "/v1/authenticated/playground";

/// The online part of the checklist.
pub async fn check_online(list: &mut Checklist, config: &Config, identity: ClientIdentity) {
    let resolver = Arc::new(tls::ClientCertResolver::new(identity));
    let snapshot = match Snapshot::build(config.clone(), &resolver, 0, 0) {
        Ok(snapshot) => snapshot,
        Err(error) => return list.fail(error.to_string()),
    };
    running(list, config).await;
    let accounts = config.accounts();
    for account in &accounts {
        let bearer = match account
            .personal_token
            .as_ref()
            .map(assembly::personal_bearer)
        {
            Some(Ok(bearer)) => Some(bearer),
            Some(Err(error)) => return list.fail(error.to_string()),
            None => None,
        };
        let name = (accounts.len() > 1).then_some(account.name.as_str());
        legacy(list, &snapshot, bearer, name).await;
    }

    let oauth = match assembly::oauth_client(config, &resolver) {
        Ok(oauth) => oauth,
        Err(error) => return list.fail(error.to_string()),
    };
    let app_token = match oauth.client_credentials().await {
        Ok(response) => {
            list.ok(format!(
                "the token endpoint {} accepted the client's credentials and certificate (a client-credentials grant: the user's tokens are untouched)",
                config.oauth.token_url
            ));
            bearer_header(&response.access_token)
        }
        Err(error) => {
            list.fail(format!(
                "the token endpoint {} refused the client: {error}",
                config.oauth.token_url
            ));
            None
        }
    };
    for account in &accounts {
        let user = stored_user_token(list, account).await;
        let (bearer, which) = match (user, app_token.clone()) {
            (Some(user), _) => (Some(user), "the stored user token".to_owned()),
            (None, Some(app)) => (Some(app), "a client-credentials token".to_owned()),
            (None, None) => (None, "no token".to_owned()),
        };
        let which = match accounts.len() {
            1 => which,
            _ => format!("{which} of account {}", account.name),
        };
        test_call(list, &snapshot, bearer, &which).await;
    }
}

/// Says whether a wisegate runs on this config: nothing here changes its token.
async fn running(list: &mut Checklist, config: &Config) {
    match admin_client::find(config).await {
        Ok(Lookup::Found(running)) => list.ok(format!(
            "a wisegate runs this config (admin listener {}); these checks do not refresh its token",
            running.address
        )),
        Ok(Lookup::NotRunning | Lookup::NotLoopback) => {}
        Err(error) => list.warn(error.to_string()),
    }
}

/// The legacy host. With a personal token: the rollback-readiness probe (one GET
/// /v1/profiles with it), so `check` says whether a rollback would work; a refused
/// personal token fails the check when the config sends traffic that way now
/// (`rollback.all` or a personal-token route) and warns otherwise. Without one: TLS
/// only, and Wise's 401 is the expected answer to a call without a credential.
async fn legacy(
    list: &mut Checklist,
    snapshot: &Snapshot,
    bearer: Option<http::HeaderValue>,
    account: Option<&str>,
) {
    use crate::legacy_path::LegacyPath;
    use crate::rollback_readiness::probe;
    if bearer.is_some() {
        let probe = probe(snapshot, bearer.as_ref()).await;
        let of = account
            .map(|name| format!(" of account {name}"))
            .unwrap_or_default();
        let line = format!(
            "rollback readiness{of}: {}: {}",
            probe.state.as_str(),
            probe.detail
        );
        let rollback = snapshot.config.rollback_all;
        let in_use = snapshot
            .config
            .routes
            .all()
            .iter()
            .any(|route| route.effective(rollback).mode == crate::route::Mode::PersonalToken);
        return match probe.state {
            LegacyPath::Available => list.ok(line),
            LegacyPath::Refused if !in_use => list.warn(line),
            _ => list.fail(line),
        };
    }
    let path = http::uri::PathAndQuery::from_static("/v1/profiles");
    let Ok(request) =
        Request::get(snapshot.legacy.uri_for(Some(&path))).body(crate::body::full(""))
    else {
        return list.fail("cannot build the request to the legacy host");
    };
    let target = snapshot.legacy.target();
    match snapshot.legacy.send(request).await {
        Err(error) => list.fail(error.to_string()),
        Ok(response) => list.ok(format!(
            "TLS with the legacy host {target} works (HTTP {} to a call without a credential, as expected: no personal token is configured)",
            response.status().as_u16()
        )),
    }
}

/// The stored access token when it is still valid; else a line saying why there is
/// none (not refreshed here: see the module docs).
async fn stored_user_token(list: &mut Checklist, account: &AccountConfig) -> Option<HeaderValue> {
    let store = assembly::store_of(&account.token_store).ok()?;
    let tokens = store.load().await.ok()??.tokens;
    if tokens.expires_at <= SystemTime::now() {
        list.warn(format!("the stored access token has expired{}; check does not refresh it (a running wisegate refreshes its own, or run `wisegate token refresh{}`)", of_account(account), for_account(account)));
        return None;
    }
    bearer_header(&tokens.access_token)
}

/// Wise's test call on the mTLS host, presenting the client certificate.
async fn test_call(
    list: &mut Checklist,
    snapshot: &Snapshot,
    bearer: Option<HeaderValue>,
    which: &str,
) {
    let path = http::uri::PathAndQuery::from_static(TEST_CALL);
    let mut request = Request::get(snapshot.mtls.uri_for(Some(&path)));
    let with_token = bearer.is_some();
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, bearer);
    }
    let Ok(request) = request.body(crate::body::full("")) else {
        return list.fail("cannot build the test request");
    };
    let target = snapshot.mtls.target();
    match snapshot.mtls.send(request).await {
        Err(error) => list.fail(error.to_string()),
        Ok(response) if response.status() == StatusCode::OK => list.ok(format!(
            "Wise's test call on the mTLS host {target} answered 200 with our certificate and {which}"
        )),
        Ok(response) if !with_token => list.warn(format!(
            "the mTLS host {target} completed the TLS handshake with our certificate; without a token its test call answered HTTP {}",
            response.status().as_u16()
        )),
        Ok(response) => list.fail(format!(
            "Wise's test call on the mTLS host {target} with {which} answered {}",
            response.status()
        )),
    }
}

/// " (account NAME)" for an `[[account]]`, nothing for the single-account config's.
fn of_account(account: &AccountConfig) -> String {
    match account.name.as_str() {
        DEFAULT_ACCOUNT if account.app_token_sha256.is_empty() => String::new(),
        name => format!(" (account {name})"),
    }
}

/// " --account NAME" for an `[[account]]`, nothing for the single-account config's.
fn for_account(account: &AccountConfig) -> String {
    match account.name.as_str() {
        DEFAULT_ACCOUNT if account.app_token_sha256.is_empty() => String::new(),
        name => format!(" --account {name}"),
    }
}
