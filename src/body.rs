//! The one body type wisegate sends and answers with, and small constructors for it.
//! Streamed bodies (the app's request, Wise's response) and complete ones (wisegate's own
//! answers, token requests) are boxed into the same [`ProxyBody`].

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use std::error::Error as StdError;

/// Any boxed error a body can fail with.
pub type BoxError = Box<dyn StdError + Send + Sync>;
/// Streamed, boxed once per request.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Any streaming body, boxed.
pub fn stream<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}
