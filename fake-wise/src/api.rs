//! API requests on the mTLS and legacy hosts: bearer authentication, the streamed body
//! digest, the special `/test/...` paths, the JSON echo, and the request record.

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::{self, oauth_error, BodyDigest, RespBody};
use crate::config::{HostKind, RecordedRequest};
use crate::state::{Credential, Shared, TokenKind};

/// The longest `/test/slow` delay honoured.
const MAX_SLOW: Duration = Duration::from_secs(600);

/// What the double knows about the connection a request came on.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnInfo {
    /// The leaf certificate the client presented, DER.
    pub client_cert_der: Option<Vec<u8>>,
    /// The client's address and port (one per connection).
    pub peer: Option<std::net::SocketAddr>,
}

/// `/2026Q3/x` -> `/x`; any other path unchanged.
pub(crate) fn strip_version_prefix(path: &str) -> &str {
    let Some(rest) = path.strip_prefix('/') else {
        return path;
    };
    let (segment, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let b = segment.as_bytes();
    let versioned = b.len() == 6
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'Q'
        && (b'1'..=b'4').contains(&b[5]);
    if versioned && !tail.is_empty() {
        tail
    } else {
        path
    }
}

/// Handles one API request on `host`.
pub(crate) async fn handle(
    shared: &Shared,
    host: HostKind,
    conn: &ConnInfo,
    req: Request<Incoming>,
) -> Response<RespBody> {
    let _in_progress = shared.enter_api_request();
    let (parts, incoming) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let headers = header_list(&parts.headers);
    let keep = shared.config.recorded_body_limit;
    let (digest, body_ok) = match body::digest(incoming, keep).await {
        Ok(d) => (d, true),
        Err(d) => (d, false),
    };

    let credential = authenticate(shared, host, &parts.headers);
    let user = credential
        .and_then(|c| c.user)
        .map(|i| shared.users[i].name.clone());
    let resp = match credential.map(|c| c.kind) {
        _ if !body_ok => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body broke off",
        ),
        Some(TokenKind::Personal)
            if shared
                .mtls_enforced
                .load(std::sync::atomic::Ordering::Relaxed) =>
        {
            oauth_error(
                StatusCode::FORBIDDEN,
                "access_denied",
                "Personal tokens are no longer accepted for this client: mTLS is enforced",
            )
        }
        None => {
            let mut resp = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is missing, invalid or expired",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            resp
        }
        Some(_) if strip_version_prefix(parts.uri.path()) == "/test/sca" => {
            match shared
                .sca
                .check(shared.config.sca_public_key_pem.as_deref(), &parts.headers)
            {
                None => sca_passed(&path_and_query),
                Some(challenge) => challenge,
            }
        }
        Some(kind) => {
            let echo = serde_json::json!({
                "host": host.as_str(),
                "method": parts.method.as_str(),
                "path_and_query": path_and_query,
                "headers": headers,
                "body_len": digest.len,
                "body_sha256": digest.sha256,
                "token_kind": kind.as_str(),
                "user": user,
            });
            special(parts.uri.path(), parts.uri.query(), &echo).await
        }
    };

    let BodyDigest {
        len,
        sha256,
        kept,
        trailers,
    } = digest;
    shared.record(RecordedRequest {
        host,
        method: parts.method.as_str().to_owned(),
        path_and_query,
        authority: parts.uri.authority().map(|a| a.as_str().to_owned()),
        headers,
        trailers: header_list(&trailers),
        body_len: len,
        body: kept,
        body_sha256: sha256,
        client_cert_der: conn.client_cert_der.clone(),
        peer: conn.peer,
        http_version: format!("{:?}", parts.version),
        user,
        status: resp.status().as_u16(),
    });
    resp
}

/// Header names and values in the order hyper keeps them (values decoded lossily).
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The credential the request carries (its kind and whose), if it is valid on this host.
fn authenticate(shared: &Shared, host: HostKind, headers: &HeaderMap) -> Option<Credential> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    match host {
        HostKind::Mtls => shared.oauth_credential(token),
        HostKind::Legacy => shared.personal_credential(token),
    }
}

/// A query parameter's value.
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<std::borrow::Cow<'q, str>> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The special test paths (any method), else the echo.
async fn special(path: &str, query: Option<&str>, echo: &serde_json::Value) -> Response<RespBody> {
    let path = strip_version_prefix(path);
    if path == "/test/download" {
        return match query_param(query, "bytes").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => body::download(n),
            None => bad_request("/test/download needs ?bytes=N"),
        };
    }
    if path == "/test/stall" {
        return match query_param(query, "bytes").and_then(|n| n.parse::<u64>().ok()) {
            Some(n) => body::stall(n),
            None => bad_request("/test/stall needs ?bytes=N"),
        };
    }
    if let Some(code) = path.strip_prefix("/test/status/") {
        return match code
            .parse::<u16>()
            .ok()
            .filter(|c| *c == 101 || (200..=599).contains(c))
        {
            Some(code) => status(code),
            None => bad_request("/test/status/{code} needs 101 or a code from 200 to 599"),
        };
    }
    if path == "/test/slow" {
        let Some(ms) = query_param(query, "ms").and_then(|n| n.parse::<u64>().ok()) else {
            return bad_request("/test/slow needs ?ms=N");
        };
        tokio::time::sleep(Duration::from_millis(ms).min(MAX_SLOW)).await;
    }
    if path == "/v1/authenticated/playground" {
        return body::json(StatusCode::OK, &serde_json::json!({ "message": "ok" }));
    }
    body::json(StatusCode::OK, echo)
}

fn sca_passed(path_and_query: &str) -> Response<RespBody> {
    body::json(
        StatusCode::OK,
        &serde_json::json!({"sca": "approved", "path_and_query": path_and_query}),
    )
}

fn bad_request(description: &str) -> Response<RespBody> {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

/// `/test/status/{code}`: that status, a small JSON body, rate-limit headers for 429.
fn status(code: u16) -> Response<RespBody> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    // 101: an upgrade nobody asked for (hyper sends its head only); no body either.
    let mut resp = if matches!(code, 101 | 204 | 205 | 304) {
        body::empty(status)
    } else {
        body::json(
            status,
            &serde_json::json!({ "status": code, "message": "as requested" }),
        )
    };
    if code == 429 {
        let h = resp.headers_mut();
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        h.insert("x-rate-limited-by", HeaderValue::from_static("fake-wise"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix() {
        assert_eq!(strip_version_prefix("/2026Q3/oauth/token"), "/oauth/token");
        assert_eq!(strip_version_prefix("/2027Q1/v1/x?y"), "/v1/x?y");
        assert_eq!(strip_version_prefix("/2026Q3"), "/2026Q3");
        assert_eq!(strip_version_prefix("/v1/x"), "/v1/x");
        assert_eq!(strip_version_prefix("/2026Q9/x"), "/2026Q9/x");
        assert_eq!(strip_version_prefix(""), "");
    }
}
