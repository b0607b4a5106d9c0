//! TLS material for the upstream side: PEM loading (through `rustls-pki-types`), the
//! client identity (certificate chain + key, checked to match and to be in date), the
//! trust store (public roots plus `upstream.ca_file`) and the rustls `ClientConfig`.
//!
//! The client certificate is served by [`ClientCertResolver`], which holds the current
//! identity in an `ArcSwap`: rotating the certificate swaps one pointer and rebuilds
//! nothing else.

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::certificate::X509Certificate;

/// What can go wrong loading TLS material; each names the file(s) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file} holds no PEM certificate (expected \"-----BEGIN CERTIFICATE-----\")")]
    NoCertificate { file: PathBuf },
    #[error("{file} holds no usable PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC): {message}")]
    NoKey { file: PathBuf, message: String },
    #[error("the private key in {key_file} does not match the certificate in {cert_file}: use the key you made the CSR with")]
    KeyMismatch {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
    #[error("the key in {file} cannot sign TLS handshakes: {message}")]
    UnsupportedKey { file: PathBuf, message: String },
    #[error("the certificate in {file} cannot be parsed: {message}")]
    BadCertificate { file: PathBuf, message: String },
    #[error("the certificate in {file} cannot be used as a TLS client certificate: {message}")]
    UnusableCertificate { file: PathBuf, message: String },
    #[error("the client certificate in {file} expired {days} days ago: get a new one from Wise's Developer Hub (`wisegate csr`)")]
    Expired { file: PathBuf, days: u64 },
    #[error("{file} adds no trust anchor: {message}")]
    BadCa { file: PathBuf, message: String },
}

/// The crypto provider every TLS config of wisegate uses (ring), chosen explicitly so
/// that no process-wide default is needed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A loaded client identity: what the resolver presents, plus facts for readiness.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub key: Arc<CertifiedKey>,
    /// End of the leaf certificate's validity.
    pub not_after: SystemTime,
    pub cert_file: PathBuf,
}

impl ClientIdentity {
    /// Loads `cert_file` + `key_file`, refusing a key that does not match. Expiry is
    /// [`ClientIdentity::check_current`]'s business: a running wisegate whose certificate
    /// expired must still answer, with 502s that say so.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ClientIdentity, TlsError> {
        let chain = load_certificates(cert_file).map_err(|error| match error {
            TlsError::Read { file, message } => TlsError::Read {
                file,
                message: format!(
                    "{message}; mtls.cert_file names the PEM certificate Wise issued for your CSR"
                ),
            },
            other => other,
        })?;
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|error| match error {
            rustls::pki_types::pem::Error::Io(io) => TlsError::Read {
                file: key_file.to_owned(),
                message: format!("{io}; mtls.key_file names the private key you made the CSR with"),
            },
            other => TlsError::NoKey {
                file: key_file.to_owned(),
                message: other.to_string(),
            },
        })?;
        let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).map_err(|error| {
            TlsError::BadCertificate {
                file: cert_file.to_owned(),
                message: error.to_string(),
            }
        })?;
        let not_after = not_after(&leaf);
        let signing_key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|error| TlsError::UnsupportedKey {
                file: key_file.to_owned(),
                message: error.to_string(),
            })?;
        // The public keys (SubjectPublicKeyInfo) compared here rather than by rustls'
        // `keys_match`, which also needs webpki to accept the certificate and so called
        // a v1 certificate with the very same key a mismatch.
        if let Some(spki) = signing_key.public_key() {
            if spki.as_ref() != leaf.public_key().raw {
                return Err(TlsError::KeyMismatch {
                    cert_file: cert_file.to_owned(),
                    key_file: key_file.to_owned(),
                });
            }
        }
        usable_as_client_certificate(cert_file, &chain[0], &leaf)?;
        let certified = CertifiedKey::new(chain, signing_key);
        Ok(ClientIdentity {
            key: Arc::new(certified),
            not_after,
            cert_file: cert_file.to_owned(),
        })
    }

    /// Refuses a certificate that has expired.
    pub fn check_current(&self) -> Result<(), TlsError> {
        match SystemTime::now().duration_since(self.not_after) {
            Ok(ago) => Err(TlsError::Expired {
                file: self.cert_file.clone(),
                days: ago.as_secs() / 86_400,
            }),
            Err(_) => Ok(()),
        }
    }

    /// Loads and refuses an expired certificate: for new material (reload, check).
    pub fn load_current(cert_file: &Path, key_file: &Path) -> Result<ClientIdentity, TlsError> {
        let identity = ClientIdentity::load(cert_file, key_file)?;
        identity.check_current()?;
        Ok(identity)
    }

    /// The file and the expiry, for people.
    pub fn describe(&self) -> String {
        let expires = humantime::format_rfc3339_seconds(self.not_after);
        format!("{} (expires {expires})", self.cert_file.display())
    }

    /// Seconds since the epoch at which the certificate expires (for metrics).
    pub fn not_after_unix(&self) -> u64 {
        crate::timestamps::unix_seconds(self.not_after)
    }
}

