//! The one place where wisegate's own failures become HTTP responses:
//! `{"error": "<kind>", "message": "<what failed and what to do>", "error_description":
//! "<the same sentence>"}` plus the header `x-wisegate-error: <kind>`, so the app can tell
//! wisegate's answers from Wise's. `error_description` is where Wise puts its own
//! sentence: a client library generated from Wise's API description reads it there.

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
}

impl ProxyError {
    /// The snake_case kind carried in the body and in `x-wisegate-error`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::ConnectRefused => "connect_refused",
            ProxyError::AbsoluteForm => "absolute_form_refused",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::AmbiguousFraming => "ambiguous_framing",
            ProxyError::AsteriskForm => "asterisk_form_refused",
            ProxyError::MethodRefused { .. } => "method_refused",
            ProxyError::BadHost { .. } => "bad_host",
            ProxyError::TransferCodingRefused => "transfer_coding_refused",
            ProxyError::TooManyHeaderFields { .. } => "too_many_header_fields",
            ProxyError::UpstreamProtocol { .. } => "upstream_protocol_error",
            ProxyError::BadRequestBody { .. } => "bad_request_body",
            ProxyError::RequestBodyTimeout(_) => "request_body_timeout",
            ProxyError::RequestBodyTooSlow(_) => "request_body_too_slow",
            ProxyError::ClientCertExpired { .. } => "client_certificate_expired",
            ProxyError::Upstream(error) => match error {
                UpstreamError::Connect { .. } => "upstream_unreachable",
                UpstreamError::ClientCertRejected { .. } => "client_certificate_rejected",
                UpstreamError::Tls { .. } => "upstream_tls_failed",
                UpstreamError::Timeout { .. } => "upstream_timeout",
                UpstreamError::Busy { .. } | UpstreamError::ShareBusy { .. } => "upstream_busy",
                UpstreamError::Other { .. } => "upstream_failed",
                UpstreamError::ConnectionLost { .. } => "upstream_connection_lost",
            },
            ProxyError::Credential(error) => match error {
                CredentialError::NotAuthorized { .. } => "not_authorized",
                CredentialError::TokenUnavailable { .. } => "token_unavailable",
                CredentialError::ClientTokenUnavailable { .. } => "client_token_unavailable",
                CredentialError::PersonalTokenMissing { .. } => "personal_token_missing",
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::ConnectRefused | ProxyError::MethodRefused { .. } => {
                StatusCode::METHOD_NOT_ALLOWED
            }
            ProxyError::TooManyHeaderFields { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::UpstreamProtocol { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::AbsoluteForm
            | ProxyError::AsteriskForm
            | ProxyError::BadHost { .. }
            | ProxyError::TransferCodingRefused
            | ProxyError::AmbiguousFraming
            | ProxyError::BadRequestBody { .. } => StatusCode::BAD_REQUEST,
            ProxyError::RequestBodyTimeout(_) | ProxyError::RequestBodyTooSlow(_) => {
                StatusCode::REQUEST_TIMEOUT
            }
            ProxyError::ClientCertExpired { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(UpstreamError::Busy { .. } | UpstreamError::ShareBusy { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::Credential(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn into_response(self) -> Response<ProxyBody> {
        let mut response = error_response(self.status(), self.kind(), &self.to_string());
        // After a refused or broken request the connection's framing cannot be trusted.
        if self.closes_connection() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::AbsoluteForm
                | ProxyError::ConnectRefused
                | ProxyError::AsteriskForm
                | ProxyError::MethodRefused { .. }
                | ProxyError::BadHost { .. }
                | ProxyError::TransferCodingRefused
                | ProxyError::TooManyHeaderFields { .. }
                | ProxyError::AmbiguousFraming
                | ProxyError::BadRequestBody { .. }
                | ProxyError::RequestBodyTimeout(_)
                | ProxyError::RequestBodyTooSlow(_)
                | ProxyError::BodyTooLarge { .. }
        )
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
}
