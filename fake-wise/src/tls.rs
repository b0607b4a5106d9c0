//! rustls server configurations for the two TLS hosts, with the ring provider passed
//! explicitly: the mTLS host requires and verifies a client certificate, the legacy host
//! asks for none. Both offer the ALPN protocols of [`HttpVersions`] (`h2` and `http/1.1`
//! unless configured otherwise).

use std::io;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::HttpVersions;
use crate::pki::CertKeyPem;

fn invalid(what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {err}"))
}

/// Every certificate in a PEM text.
pub(crate) fn certs_from_pem(pem: &str, what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, e))?;
    if certs.is_empty() {
        return Err(invalid(what, "no certificate in the PEM text"));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn finish(
    builder: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    server: &CertKeyPem,
    versions: HttpVersions,
) -> io::Result<Arc<ServerConfig>> {
    let chain = certs_from_pem(&server.cert_pem, "server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
        .map_err(|e| invalid("server key", e))?;
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| invalid("server certificate and key", e))?;
    config.alpn_protocols = versions.alpn();
    Ok(Arc::new(config))
}

/// The mTLS host: a client certificate issued by `client_ca_pem` is required.
pub(crate) fn mtls_config(
    server: &CertKeyPem,
    client_ca_pem: &str,
    versions: HttpVersions,
) -> io::Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    for ca in certs_from_pem(client_ca_pem, "client CA")? {
        roots.add(ca).map_err(|e| invalid("client CA", e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| invalid("client certificate verifier", e))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| invalid("TLS versions", e))?
        .with_client_cert_verifier(verifier);
    finish(builder, server, versions)
}

/// The legacy host: server authentication only.
pub(crate) fn legacy_config(
    server: &CertKeyPem,
    versions: HttpVersions,
) -> io::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| invalid("TLS versions", e))?
        .with_no_client_auth();
    finish(builder, server, versions)
}
