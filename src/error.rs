//! The one place where wisegate's own failures become HTTP responses:
//! `{"error": "<kind>", "message": "<what failed and what to do>", "error_description":
//! "<the same sentence>"}` plus the header `x-wisegate-error: <kind>`, so the app can tell
//! wisegate's answers from Wise's. `error_description` is where Wise puts its own
//! sentence: a client library generated from Wise's API description reads it there.

use crate::account::UnknownAccount;
use crate::body::{full, ProxyBody};
use crate::body_stall::{BodyStalled, BodyTooSlow};
use crate::token::CredentialError;
use crate::upstream::UpstreamError;
use http::{header, HeaderValue, Response, StatusCode};

/// The header that marks a response as wisegate's own.
pub const ERROR_HEADER: &str = "x-wisegate-error";

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(
        "CONNECT is not supported: wisegate is not an open proxy; send plain HTTP requests to it"
    )]
    ConnectRefused,
    #[error("absolute-form request targets are refused: wisegate is not an open proxy; send origin-form requests (`GET /v1/... HTTP/1.1`)")]
    AbsoluteForm,
    #[error("the request body is larger than limits.max_body_bytes ({limit} bytes)")]
    BodyTooLarge { limit: u64 },
    #[error("the request has both Content-Length and Transfer-Encoding: ambiguous framing is refused; send one of them")]
    AmbiguousFraming,
    #[error("asterisk-form request targets (`* HTTP/1.1`) are refused: Wise's API has no use for them; send origin-form requests (`GET /v1/... HTTP/1.1`)")]
    AsteriskForm,
    #[error("the {method} method is refused: Wise's API has no use for it, and an echo would carry the credential wisegate adds")]
    MethodRefused { method: String },
    #[error("the request's Host header {detail} (RFC 9112 section 3.2): send exactly one Host header with the host (and port) the app connects to")]
    BadHost { detail: &'static str },
    #[error("Transfer-Encoding codings other than a single `chunked` are refused: wisegate forwards bodies as they are and would drop the others; send the body with `Transfer-Encoding: chunked` or a Content-Length")]
    TransferCodingRefused,
    #[error("the request has more than {limit} header fields: send fewer")]
    TooManyHeaderFields { limit: usize },
    #[error("{target} answered {status} (an informational answer or an upgrade) although wisegate asked for none: refused as a protocol error; if it persists, report it to Wise")]
    UpstreamProtocol { target: String, status: u16 },
    #[error("{detail}")]
    BadRequestBody { detail: String },
    #[error(transparent)]
    RequestBodyTimeout(BodyStalled),
    /// The body arrived below `limits.request_body_min_rate`: its own kind, because what
    /// to change differs from a pause (`request_body_timeout`).
    #[error(transparent)]
    RequestBodyTooSlow(BodyTooSlow),
    #[error("the client certificate in {file} has expired: Wise rejects it; rotate it (`wisegate csr`, upload the CSR, replace mtls.cert_file and mtls.key_file)")]
    ClientCertExpired { file: String },
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// Several accounts are configured and the app's token selects none: nothing is
    /// sent, never with another account's credential.
    #[error(transparent)]
    UnknownAccount(#[from] UnknownAccount),
}

/// How wisegate answers one error: the status, the kind carried in the body and in
/// `x-wisegate-error`, and whether the app's connection closes after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub kind: &'static str,
    /// After a refused or broken request the connection's framing cannot be trusted.
    pub closes: bool,
}

/// Closes the app's connection after the answer.
const CLOSE: bool = true;
/// Keeps the app's connection open.
const KEEP: bool = false;

