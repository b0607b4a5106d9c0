//! The request-rewrite step: whatever the app sends as target and headers, the guard
//! either refuses it or the rewritten request goes to the configured upstream with the
//! path and query byte for byte and no hop-by-hop header left.
#![no_main]

use http::header::{HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use wisegate::proxy::rewrite;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == b'\n');
    let target = parts.next().unwrap_or_default();
    let mut builder = http::Request::builder().method("POST");
    let Ok(uri) = http::Uri::try_from(target) else { return };
    builder = builder.uri(uri);
    for line in parts {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..])) else { continue };
        builder = builder.header(name, value);
    }
    let Ok(request) = builder.body(()) else { return };
    let original = request.uri().path_and_query().map(|p| p.as_str().to_owned());
    if let Ok(head) = rewrite(request, 1 << 20, "api-mtls.wise-sandbox.com:443") {
        assert_eq!(head.uri.authority().map(|a| a.as_str()), Some("api-mtls.wise-sandbox.com:443"));
        assert_eq!(head.uri.path_and_query().map(|p| p.as_str().to_owned()).or(Some("/".into())), original.or(Some("/".into())));
        for hop in ["connection", "keep-alive", "te", "transfer-encoding", "upgrade", "proxy-authorization", "host", "authorization"] {
            assert!(!head.headers.contains_key(hop), "{hop} survived the rewrite");
        }
    }
});
