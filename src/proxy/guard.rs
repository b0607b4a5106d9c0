//! What wisegate refuses before anything is forwarded: it is not an open proxy
//! (`CONNECT`, absolute-form targets), it does not guess at ambiguous framing
//! (`Content-Length` together with `Transfer-Encoding`: a request-smuggling vector), and
//! a declared body over `limits.max_body_bytes` is refused without reading it.

use crate::error::ProxyError;
use http::{header, Method, Request, Version};

/// Checks a request from the app; `limit` is `limits.max_body_bytes`.
pub fn check<B>(request: &Request<B>, limit: u64) -> Result<(), ProxyError> {
    if request.method() == Method::CONNECT {
        return Err(ProxyError::ConnectRefused);
    }
    let http1 = request.version() != Version::HTTP_2;
    // HTTP/2 always carries :authority; for HTTP/1 an authority means absolute-form.
    if http1 && request.uri().authority().is_some() {
        return Err(ProxyError::AbsoluteForm);
    }
    let headers = request.headers();
    if http1
        && headers.contains_key(header::TRANSFER_ENCODING)
        && headers.contains_key(header::CONTENT_LENGTH)
    {
        return Err(ProxyError::AmbiguousFraming);
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
        assert!(check(&request("GET", "/v1/x?y=1", &[]), 10).is_ok());
    }

    #[test]
    fn refuses_ambiguous_framing_and_oversized_declared_bodies() {
        let both = [("content-length", "5"), ("transfer-encoding", "chunked")];
        assert!(matches!(
            check(&request("POST", "/x", &both), 10),
            Err(ProxyError::AmbiguousFraming)
        ));
        let big = [("content-length", "11")];
        assert!(matches!(
            check(&request("POST", "/x", &big), 10),
            Err(ProxyError::BodyTooLarge { limit: 10 })
        ));
        assert!(check(&request("POST", "/x", &[("content-length", "10")]), 10).is_ok());
    }
}
