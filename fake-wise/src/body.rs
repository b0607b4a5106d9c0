//! Bodies: the one response body type, response builders, the streamed download body,
//! and streaming request-body hashing (length + SHA-256 without buffering).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};

use crate::state::hex;

/// The body of every response the double sends.
pub(crate) type RespBody = BoxBody<Bytes, Infallible>;

/// The size of each chunk of a download.
const CHUNK: usize = 64 * 1024;

/// A response with a body and a content type.
pub(crate) fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<RespBody> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<RespBody> {
    with_body(status, "application/json", value.to_string())
}

/// An OAuth-style error: `{"error": .., "error_description": ..}`.
pub(crate) fn oauth_error(
    status: StatusCode,
    error: &str,
    description: &str,
) -> Response<RespBody> {
    json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<RespBody> {
    with_body(status, "text/plain; charset=utf-8", body)
}

/// A response with no body.
pub(crate) fn empty(status: StatusCode) -> Response<RespBody> {
    let mut resp = Response::new(Empty::new().boxed());
    *resp.status_mut() = status;
    resp
}

/// A download of `len` bytes: byte `i` is `(i % 65536) % 251`.
pub(crate) fn download(len: u64) -> Response<RespBody> {
    streamed(len, len, false)
}

/// `/test/stall?bytes=N`: announces 2N bytes, sends N, then nothing more, ever (a
/// server stuck in the middle of its answer).
pub(crate) fn stall(len: u64) -> Response<RespBody> {
    streamed(len, len * 2, true)
}

/// `len` bytes announced as `announced`, then the end or, with `stall`, nothing ever.
fn streamed(len: u64, announced: u64, stall: bool) -> Response<RespBody> {
    let body = Download {
        remaining: len,
        stall,
    };
    let mut resp = Response::new(body.boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    resp
}

/// The one 64 KiB block every download chunk is cut from (no allocation per chunk).
fn block() -> &'static Bytes {
    static BLOCK: OnceLock<Bytes> = OnceLock::new();
    BLOCK.get_or_init(|| (0..CHUNK).map(|i| (i % 251) as u8).collect())
}

/// Streams `remaining` bytes in 64 KiB chunks, then ends, or with `stall` never ends (it
/// is never woken: the body goes only when the exchange is dropped).
struct Download {
    remaining: u64,
    stall: bool,
}

impl Body for Download {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        let n = usize::try_from(self.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(block().slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && !self.stall
    }

    fn size_hint(&self) -> SizeHint {
        if self.stall {
            SizeHint::default()
        } else {
            SizeHint::with_exact(self.remaining)
        }
    }
}

/// Length and SHA-256 of a body, its first bytes and its trailers.
pub(crate) struct BodyDigest {
    pub len: u64,
    pub sha256: String,
    /// The first `keep` bytes.
    pub kept: Vec<u8>,
    /// Every trailer field that came, in order.
    pub trailers: HeaderMap,
}

/// Reads a body to its end frame by frame, hashing as it goes and keeping its first
/// `keep` bytes and its trailers. `Err` when the body broke off; what was read so far is
/// still counted in the digest inside.
pub(crate) async fn digest<B>(mut body: B, keep: usize) -> Result<BodyDigest, BodyDigest>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut len = 0u64;
    let mut kept = Vec::new();
    let mut trailers = HeaderMap::new();
    let ok = loop {
        match body.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    len += data.len() as u64;
                    ctx.update(&data);
                    let room = keep.saturating_sub(kept.len()).min(data.len());
                    kept.extend_from_slice(&data[..room]);
                }
                Err(frame) => {
                    if let Ok(more) = frame.into_trailers() {
                        for (name, value) in &more {
                            trailers.append(name, value.clone());
                        }
                    }
                }
            },
        }
    };
    let d = BodyDigest {
        len,
        sha256: hex(ctx.finish().as_ref()),
        kept,
        trailers,
    };
    if ok {
        Ok(d)
    } else {
        Err(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trailers_are_kept_in_order() {
        let mut trailers = HeaderMap::new();
        trailers.append("x-one", HeaderValue::from_static("1"));
        trailers.append("x-one", HeaderValue::from_static("2"));
        let body = Full::new(Bytes::from_static(b"abc"))
            .with_trailers(Box::pin(async move { Some(Ok::<_, Infallible>(trailers)) }));
        let d = digest(body, 64).await.ok().unwrap();
        assert_eq!(d.kept, b"abc");
        let values: Vec<_> = d.trailers.get_all("x-one").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[tokio::test]
    async fn download_has_exact_length() {
        let body = download(200_000).into_body();
        let d = digest(body, 10).await.ok().unwrap();
        assert_eq!(d.len, 200_000);
        assert_eq!(
            d.kept,
            (0..10).collect::<Vec<u8>>(),
            "the first bytes, no more"
        );
    }

    #[tokio::test]
    async fn digest_of_empty_body() {
        let d = digest(Empty::<Bytes>::new(), 10).await.ok().unwrap();
        assert_eq!(
            d.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
