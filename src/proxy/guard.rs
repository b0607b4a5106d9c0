//! What wisegate refuses before anything is forwarded: it is not an open proxy
//! (`CONNECT`, absolute-form targets), it does not guess at ambiguous framing
//! (`Content-Length` together with `Transfer-Encoding`, codings other than `chunked`:
//! request-smuggling vectors), it holds requests to RFC 9112's Host rules (exactly one,
//! well formed), it refuses what Wise's API has no use for (`TRACE`, which would echo the
//! injected bearer, and asterisk-form targets), it holds h2c requests to the header-field
//! count hyper holds HTTP/1.1 ones to, and a declared body over `limits.max_body_bytes`
//! is refused without reading it.

use crate::error::ProxyError;
use crate::headers::MAX_HEADER_FIELDS;
use http::uri::Authority;
use http::{header, HeaderMap, HeaderValue, Method, Request, Version};

/// Checks a request from the app; `limit` is `limits.max_body_bytes`.
pub fn check<B>(request: &Request<B>, limit: u64) -> Result<(), ProxyError> {
    let method = request.method();
    if method == Method::CONNECT {
        return Err(ProxyError::ConnectRefused);
    }
    if method == Method::TRACE || method.as_str() == "TRACK" {
        return Err(ProxyError::MethodRefused {
            method: method.to_string(),
        });
    }
    let http1 = request.version() != Version::HTTP_2;
    // HTTP/2 always carries :authority; for HTTP/1 an authority means absolute-form.
    if http1 && request.uri().authority().is_some() {
        return Err(ProxyError::AbsoluteForm);
    }
    if request.uri().path() == "*" {
        return Err(ProxyError::AsteriskForm);
    }
    let headers = request.headers();
    // Over HTTP/1.1 hyper stops at this count (with its own 431) before wisegate sees it.
    if headers.len() > MAX_HEADER_FIELDS {
        return Err(ProxyError::TooManyHeaderFields {
            limit: MAX_HEADER_FIELDS,
        });
    }
    check_host(headers, request.version())?;
    if http1 && headers.contains_key(header::TRANSFER_ENCODING) {
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(ProxyError::AmbiguousFraming);
        }
        if !only_chunked(headers) {
            return Err(ProxyError::TransferCodingRefused);
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    Ok(())
}

/// RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host field, any request at
/// most one, and its value is a host and an optional port (HTTP/2 carries `:authority`
/// instead, and an HTTP/1.0 request may have none).
fn check_host(headers: &HeaderMap, version: Version) -> Result<(), ProxyError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(ProxyError::BadHost {
            detail: "appears more than once",
        }),
        (Some(host), None) if !valid_host(host) => Err(ProxyError::BadHost {
            detail: "is not a host name or address with an optional port",
        }),
        (None, _) if version == Version::HTTP_11 => Err(ProxyError::BadHost {
            detail: "is missing",
        }),
        _ => Ok(()),
    }
}

/// `uri-host [ ":" port ]` (RFC 9110 section 7.2), or empty (allowed for a target with no
/// authority): no user info, path or spaces, a port that is a number up to 65535.
fn valid_host(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return true;
    }
    let Ok(authority) = Authority::try_from(bytes) else {
        return false;
    };
    let text = authority.as_str();
    let after_host = text.rfind(']').map_or(text, |end| &text[end..]);
    !text.contains('@') && (!after_host.contains(':') || authority.port_u16().is_some())
}

/// Whether the body's only transfer coding is one `chunked` (hyper decodes it; any other
/// coding wisegate would pass on undecoded and unannounced).
fn only_chunked(headers: &HeaderMap) -> bool {
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    matches!(
        (codings.next(), codings.next()),
        (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn refuses_what_an_open_proxy_would_accept() {
        assert!(matches!(
            check(&request("CONNECT", "example.com:443", &[]), 10),
            Err(ProxyError::ConnectRefused)
        ));
        assert!(matches!(
            check(&request("GET", "http://example.com/x", &[]), 10),
            Err(ProxyError::AbsoluteForm)
        ));
        assert!(check(&request("GET", "/v1/x?y=1", &[("host", "a")]), 10).is_ok());
    }

    #[test]
    fn holds_requests_to_the_host_rules() {
        let ok = |headers: &[(&str, &str)]| check(&request("GET", "/v1/x", headers), 10).is_ok();
        assert!(ok(&[("host", "127.0.0.1:8080")]));
        assert!(ok(&[("host", "[::1]:8080")]));
        assert!(ok(&[("host", "")]));
        assert!(!ok(&[]), "HTTP/1.1 without Host");
        assert!(!ok(&[("host", "a"), ("host", "a")]));
        for bad in ["a b", "u@a", "a/x", "a:99999", "a:x", "[::1]:x"] {
            assert!(!ok(&[("host", bad)]), "{bad}");
        }
        let old = Request::builder()
            .uri("/v1/x")
            .version(Version::HTTP_10)
            .body(())
            .unwrap();
        assert!(check(&old, 10).is_ok(), "HTTP/1.0 needs no Host");
    }

    #[test]
    fn refuses_what_wise_has_no_use_for() {
        let host = [("host", "a")];
        assert!(matches!(
            check(&request("TRACE", "/v1/x", &host), 10),
            Err(ProxyError::MethodRefused { .. })
        ));
        assert!(matches!(
            check(&request("OPTIONS", "*", &host), 10),
            Err(ProxyError::AsteriskForm)
        ));
        let many: Vec<(String, &str)> = (0..=MAX_HEADER_FIELDS)
            .map(|i| (format!("x-{i}"), "v"))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert!(matches!(
            check(&request("GET", "/v1/x", &many), 10),
            Err(ProxyError::TooManyHeaderFields { .. })
        ));
    }

    #[test]
    fn refuses_transfer_codings_other_than_chunked() {
        let with = |codings: &[&str]| {
            let mut headers = vec![("host", "a")];
            headers.extend(codings.iter().map(|c| ("transfer-encoding", *c)));
            check(&request("POST", "/x", &headers), 10)
        };
        assert!(with(&["chunked"]).is_ok());
        assert!(with(&["Chunked"]).is_ok());
        for codings in [
            &["gzip, chunked"][..],
            &["gzip", "chunked"],
            &["chunked, chunked"],
        ] {
            assert!(
                matches!(with(codings), Err(ProxyError::TransferCodingRefused)),
                "{codings:?}"
            );
        }
    }

    #[test]
    fn refuses_ambiguous_framing_and_oversized_declared_bodies() {
        let both = [
            ("host", "a"),
            ("content-length", "5"),
            ("transfer-encoding", "chunked"),
        ];
        assert!(matches!(
            check(&request("POST", "/x", &both), 10),
            Err(ProxyError::AmbiguousFraming)
        ));
        let big = [("host", "a"), ("content-length", "11")];
        assert!(matches!(
            check(&request("POST", "/x", &big), 10),
            Err(ProxyError::BodyTooLarge { limit: 10 })
        ));
        let fits = [("host", "a"), ("content-length", "10")];
        assert!(check(&request("POST", "/x", &fits), 10).is_ok());
    }
}
