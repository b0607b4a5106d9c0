//! Protocol conformance, checked against what reached the recording upstream (fake-wise's
//! record of every header field, trailer and body byte), over an HTTP/1.1 and an HTTP/2
//! upstream: a raw-socket corpus of framing and host cases, request trailers, an
//! unsolicited `101`, cookies from h2c apps, the header-field limit, and the error shape.

use crate::common;

use bytes::Bytes;
use common::Harness;
use fake_wise::{FakeWiseConfig, HttpVersions, RecordedRequest};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The app's own credential: it must never reach Wise, by any frame.
const APP_SECRET: &str = "app-own-credential-7f3c";

/// wisegate in front of a fake-wise that offers `versions` by ALPN, `extra` config added.
async fn harness(versions: HttpVersions, extra: &str) -> Harness {
    Harness::builder()
        .extra(extra)
        .fake(FakeWiseConfig {
            http_versions: versions,
            ..FakeWiseConfig::default()
        })
        .start()
        .await
}

/// Sends raw bytes; returns what came back once wisegate closed the connection (at most
/// 10 s: every case closes, by `Connection: close` or because it was refused).
async fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw answer (0 when none came).
fn status_of(answer: &str) -> u16 {
    answer
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// What must have reached Wise after a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Nothing,
    /// Exactly one request, without the app's credential or any trailer.
    One,
    /// At most one request whose body broke off (Wise saw it fail and answered 400): the
    /// head was sound and went on before the broken chunking behind it arrived.
    Broken,
}

/// Asserts that what reached Wise since the record was cleared is `reached`.
/// Whether what reached Wise since the record was cleared is `reached`; `Err` says what
/// did instead.
fn check_reached(seen: &[RecordedRequest], reached: Reached) -> Result<(), String> {
    let clean = |r: &RecordedRequest| {
        !r.contains(APP_SECRET) && r.trailers.is_empty() && r.header_all("authorization").len() == 1
    };
    let ok = match reached {
        Reached::Nothing => seen.is_empty(),
        Reached::One => seen.len() == 1 && clean(&seen[0]),
        Reached::Broken => seen.len() <= 1 && seen.iter().all(|r| clean(r) && r.status == 400),
    };
    let summary: Vec<String> = seen
        .iter()
        .map(|r| {
            format!(
                "{} {} {} -> {} (credential: {}, trailers: {:?})",
                r.http_version,
                r.method,
                r.path_and_query,
                r.status,
                r.contains(APP_SECRET),
                r.trailers
            )
        })
        .collect();
    ok.then_some(())
        .ok_or_else(|| format!("reached Wise: {summary:?}"))
}

/// What reached Wise once `expected` requests have been recorded (at most 5 s).
async fn settled(h: &Harness, expected: usize) -> Vec<RecordedRequest> {
    common::eventually(Duration::from_secs(5), async || {
        h.wise.requests().len() >= expected
    })
    .await;
    h.wise.requests()
}

/// `(name, request with {auth} for the app's credential line, status, what reaches Wise)`.
type Case = (&'static str, &'static str, u16, Reached);

