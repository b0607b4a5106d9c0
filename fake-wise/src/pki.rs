//! A throw-away public key infrastructure made at run time with rcgen: one self-signed CA
//! that issues server and client certificates for tests, demos and benchmarks.
//!
//! Every function here panics when certificate generation fails: that can only happen
//! through a bug (all inputs are fixed or plain strings), and the callers are tests.
//! The exceptions take input from files ([`TestCa::from_pem`], [`TestCa::sign_csr`], for
//! the `fake-wise` binary's kept folder) and return an error instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use time::{Duration, OffsetDateTime};

/// A certificate (or chain, leaf first) and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct CertKeyPem {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

/// A self-signed certificate authority able to issue certificates.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// What kind of key a leaf certificate gets.
enum KeyKind {
    EcP256,
    Rsa2048,
}

impl TestCa {
    /// A new CA with the given common name, valid from yesterday for ten years.
    pub fn new(common_name: &str) -> TestCa {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "fake-wise test CA");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let key = generate_key(KeyKind::EcP256);
        let cert = params.self_signed(&key).expect("self-sign the test CA");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A CA saved earlier with [`TestCa::cert_pem`] and [`TestCa::key_pem`], so that a
    /// restarted double keeps trusting (and being trusted by) what it issued before.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<TestCa, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(TestCa {
            issuer: Issuer::from_ca_cert_pem(cert_pem, key)?,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA's private key (PKCS#8 PEM): a secret, to be written with mode 0600.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Signs a PEM CSR (RSA or EC, e.g. from `wisegate csr`) as Wise does: a client
    /// certificate (clientAuth) for one year, keeping the CSR's subject but with the CN
    /// replaced by `common_name` (Wise puts the client id there). The CSR's signature is
    /// checked; the extensions it asks for are not granted (a CSR asking for one rcgen
    /// cannot read is refused; `wisegate csr` asks for none). Returns the certificate, PEM.
    pub fn sign_csr(&self, csr_pem: &str, common_name: &str) -> Result<String, rcgen::Error> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = leaf_params(now_plus_days(365));
        params.distinguished_name = csr.params.distinguished_name.clone();
        params.distinguished_name.remove(DnType::CommonName);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.params = params;
        Ok(csr.signed_by(&self.issuer)?.pem())
    }

    /// A server certificate for `localhost`, `127.0.0.1` and `::1` (EC P-256).
    pub fn server_cert(&self) -> CertKeyPem {
        let mut params = leaf_params(now_plus_days(365));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().expect("valid DNS name")),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, KeyKind::EcP256)
    }

    /// A client certificate with subject `O=org, CN=fake-client` (EC P-256).
    pub fn client_cert(&self, org: &str) -> CertKeyPem {
        self.issue(client_params(org, now_plus_days(365)), KeyKind::EcP256)
    }

    /// A client certificate like [`TestCa::client_cert`] with an RSA 2048 key.
    ///
    /// RSA key generation runs in pure Rust and is slow in unoptimised builds (about a
    /// second or more): call it only where RSA matters.
    pub fn client_cert_rsa(&self, org: &str) -> CertKeyPem {
        self.issue(client_params(org, now_plus_days(365)), KeyKind::Rsa2048)
    }

    /// A client certificate like [`TestCa::client_cert`] whose validity ended yesterday.
    pub fn client_cert_expired(&self, org: &str) -> CertKeyPem {
        let mut params = client_params(org, now_plus_days(-1));
        params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        self.issue(params, KeyKind::EcP256)
    }

    fn issue(&self, params: CertificateParams, kind: KeyKind) -> CertKeyPem {
        let key = generate_key(kind);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a test certificate");
        CertKeyPem {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn now_plus_days(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(days)
}

fn leaf_params(not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params
}

fn client_params(org: &str, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = leaf_params(not_after);
    params
        .distinguished_name
        .push(DnType::OrganizationName, org);
    params
        .distinguished_name
        .push(DnType::CommonName, "fake-client");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn generate_key(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::EcP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("EC P-256 key"),
        KeyKind::Rsa2048 => {
            let mut rng = rand_core_06::OsRng;
            let key = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA 2048 key");
            let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM");
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("RSA key pair")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    #[test]
    fn issues_parseable_pem() {
        let ca = TestCa::new("test ca");
        for ck in [
            ca.server_cert(),
            ca.client_cert("Acme"),
            ca.client_cert_expired("Acme"),
        ] {
            assert_eq!(
                CertificateDer::pem_slice_iter(ck.cert_pem.as_bytes()).count(),
                1
            );
            PrivateKeyDer::from_pem_slice(ck.key_pem.as_bytes()).unwrap();
        }
        CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap();
    }

    #[test]
    fn a_reloaded_ca_signs_csrs_its_old_certificate_verifies() {
        let ca = TestCa::new("test ca");
        let again = TestCa::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Acme");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let cert = again.sign_csr(&csr, "wisegate-test").unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.into(),
            rustls::crypto::ring::default_provider().into(),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&der, &[], rustls_pki_types::UnixTime::now())
            .unwrap();
        assert!(again.sign_csr("not a csr", "x").is_err());
    }

    #[test]
    fn rsa_client_cert() {
        let ca = TestCa::new("test ca");
        let ck = ca.client_cert_rsa("Acme");
        assert!(ck.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        PrivateKeyDer::from_pem_slice(ck.key_pem.as_bytes()).unwrap();
    }
}
