//! Automatic fallback for OAuth routes with `fallback = true`: when nothing could be sent
//! on the mTLS side (connection refused, TLS handshake or client certificate rejected, no
//! usable OAuth token), the request goes the personal-token way instead, whatever its
//! method, since nothing reached Wise. The route's breaker
//! ([`super::migration::Breakers`]) sends it straight to the legacy path for a cool-down
//! after repeated failures.

use crate::error::ProxyError;
use crate::token::CredentialError;
use crate::upstream::UpstreamError;

/// Why a request may go the personal-token way (the `reason` label), or `None` when it
/// must not. A connection that broke before any answer is ambiguous (the request may
/// have been processed; with TLS 1.3 it is also how a rejected client certificate can
/// show), so only idempotent requests fall back on it.
pub fn reason(error: &ProxyError, idempotent: bool) -> Option<&'static str> {
    match error {
        ProxyError::Upstream(UpstreamError::ConnectionLost { .. }) if idempotent => {
            Some("connection_lost")
        }
        ProxyError::Upstream(UpstreamError::Connect { .. }) => Some("connect"),
        ProxyError::Upstream(UpstreamError::Tls { .. }) => Some("tls"),
        ProxyError::Upstream(UpstreamError::ClientCertRejected { .. })
        | ProxyError::ClientCertExpired { .. } => Some("client_certificate"),
        ProxyError::Credential(
            CredentialError::NotAuthorized { .. }
            | CredentialError::TokenUnavailable { .. }
            | CredentialError::ClientTokenUnavailable { .. },
        ) => Some("token"),
        _ => None,
    }
}
