//! The OAuth 2.0 token endpoint, `POST [/YYYYQn]/oauth/token` on the mTLS host: HTTP
//! Basic client authentication, the `authorization_code`, `refresh_token` and
//! `client_credentials` grants, and the failure modes of [`TokenEndpointMode`].

use std::time::Duration;

use base64::Engine;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::body::{self, oauth_error, RespBody};
use crate::config::TokenEndpointMode;
use crate::state::{Grant, GrantKind, Shared};

/// Refresh tokens live 20 years, like Wise's.
const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(630_720_000);
/// The largest token request body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether a path (no query) is the token endpoint, with or without a `/YYYYQn` prefix.
pub(crate) fn is_token_path(path: &str) -> bool {
    crate::api::strip_version_prefix(path) == "/oauth/token"
}

/// Handles one token-endpoint request.
pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<RespBody> {
    let _in_flight = shared.enter_token_call();
    let mode = shared.mode();
    if let TokenEndpointMode::Slow(delay) | TokenEndpointMode::SlowUnavailable(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    let failure = match mode {
        TokenEndpointMode::Unavailable | TokenEndpointMode::SlowUnavailable(_) => {
            Some(oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The token service is temporarily unavailable",
            ))
        }
        TokenEndpointMode::Garbage => Some(body::with_body(
            StatusCode::OK,
            "text/html",
            "<html>oops</html>",
        )),
        TokenEndpointMode::Empty => Some(body::empty(StatusCode::OK)),
        TokenEndpointMode::Normal
        | TokenEndpointMode::Slow(_)
        | TokenEndpointMode::SlowAnswer(_) => None,
    };
    if let Some(resp) = failure {
        shared.count_token_call(None);
        return resp;
    }
    let resp = match grant(shared, req).await {
        Ok((kind, grant)) => {
            shared.count_token_call(Some(kind));
            success(shared, &grant)
        }
        Err(resp) => {
            shared.count_token_call(None);
            resp
        }
    };
    if let TokenEndpointMode::SlowAnswer(delay) = mode {
        tokio::time::sleep(delay).await;
    }
    resp
}

/// Checks the request and runs its grant.
async fn grant(
    shared: &Shared,
    req: Request<Incoming>,
) -> Result<(GrantKind, Grant), Response<RespBody>> {
    if req.method() != Method::POST {
        return Err(oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The token endpoint only accepts POST",
        ));
    }
    if !client_authenticated(shared, req.headers().get(header::AUTHORIZATION)) {
        let mut resp = oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"fake-wise\""),
        );
        return Err(resp);
    }
    let bytes = match Limited::new(req.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(invalid_request("The request body could not be read")),
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match field("grant_type") {
        Some("authorization_code") => {
            let Some(code) = field("code") else {
                return Err(invalid_request("Missing parameter: code"));
            };
            if field("redirect_uri") != Some(shared.config.redirect_uri.as_str()) {
                return Err(invalid_grant("redirect_uri does not match"));
            }
            match shared.exchange_code(code) {
                Some(g) => Ok((GrantKind::AuthorizationCode, g)),
                None => Err(invalid_grant("Invalid authorization code")),
            }
        }
        Some("refresh_token") => {
            let Some(token) = field("refresh_token") else {
                return Err(invalid_request("Missing parameter: refresh_token"));
            };
            match shared.refresh(token) {
                Some(g) => Ok((GrantKind::RefreshToken, g)),
                None => Err(invalid_grant("Invalid refresh token")),
            }
        }
        Some("client_credentials") => {
            Ok((GrantKind::ClientCredentials, shared.client_credentials()))
        }
        Some(_) => Err(invalid_request("Unsupported grant_type")),
        None => Err(invalid_request("Missing parameter: grant_type")),
    }
}

fn invalid_request(description: &str) -> Response<RespBody> {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> Response<RespBody> {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// HTTP Basic `client_id:client_secret` (raw, or form-urlencoded as RFC 6749 allows).
fn client_authenticated(shared: &Shared, value: Option<&header::HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((id, secret)) = decoded.split_once(':') else {
        return false;
    };
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let cfg = &shared.config;
    (id == cfg.client_id && secret == cfg.client_secret)
        || (unescape(id) == cfg.client_id && unescape(secret) == cfg.client_secret)
}

/// The success body, shaped like Wise's.
fn success(shared: &Shared, grant: &Grant) -> Response<RespBody> {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let lifetime = shared.config.access_token_lifetime;
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut body = serde_json::json!({
        "access_token": grant.access_token,
        "token_type": "bearer",
        "expires_in": lifetime.as_secs(),
        "expires_at": rfc3339(now + lifetime),
        "scope": "transfers",
        "created_at": rfc3339(now),
    });
    if let (Some(refresh), Some(obj)) = (&grant.refresh_token, body.as_object_mut()) {
        obj.insert("refresh_token".into(), refresh.as_str().into());
        obj.insert(
            "refresh_token_expires_in".into(),
            REFRESH_TOKEN_LIFETIME.as_secs().into(),
        );
        obj.insert(
            "refresh_token_expires_at".into(),
            rfc3339(now + REFRESH_TOKEN_LIFETIME).into(),
        );
    }
    let mut resp = body::json(StatusCode::OK, &body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_paths() {
        assert!(is_token_path("/oauth/token"));
        assert!(is_token_path("/2026Q3/oauth/token"));
        assert!(!is_token_path("/2026Q5/oauth/token"));
        assert!(!is_token_path("/v1/oauth/token"));
    }
}
