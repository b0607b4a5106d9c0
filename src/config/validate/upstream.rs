//! The `[upstream]` section (Wise's two hosts, by default those of `environment`, and an
//! optional CA file) and the `[mtls]` section (the client certificate and key).

use super::checker::Checker;
use crate::config::raw::{RawMtls, RawUpstream};
use crate::config::{Environment, Mtls, Upstream};
use std::path::PathBuf;

pub(super) fn upstream(
    c: &mut Checker<'_>,
    raw: &RawUpstream,
    environment: Environment,
) -> Upstream {
    let mtls_url = c.https_url(
        "upstream.mtls_url",
        raw.mtls_url.as_deref(),
        environment.mtls_url(),
    );
    Upstream {
        legacy_url: c.https_url(
            "upstream.legacy_url",
            raw.legacy_url.as_deref(),
            environment.legacy_url(),
        ),
        ca_file: c.path("upstream.ca_file", raw.ca_file.as_deref()),
        mtls_url,
    }
}

pub(super) fn mtls(c: &mut Checker<'_>, raw: Option<RawMtls>) -> Mtls {
    let Some(raw) = c.required(
        "mtls",
        raw,
        "add an [mtls] section with cert_file and key_file",
    ) else {
        return Mtls {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
        };
    };
    let cert = c.required(
        "mtls.cert_file",
        raw.cert_file,
        "the PEM certificate chain Wise issued for your CSR",
    );
    let key = c.required(
        "mtls.key_file",
        raw.key_file,
        "the PEM private key you made the CSR with",
    );
    Mtls {
        cert_file: c
            .path("mtls.cert_file", cert.as_deref())
            .unwrap_or_default(),
        key_file: c.path("mtls.key_file", key.as_deref()).unwrap_or_default(),
    }
}