/// Every certificate in a PEM file, in order; an empty file is an error.
pub fn load_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_error = |message: String| TlsError::Read {
        file: file.to_owned(),
        message,
    };
    let certificates = CertificateDer::pem_file_iter(file)
        .map_err(|error| read_error(error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate {
            file: file.to_owned(),
            message: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            file: file.to_owned(),
        });
    }
    Ok(certificates)
}

fn not_after(leaf: &X509Certificate<'_>) -> SystemTime {
    let seconds = leaf.validity().not_after.timestamp();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
}

/// Refuses a leaf certificate that a webpki-verifying server (rustls', and so
/// fake-wise's) rejects in the handshake whatever the key: above all an X.509 v1
/// certificate, which is what `openssl x509 -req` makes without extensions.
fn usable_as_client_certificate(
    file: &Path,
    der: &CertificateDer<'_>,
    leaf: &X509Certificate<'_>,
) -> Result<(), TlsError> {
    let Err(error) = rustls::server::ParsedCertificate::try_from(der) else {
        return Ok(());
    };
    let version = leaf.version().0 + 1;
    let message = if version < 3 {
        format!("it is an X.509 v{version} certificate, and TLS servers that verify with webpki (as rustls does) refuse anything but v3 ({error}). The key matches: have the CSR signed again as a v3 certificate (the one Wise's Developer Hub issues is; with openssl, `x509 -req` with `-extfile` or `-copy_extensions copy`)")
    } else {
        format!("{error}: use the certificate Wise issued for your CSR")
    };
    Err(TlsError::UnusableCertificate {
        file: file.to_owned(),
        message,
    })
}

/// Public web roots plus, when given, the certificates in `ca_file` (Wise's CA).
pub fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = ca_file {
        for certificate in load_certificates(file)? {
            roots.add(certificate).map_err(|error| TlsError::BadCa {
                file: file.to_owned(),
                message: error.to_string(),
            })?;
        }
    }
    Ok(roots)
}

/// Presents the current client identity; [`ClientCertResolver::replace`] rotates it.
#[derive(Debug)]
pub struct ClientCertResolver {
    current: ArcSwap<ClientIdentity>,
    /// Where a rotation is reported (`/status`'s time line).
    pub events: crate::history::EventSink,
}

impl ClientCertResolver {
    pub fn new(identity: ClientIdentity) -> Arc<ClientCertResolver> {
        Arc::new(ClientCertResolver {
            current: ArcSwap::from_pointee(identity),
            events: Default::default(),
        })
    }

    pub fn current(&self) -> Arc<ClientIdentity> {
        self.current.load_full()
    }

    pub fn replace(&self, identity: ClientIdentity) {
        self.events.certificate_rotation(&identity.describe());
        self.current.store(Arc::new(identity));
    }
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS 1.2/1.3 client config; with a resolver it presents the client certificate.
/// ALPN is set by the connector (`h2`, `http/1.1`).
pub fn client_config(
    roots: RootCertStore,
    resolver: Option<Arc<ClientCertResolver>>,
) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots);
    match resolver {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    }
}
