//! The request path's first two steps, as the proxy runs them: the guard
//! (`proxy::guard::check`), then the rewrite (`proxy::rewrite::head`). Whatever the app
//! sends as target and headers, the guard either refuses it or the rewritten head goes
//! to the upstream's authority with the path and query byte for byte, with no
//! hop-by-hop header, `Host` or app `Authorization` left and at most one `cookie`.
#![no_main]

use http::header::{HeaderName, HeaderValue};
use http::uri::Authority;
use libfuzzer_sys::fuzz_target;
use wisegate::proxy::{guard, rewrite};

/// The line that precedes the headers: the target; a first byte `2` makes it HTTP/2.
fn request(data: &[u8]) -> Option<http::Request<()>> {
    let mut lines = data.split(|b| *b == b'\n');
    let mut target = lines.next().unwrap_or_default();
    let mut version = http::Version::HTTP_11;
    if let Some(rest) = target.strip_prefix(b"2 ") {
        version = http::Version::HTTP_2;
        target = rest;
    }
    let uri = http::Uri::try_from(target).ok()?;
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(uri)
        .version(version);
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii_start();
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) else { continue };
        builder = builder.header(name, value);
    }
    builder.body(()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = request(data) else { return };
    if guard::check(&request, 1 << 20).is_err() {
        return;
    }
    let authority = Authority::from_static("api-mtls.wise-sandbox.com");
    let original = request.uri().path_and_query().map(|p| p.as_str().to_owned());
    let (parts, ()) = request.into_parts();
    let head = rewrite::head(parts, &authority);
    assert_eq!(head.uri.authority(), Some(&authority));
    assert_eq!(
        head.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into()),
        original.unwrap_or_else(|| "/".into())
    );
    for hop in ["connection", "keep-alive", "te", "transfer-encoding", "upgrade", "proxy-authorization", "host", "authorization"] {
        assert!(!head.headers.contains_key(hop), "{hop} survived the rewrite");
    }
    assert!(head.headers.get_all("cookie").iter().count() <= 1, "cookies not joined");
});
