//! Why a request could not be completed upstream: the client's error and its cause
//! chain classified into an [`UpstreamError`] whose message says what failed, where, and
//! what to check (a rejected client certificate, an untrusted server certificate, a
//! broken connection, ...).

use rustls::AlertDescription;
use std::error::Error as StdError;

/// Why a request could not be completed upstream. `target` is `host:port`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream could not be reached at {target}: {detail}; check upstream.mtls_url / legacy_url, DNS and that egress to it is allowed")]
    Connect { target: String, detail: String },
    #[error("{target} rejected our client certificate ({alert}): check mtls.cert_file is the certificate Wise issued for this client and that it is still active in the Developer Hub")]
    ClientCertRejected { target: String, alert: String },
    #[error("the TLS handshake with {target} failed: {detail}")]
    Tls { target: String, detail: String },
    #[error("{target} did not answer within {seconds} s (limits.upstream_timeout)")]
    Timeout { target: String, seconds: u64 },
    #[error("all {limit} request slots to {target} stayed busy for {seconds} s (limits.max_upstream_requests, limits.upstream_timeout): the upstream is slow or the app sends more at once than the limit allows: raise limits.max_upstream_requests or lower the app's concurrency")]
    Busy {
        target: String,
        limit: usize,
        seconds: u64,
    },
    /// The request's app connection (or client address) held its share of the slots.
    #[error("{holder} already held its {limit} request slots to {target} ({key}) and none of them came free within {seconds} s; the other slots are kept for other connections and clients: send less at once from there, or raise {key}")]
    ShareBusy {
        target: String,
        /// "this app connection" or "client address <ip>".
        holder: String,
        key: &'static str,
        limit: usize,
        seconds: u64,
    },
    #[error("the exchange with {target} failed: {detail}")]
    Other { target: String, detail: String },
    /// The connection broke (reset, broken pipe, closed) before any answer: the request
    /// may or may not have been processed.
    #[error("the connection to {target} broke before an answer ({detail}); on the mTLS host right after connecting this usually means it rejected our client certificate: check mtls.cert_file")]
    ConnectionLost { target: String, detail: String },
}

/// What went wrong, from the client's error and its causes.
pub fn classify(target: String, error: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut causes = Vec::new();
    collect_causes(error, &mut causes);
    for cause in &causes {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return classify_tls(target, tls);
        }
        // Canceled: the connection closed before the request was written, so nothing
        // reached the upstream. On an mTLS host right after the handshake this is
        // how a rejected client certificate shows when the alert itself is lost.
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return UpstreamError::Connect {
                detail: "the connection closed before the request was sent (an mTLS host does this when it rejected our client certificate: check mtls.cert_file)".into(),
                target,
            };
        }
    }
    let detail = causes
        .last()
        .map_or_else(|| error.to_string(), |cause| cause.to_string());
    // h2 keeps only the text of the I/O errors it sees, so an alert received on an
    // HTTP/2 connection (TLS 1.3 reports client-certificate verdicts after the
    // handshake) is recognised by rustls' wording.
    if let Some(alert) = detail.split("received fatal alert: ").nth(1) {
        if CLIENT_CERT_ALERTS
            .iter()
            .any(|known| format!("{known:?}") == alert.trim())
        {
            return UpstreamError::ClientCertRejected {
                target,
                alert: format!("TLS alert {}", alert.trim()),
            };
        }
    }
    let lost = causes.iter().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
    }) || ["broken pipe", "connection reset", "connection closed"]
        .iter()
        .any(|words| detail.contains(words));
    if error.is_connect() {
        UpstreamError::Connect { target, detail }
    } else if lost {
        UpstreamError::ConnectionLost { target, detail }
    } else {
        UpstreamError::Other { target, detail }
    }
}

/// Alerts a server sends when it does not accept the client certificate.
const CLIENT_CERT_ALERTS: [AlertDescription; 8] = [
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnknownCA,
    AlertDescription::CertificateUnknown,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateRevoked,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::AccessDenied,
];

fn classify_tls(target: String, error: &rustls::Error) -> UpstreamError {
    match error {
        rustls::Error::AlertReceived(alert) if CLIENT_CERT_ALERTS.contains(alert) => UpstreamError::ClientCertRejected {
            target,
            alert: format!("TLS alert {alert:?}"),
        },
        rustls::Error::InvalidCertificate(reason) => UpstreamError::Tls {
            detail: format!(
                "the server certificate of {target} is not trusted ({reason:?}); if Wise gave you a CA certificate, name it in upstream.ca_file"
            ),
            target,
        },
        other => UpstreamError::Tls {
            target,
            detail: other.to_string(),
        },
    }
}

/// Flattens an error's cause chain, looking inside `io::Error`s, whose `source()` skips
/// the error they wrap (where rustls puts its own).
fn collect_causes<'a>(
    error: &'a (dyn StdError + 'static),
    out: &mut Vec<&'a (dyn StdError + 'static)>,
) {
    let mut next = Some(error);
    while let Some(current) = next {
        out.push(current);
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                collect_causes(inner, out);
                return;
            }
        }
        next = current.source();
    }
}