impl ProxyError {
    /// The one table of every error's answer.
    pub fn answer(&self) -> Answer {
        use StatusCode as S;
        let (status, kind, closes) = match self {
            ProxyError::ConnectRefused => (S::METHOD_NOT_ALLOWED, "connect_refused", CLOSE),
            ProxyError::AbsoluteForm => (S::BAD_REQUEST, "absolute_form_refused", CLOSE),
            ProxyError::BodyTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "body_too_large", CLOSE),
            ProxyError::AmbiguousFraming => (S::BAD_REQUEST, "ambiguous_framing", CLOSE),
            ProxyError::AsteriskForm => (S::BAD_REQUEST, "asterisk_form_refused", CLOSE),
            ProxyError::MethodRefused { .. } => (S::METHOD_NOT_ALLOWED, "method_refused", CLOSE),
            ProxyError::BadHost { .. } => (S::BAD_REQUEST, "bad_host", CLOSE),
            ProxyError::TransferCodingRefused => (S::BAD_REQUEST, "transfer_coding_refused", CLOSE),
            ProxyError::TooManyHeaderFields { .. } => (
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "too_many_header_fields",
                CLOSE,
            ),
            ProxyError::UpstreamProtocol { .. } => {
                (S::BAD_GATEWAY, "upstream_protocol_error", KEEP)
            }
            ProxyError::BadRequestBody { .. } => (S::BAD_REQUEST, "bad_request_body", CLOSE),
            ProxyError::RequestBodyTimeout(_) => {
                (S::REQUEST_TIMEOUT, "request_body_timeout", CLOSE)
            }
            ProxyError::RequestBodyTooSlow(_) => {
                (S::REQUEST_TIMEOUT, "request_body_too_slow", CLOSE)
            }
            ProxyError::ClientCertExpired { .. } => {
                (S::BAD_GATEWAY, "client_certificate_expired", KEEP)
            }
            ProxyError::Upstream(error) => {
                let (status, kind) = upstream_answer(error);
                (status, kind, KEEP)
            }
            ProxyError::Credential(error) => (S::SERVICE_UNAVAILABLE, credential_kind(error), KEEP),
            ProxyError::UnknownAccount(_) => (S::UNAUTHORIZED, "unknown_account", CLOSE),
        };
        Answer {
            status,
            kind,
            closes,
        }
    }

    /// The snake_case kind carried in the body and in `x-wisegate-error`.
    pub fn kind(&self) -> &'static str {
        self.answer().kind
    }

    pub fn status(&self) -> StatusCode {
        self.answer().status
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let answer = self.answer();
        let mut response = error_response(answer.status, answer.kind, &self.to_string());
        if answer.closes {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The status and kind of a failure upstream (the app's connection stays open).
fn upstream_answer(error: &UpstreamError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match error {
        UpstreamError::Connect { .. } => (S::BAD_GATEWAY, "upstream_unreachable"),
        UpstreamError::ClientCertRejected { .. } => (S::BAD_GATEWAY, "client_certificate_rejected"),
        UpstreamError::Tls { .. } => (S::BAD_GATEWAY, "upstream_tls_failed"),
        UpstreamError::Timeout { .. } => (S::GATEWAY_TIMEOUT, "upstream_timeout"),
        UpstreamError::Busy { .. } | UpstreamError::ShareBusy { .. } => {
            (S::SERVICE_UNAVAILABLE, "upstream_busy")
        }
        UpstreamError::Other { .. } => (S::BAD_GATEWAY, "upstream_failed"),
        UpstreamError::ConnectionLost { .. } => (S::BAD_GATEWAY, "upstream_connection_lost"),
    }
}

/// The kind of a missing credential (answered 503: the app's request was fine).
fn credential_kind(error: &CredentialError) -> &'static str {
    match error {
        CredentialError::NotAuthorized { .. } => "not_authorized",
        CredentialError::TokenUnavailable { .. } => "token_unavailable",
        CredentialError::ClientTokenUnavailable { .. } => "client_token_unavailable",
        CredentialError::PersonalTokenMissing { .. } => "personal_token_missing",
    }
}

/// A response in wisegate's error format.
pub fn error_response(
    status: StatusCode,
    kind: &'static str,
    message: &str,
) -> Response<ProxyBody> {
    let body = error_body(kind, message).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(ERROR_HEADER, HeaderValue::from_static(kind));
    response
}

/// wisegate's error body: the sentence under `message` and, where Wise's own errors (and
/// the client libraries made for them) have it, under `error_description`.
pub fn error_body(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": kind, "message": message, "error_description": message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_body_carries_the_sentence_as_message_and_as_error_description() {
        let response = ProxyError::AbsoluteForm.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[ERROR_HEADER], "absolute_form_refused");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "absolute_form_refused");
        assert!(body["message"].as_str().unwrap().contains("absolute-form"));
        assert_eq!(body["error_description"], body["message"]);
    }

    #[test]
    fn a_refused_request_closes_the_connection_and_an_upstream_failure_does_not() {
        let refused = ProxyError::BodyTooLarge { limit: 10 }.into_response();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(refused.headers()[header::CONNECTION], "close");
        let timeout = ProxyError::Upstream(UpstreamError::Timeout {
            target: "wise:443".into(),
            seconds: 30,
        });
        assert_eq!(timeout.kind(), "upstream_timeout");
        let response = timeout.into_response();
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert!(response.headers().get(header::CONNECTION).is_none());
    }
}
