//! Hostile and oversized requests: ambiguous framing, oversized headers, URIs and bodies
//! are refused with the right status and never reach Wise; a stalled body gets 408.

use crate::common;

use common::Harness;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes; returns everything the server sent before closing (or 5 s passed).
async fn exchange(h: &Harness, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(h.proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let h = Harness::builder().start().await;
    let cases: [(&[u8], &str); 3] = [
        (b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "two lengths"),
        (b"POST /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"POST /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n", "chunked not last"),
    ];
    for (request, what) in cases {
        // read_to_end returns: the connection was closed after the answer.
        let answer = exchange(&h, request).await;
        assert!(
            status_line(&answer).starts_with("HTTP/1.1 400"),
            "{what}: {answer}"
        );
    }
    assert!(
        h.wise.requests().iter().all(|r| r.status != 200),
        "nothing was forwarded whole"
    );
}

/// Content-Length with Transfer-Encoding: hyper (RFC 9112 section 6.3) drops the length
/// before wisegate sees the request, frames the body by the chunking and closes the
/// connection after answering, so nothing can be smuggled behind the body.
#[tokio::test]
async fn length_with_chunking_cannot_smuggle_a_second_request() {
    let h = Harness::builder().start().await;
    let smuggle = b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let answer = exchange(&h, smuggle).await;
    assert_eq!(
        answer.matches("HTTP/1.1 ").count(),
        1,
        "one answer, then the connection closed: {answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    let seen = h.wise.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body_len, 5, "the body framed by its chunks");
    assert!(seen.iter().all(|r| !r.path_and_query.contains("smuggled")));
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let limits = "[limits]\nmax_header_bytes = 16384\nmax_body_bytes = 100000\n";
    let h = Harness::builder().extra(limits).start().await;
    let big_header = format!(
        "GET /v1/x HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(status_line(&exchange(&h, big_header.as_bytes()).await).starts_with("HTTP/1.1 431"));
    let long_uri = format!("GET /v1/{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(70_000));
    let answer = exchange(&h, long_uri.as_bytes()).await;
    assert!(
        ["HTTP/1.1 414", "HTTP/1.1 431"]
            .iter()
            .any(|s| status_line(&answer).starts_with(s)),
        "{answer}"
    );

    let declared = b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100001\r\n\r\n";
    let answer = exchange(&h, declared).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("x-wisegate-error: body_too_large"),
        "{answer}"
    );

    // Chunked past the limit: refused once the limit is crossed, without reading the rest.
    let mut chunked =
        b"POST /v1/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..30 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 10_000, "b".repeat(10_000)).as_bytes());
    }
    let answer = exchange(&h, &chunked).await;
    assert!(status_line(&answer).starts_with("HTTP/1.1 413"), "{answer}");
    assert!(h.wise.requests().iter().all(|r| r.body_len <= 100_000));
}

#[tokio::test]
async fn nothing_a_client_sends_changes_the_upstream_host() {
    let h = Harness::builder().start().await;
    let tricks: [&[u8]; 3] = [
        b"GET /v1/x HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n",
        b"GET //evil.example/v1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /v1/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ];
    for trick in tricks {
        exchange(&h, trick).await;
    }
    let seen = h.wise.requests();
    assert_eq!(seen.len(), 3, "all went to the configured mTLS host");
    assert_eq!(
        seen[1].path_and_query, "//evil.example/v1/x",
        "a path stays a path"
    );
}

fn assert_request_body_timeout(answer: &str) {
    assert!(status_line(answer).starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("x-wisegate-error: request_body_timeout"),
        "{answer}"
    );
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(
        answer.contains("limits.request_body_timeout") && answer.contains("300ms"),
        "the message names the key and the limit: {answer}"
    );
}

#[tokio::test]
async fn a_stalled_small_body_gets_408_and_never_reaches_wise() {
    let h = Harness::builder()
        .extra("[limits]\nrequest_body_timeout = \"300ms\"\n")
        .start()
        .await;
    // 10 of 100 announced bytes: a body kept for a replay, read before anything is sent.
    let answer = common::send_and_wait_for_close(
        h.proxy,
        b"POST /v1/transfers HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await;
    assert_request_body_timeout(&answer);
    assert!(h.wise.requests().is_empty(), "{:?}", h.wise.requests());
}

#[tokio::test]
async fn a_stalled_streamed_body_gets_408_and_wise_sees_it_break_off() {
    let h = Harness::builder()
        .extra("[limits]\nrequest_body_timeout = \"300ms\"\n")
        .start()
        .await;
    // Chunked: streamed to Wise as it comes; one chunk, then nothing.
    let answer = common::send_and_wait_for_close(
        h.proxy,
        b"POST /v1/transfers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )
    .await;
    assert_request_body_timeout(&answer);
    // Wise got the start of the body, then saw it break off (fake-wise answers 400).
    let broke_off = common::eventually(Duration::from_secs(10), async || {
        h.wise
            .requests()
            .iter()
            .any(|r| r.status == 400 && r.body_len == 5)
    })
    .await;
    assert!(broke_off, "{:?}", h.wise.requests());
    assert!(
        h.wise.requests().iter().all(|r| r.status != 200),
        "Wise never saw a complete request: {:?}",
        h.wise.requests()
    );
}