/// The framing and host corpus: request smuggling variants, hosts, targets and methods.
const CORPUS: &[Case] = &[
    ("plain", "GET /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n", 200, Reached::One),
    ("HTTP/1.0 without Host", "GET /v1/x HTTP/1.0\r\n{auth}\r\n", 200, Reached::One),
    ("bare LF line ends", "GET /v1/x HTTP/1.1\nHost: a\n{auth}Connection: close\n\n", 200, Reached::One),
    ("chunk extension", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n", 200, Reached::One),
    ("credential in a trailer", "POST /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n{auth}\r\n", 200, Reached::One),
    ("CL+TE (chunking wins, then close)", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 200, Reached::One),
    ("duplicate CL", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, Reached::Nothing),
    ("CL list", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: 5, 6\r\n\r\nhello!", 400, Reached::Nothing),
    ("negative CL", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: -1\r\n\r\n", 400, Reached::Nothing),
    ("signed CL", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Content-Length: +5\r\n\r\nhello", 400, Reached::Nothing),
    ("TE gzip, chunked", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, Reached::Nothing),
    ("TE gzip + TE chunked", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, Reached::Nothing),
    ("TE chunked, chunked", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, Reached::Nothing),
    ("TE chunked not last", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, Reached::Nothing),
    ("TE space before colon", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, Reached::Nothing),
    ("chunk size overflow", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400, Reached::Broken),
    ("bad chunk size", "POST /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, Reached::Broken),
    ("obs-fold", "GET /v1/x HTTP/1.1\r\nHost: a\r\n{auth}X-Folded: a\r\n b\r\n\r\n", 400, Reached::Nothing),
    ("bad header name", "GET /v1/x HTTP/1.1\r\nHost: a\r\n{auth}X(A): b\r\n\r\n", 400, Reached::Nothing),
    ("NUL in a value", "GET /v1/x HTTP/1.1\r\nHost: a\r\n{auth}X-A: a\0b\r\n\r\n", 400, Reached::Nothing),
    ("absolute-form", "GET http://evil.example/v1/x HTTP/1.1\r\nHost: evil.example\r\n{auth}\r\n", 400, Reached::Nothing),
    ("no Host", "GET /v1/x HTTP/1.1\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("two Hosts", "GET /v1/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("Host with a path", "GET /v1/x HTTP/1.1\r\nHost: evil.example/x\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("Host with userinfo", "GET /v1/x HTTP/1.1\r\nHost: user@evil.example\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("Host with a space", "GET /v1/x HTTP/1.1\r\nHost: a b\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("Host with a bad port", "GET /v1/x HTTP/1.1\r\nHost: a:99999\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("asterisk-form GET", "GET * HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("asterisk-form OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n", 400, Reached::Nothing),
    ("TRACE", "TRACE /v1/x HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n", 405, Reached::Nothing),
    ("CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n{auth}\r\n", 405, Reached::Nothing),
];

#[tokio::test]
async fn the_framing_and_host_corpus_over_http1_and_http2_upstreams() {
    let auth = format!("Authorization: Bearer {APP_SECRET}\r\n");
    let mut failures = Vec::new();
    for versions in [HttpVersions::Http2Only, HttpVersions::Http1Only] {
        let h = harness(versions, "").await;
        for (name, request, status, reached) in CORPUS {
            h.wise.clear_requests();
            let request = request.replace("{auth}", &auth);
            let answer = exchange(h.proxy, request.as_bytes()).await;
            let got = status_of(&answer);
            // A broken body is recorded once Wise has seen it fail.
            let wait = usize::from(matches!(reached, Reached::One | Reached::Broken));
            let seen = settled(&h, wait).await;
            if let Err(what) = check_reached(&seen, *reached).and_then(|()| {
                (got == *status)
                    .then_some(())
                    .ok_or_else(|| format!("answered {got}"))
            }) {
                failures.push(format!(
                    "{versions:?} {name} (want {status} {reached:?}): {what}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// An h2c stream: sends `request` with prior knowledge; its status, headers and body.
async fn h2c(
    proxy: SocketAddr,
    request: Request<BoxBody<Bytes, Infallible>>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut sender = common::h2c_connect(proxy).await;
    let response = sender
        .send_request(request)
        .await
        .expect("wisegate answers");
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (parts.status, parts.headers, bytes)
}

/// A body of `data` and then `trailers`.
fn with_trailers(data: &'static [u8], trailers: &[(&str, &str)]) -> BoxBody<Bytes, Infallible> {
    let mut map = HeaderMap::new();
    for (name, value) in trailers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    Full::new(Bytes::from_static(data))
        .with_trailers(Box::pin(async move { Some(Ok(map)) }))
        .boxed()
}

fn empty() -> BoxBody<Bytes, Infallible> {
    Full::new(Bytes::new()).boxed()
}

/// Trailer fields that must never reach Wise: the app's credential and fields wisegate
/// controls or that are forbidden in trailers (RFC 9110 section 6.5.1).
const HOSTILE_TRAILERS: [(&str, &str); 6] = [
    ("authorization", "Bearer app-own-credential-7f3c"),
    ("proxy-authorization", "Basic app-own-credential-7f3c"),
    ("host", "evil.example"),
    ("content-length", "999"),
    ("cookie", "session=app-own-credential-7f3c"),
    ("te", "trailers"),
];

/// Request trailers are dropped, over both app protocols, towards an HTTP/2 upstream
/// (which passed them on as sent) and an HTTP/1.1 one.
#[tokio::test]
async fn request_trailers_never_reach_wise() {
    let trailer_lines: String = HOSTILE_TRAILERS
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    for versions in [HttpVersions::Http2Only, HttpVersions::Http1Only] {
        let h = harness(versions, "").await;
        let chunked = format!(
            "POST /v1/uploads HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: authorization\r\nTE: trailers\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n{trailer_lines}\r\n"
        );
        let answer = exchange(h.proxy, chunked.as_bytes()).await;
        assert_eq!(status_of(&answer), 200, "{versions:?}: {answer}");
        let request = Request::post(h.url("/v1/uploads"))
            .body(with_trailers(b"hello", &HOSTILE_TRAILERS))
            .unwrap();
        let (status, _, body) = h2c(h.proxy, request).await;
        assert_eq!(status, StatusCode::OK, "{versions:?}: {body:?}");
        let seen = h.wise.requests();
        assert_eq!(seen.len(), 2, "{versions:?}");
        for request in &seen {
            assert_eq!(
                request.body, b"hello",
                "{versions:?}: the data arrived whole"
            );
            check_reached(std::slice::from_ref(request), Reached::One)
                .unwrap_or_else(|what| panic!("{versions:?}: {what}"));
        }
    }
}

/// A `Connection: close` trailer (a field HTTP/2 refuses) used to leave the upstream
/// stream open: the app waited `limits.upstream_timeout` for a 504 blaming Wise, and the
/// upstream slot was held all that time. It now ends like any other body.
#[tokio::test]
async fn a_connection_close_trailer_ends_the_request() {
    let limits = "[limits]\nupstream_timeout = \"120s\"\nmax_upstream_requests = 1\n";
    let h = harness(HttpVersions::Http2Only, limits).await;
    let chunked = b"POST /v1/uploads HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nConnection: close\r\n\r\n";
    let mut app = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    app.write_all(chunked).await.unwrap();
    let mut head = vec![0; 512];
    // Far below the 120 s the broken stream would have taken: a hang guard, not a speed
    // bound.
    let read = tokio::time::timeout(Duration::from_secs(30), app.read(&mut head))
        .await
        .expect("the request ended: an answer came");
    let head = String::from_utf8_lossy(&head[..read.unwrap()]).into_owned();
    assert_eq!(status_of(&head), 200, "{head}");
    // The one upstream slot is free again: the next request is served.
    let (next, _) = h.get("/v1/me").await;
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(h.wise.requests()[0].body, b"hello");
}

/// An upstream `101` nobody asked for becomes wisegate's 502 `upstream_protocol_error`,
/// for an HTTP/1.1 app (which got a bare 101 and a close) and an h2c app (which got
/// `:status 101`, a protocol error).
#[tokio::test]
async fn an_unsolicited_101_from_wise_becomes_a_502() {
    let h = harness(HttpVersions::Http1Only, "").await;
    let answer = exchange(
        h.proxy,
        b"GET /test/status/101 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 502, "{answer}");
    assert!(
        answer.contains("x-wisegate-error: upstream_protocol_error"),
        "{answer}"
    );
    let request = Request::get(h.url("/test/status/101"))
        .body(empty())
        .unwrap();
    let (status, headers, body) = h2c(h.proxy, request).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body:?}");
    assert_eq!(headers["x-wisegate-error"], "upstream_protocol_error");
    let body = common::json(&body);
    assert_eq!(body["error"], "upstream_protocol_error");
    assert!(
        h.wise.requests().iter().all(|r| r.status == 101),
        "Wise did answer 101"
    );
}

/// h2c apps meet the same rules as HTTP/1.1 ones: two Host fields and TRACE are refused
/// and reach nothing.
#[tokio::test]
async fn h2c_requests_meet_the_same_rules() {
    let h = harness(HttpVersions::Both, "").await;
    let two_hosts = Request::get(h.url("/v1/x"))
        .header("host", "a")
        .header("host", "b")
        .header("authorization", format!("Bearer {APP_SECRET}"))
        .body(empty())
        .unwrap();
    let (status, headers, _) = h2c(h.proxy, two_hosts).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["x-wisegate-error"], "bad_host");
    let trace = Request::builder()
        .method("TRACE")
        .uri(h.url("/v1/x"))
        .body(empty())
        .unwrap();
    let (status, headers, _) = h2c(h.proxy, trace).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["x-wisegate-error"], "method_refused");
    assert!(h.wise.requests().is_empty(), "{:?}", h.wise.requests());
}

/// One limit on the number of header fields for HTTP/1.1 and h2c: 150 fields (well
/// within limits.max_header_bytes) got 431 over HTTP/1.1 but 200 over h2c.
#[tokio::test]
async fn one_header_field_limit_for_http1_and_h2c() {
    let h = harness(HttpVersions::Both, "").await;
    for count in [90, 150] {
        let fields: String = (0..count).map(|i| format!("x-f{i}: v\r\n")).collect();
        let raw = format!("GET /v1/x HTTP/1.1\r\nHost: a\r\n{fields}Connection: close\r\n\r\n");
        let http1 = status_of(&exchange(h.proxy, raw.as_bytes()).await);
        let mut request = Request::get(h.url("/v1/x"));
        for i in 0..count {
            request = request.header(format!("x-f{i}"), "v");
        }
        let (h2, _, _) = h2c(h.proxy, request.body(empty()).unwrap()).await;
        let want = if count > 100 { 431 } else { 200 };
        assert_eq!((count, http1, h2.as_u16()), (count, want, want));
    }
    assert_eq!(
        h.wise.requests().len(),
        2,
        "only the 90-field requests arrived"
    );
}

/// Two `cookie` fields from an h2c app reach an HTTP/1.1 upstream as one, joined with
/// "; " (RFC 9113 section 8.2.3), not as two lines.
#[tokio::test]
async fn cookies_from_an_h2c_app_are_joined_for_an_http1_upstream() {
    let h = harness(HttpVersions::Http1Only, "").await;
    let request = Request::get(h.url("/v1/x"))
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(empty())
        .unwrap();
    let (status, _, _) = h2c(h.proxy, request).await;
    assert_eq!(status, StatusCode::OK);
    let seen = &h.wise.requests()[0];
    assert_eq!(seen.http_version, "HTTP/1.1");
    assert_eq!(seen.header_all("cookie"), ["a=1; b=2"]);
}

/// wisegate's own errors carry their sentence as `error_description` too, where Wise's
/// errors (and client libraries generated for them) have it; `error`, `message` and the
/// `x-wisegate-error` header stay.
#[tokio::test]
async fn wisegate_errors_carry_error_description() {
    let h = harness(HttpVersions::Both, "").await;
    let answer = exchange(
        h.proxy,
        b"GET http://evil.example/v1/x HTTP/1.1\r\nHost: evil.example\r\n\r\n",
    )
    .await;
    assert!(
        answer.contains("x-wisegate-error: absolute_form_refused"),
        "{answer}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(body["error"], "absolute_form_refused");
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("absolute-form")));
    assert_eq!(body["error_description"], body["message"]);
    let (status, body) = h.admin_get("/nowhere").await;
    assert_eq!(status.status(), StatusCode::NOT_FOUND);
    let body = common::json(&body);
    assert_eq!(body["error_description"], body["message"]);
}
