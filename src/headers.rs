//! Header hygiene for a proxy hop (RFC 9110 §7.6.1): hop-by-hop headers, standard ones
//! and any the `Connection` header names, belong to one connection and are removed in
//! both directions. Several `cookie` fields become one (RFC 9113 §8.2.3), as an HTTP/1.1
//! upstream needs them. Everything else passes through untouched. One limit on the number
//! of header fields holds for HTTP/1.1 and h2c alike ([`MAX_HEADER_FIELDS`]).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The most header fields a request from the app may have, over HTTP/1.1 (hyper's
/// `max_headers`) and h2c (checked by the request guard; HTTP/2 bounds only their size)
/// alike. hyper's HTTP/1.1 default, which Wise's API stays far below.
pub const MAX_HEADER_FIELDS: usize = 100;

/// Headers that never cross a proxy.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including those listed in `Connection`, and `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Joins several `cookie` fields into one, separated by "; " (RFC 9113 §8.2.3): an h2c
/// app may split its cookies into fields, which an HTTP/1.1 upstream must get as one line.
pub fn join_cookies(headers: &mut HeaderMap) {
    let mut cookies = headers.get_all(header::COOKIE).iter();
    if cookies.next().is_none() || cookies.next().is_none() {
        return;
    }
    let mut joined = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        if !joined.is_empty() {
            joined.extend_from_slice(b"; ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // Field values joined with "; " are a field value again.
    if let Ok(value) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn removes_standard_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Custom-Hop"),
        );
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("x-custom-hop", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-external-correlation-id", HeaderValue::from_static("abc"));
        headers.insert("x-2fa-approval", HeaderValue::from_static("tok"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-external-correlation-id", "x-2fa-approval"]);
    }

    #[test]
    fn several_cookie_fields_become_one() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2; c=3"));
        join_cookies(&mut headers);
        let cookies: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
        let mut one = HeaderMap::new();
        one.insert(header::COOKIE, HeaderValue::from_static("a=1"));
        join_cookies(&mut one);
        assert_eq!(one[header::COOKIE], "a=1");
    }
}
