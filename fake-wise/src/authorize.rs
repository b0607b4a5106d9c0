//! The authorize page (plain HTTP): `GET /oauth/authorize/?client_id=..&redirect_uri=..&state=..`
//! approves at once, as if the user had clicked, and redirects back with a fresh code and
//! the user's `profileId`. `&user=NAME` picks which of the double's users approves (the
//! first without it); a name no user has gets 400.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::body::{self, RespBody};
use crate::state::Shared;

/// Handles one request to the authorize listener.
pub(crate) fn handle<B>(shared: &Shared, req: &Request<B>) -> Response<RespBody> {
    let path = req.uri().path();
    if path != "/oauth/authorize/" && path != "/oauth/authorize" {
        return body::text(StatusCode::NOT_FOUND, "not found: try /oauth/authorize/\n");
    }
    if req.method() != Method::GET {
        return body::text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let cfg = &shared.config;
    if param("client_id") != Some(cfg.client_id.as_str()) {
        return body::text(
            StatusCode::BAD_REQUEST,
            format!(
                "client_id {:?} is not the registered client {:?}\n",
                param("client_id").unwrap_or(""),
                cfg.client_id
            ),
        );
    }
    if param("redirect_uri") != Some(cfg.redirect_uri.as_str()) {
        return body::text(
            StatusCode::BAD_REQUEST,
            format!(
                "redirect_uri {:?} does not match the registered redirect URI {:?} exactly\n",
                param("redirect_uri").unwrap_or(""),
                cfg.redirect_uri
            ),
        );
    }
    let user = match param("user") {
        None => 0,
        Some(name) => match shared.user_index(name) {
            Some(index) => index,
            None => {
                return body::text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "user {name:?} is not one of fake-wise's users ({}): \
                         pass one of them as ?user=NAME, or leave it out for the first\n",
                        shared.user_names()
                    ),
                )
            }
        },
    };
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("code", &shared.issue_code(user));
    if let Some(state) = param("state") {
        out.append_pair("state", state);
    }
    out.append_pair("profileId", &shared.users[user].profile_id.to_string());
    let separator = if cfg.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!("{}{separator}{}", cfg.redirect_uri, out.finish());
    let Ok(location) = HeaderValue::from_str(&location) else {
        return body::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the redirect URI cannot be put in a Location header\n",
        );
    };
    let mut resp = body::text(StatusCode::FOUND, "approved: redirecting\n");
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}
