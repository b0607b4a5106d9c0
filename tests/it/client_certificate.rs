//! The client certificate as wisegate loads it, with certificates openssl makes now: a
//! v1 certificate whose key matches is reported as a certificate TLS servers refuse, not
//! as the wrong key; a wrong key is still a mismatch; a v3 one loads. And what a
//! webpki-verifying server (fake-wise, on rustls) does with each in a real handshake.

use fake_wise::{FakeWise, FakeWiseConfig, TestCa};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wisegate::tls::{ClientIdentity, TlsError};

fn openssl(dir: &Path, args: &[&str]) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A client CA, one key with a v1 and a v3 certificate for it, and another key.
fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        p,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=test client CA",
                "-days",
                "30",
            ],
        ]
        .concat(),
    );
    openssl(
        p,
        &[
            &["req", "-new"][..],
            &ec,
            &[
                "-keyout",
                "client.key",
                "-out",
                "client.csr",
                "-subj",
                "/O=Acme",
            ],
        ]
        .concat(),
    );
    let sign = [
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-days",
        "30",
    ];
    // No extensions: openssl makes an X.509 v1 certificate.
    openssl(
        p,
        &[&sign[..], &["-set_serial", "1", "-out", "v1.crt"]].concat(),
    );
    std::fs::write(
        p.join("v3.ext"),
        "basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nextendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    openssl(
        p,
        &[
            &sign[..],
            &["-set_serial", "2", "-extfile", "v3.ext", "-out", "v3.crt"],
        ]
        .concat(),
    );
    openssl(
        p,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "other.key",
        ],
    );
    let text = String::from_utf8(
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in", "v1.crt"])
            .current_dir(p)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(text.contains("Version: 1 (0x0)"), "{text}");
    dir
}

#[test]
fn a_v1_certificate_with_its_own_key_is_called_unusable_not_the_wrong_key() {
    let dir = pki();
    let p = dir.path();
    let error = ClientIdentity::load(&p.join("v1.crt"), &p.join("client.key")).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, TlsError::UnusableCertificate { .. }),
        "{message}"
    );
    assert!(message.contains("v1.crt"), "{message}");
    assert!(message.contains("X.509 v1 certificate"), "{message}");
    assert!(message.contains("The key matches"), "{message}");
    assert!(!message.contains("does not match"), "{message}");

    // Another key is still the wrong key, v1 or v3; the v3 certificate loads.
    for cert in ["v1.crt", "v3.crt"] {
        let error = ClientIdentity::load(&p.join(cert), &p.join("other.key")).unwrap_err();
        assert!(
            matches!(error, TlsError::KeyMismatch { .. }),
            "{cert}: {error}"
        );
    }
    ClientIdentity::load(&p.join("v3.crt"), &p.join("client.key")).unwrap();
}

/// Why a v1 certificate is refused at load: a webpki-verifying server rejects it in the
/// handshake, while it accepts the v3 certificate for the same key.
#[tokio::test]
async fn a_webpki_server_refuses_the_v1_certificate_in_the_handshake() {
    let dir = pki();
    let p = dir.path();
    let server_ca = TestCa::new("test server CA");
    let client_ca = std::fs::read_to_string(p.join("ca.crt")).unwrap();
    let wise = FakeWise::start(
        FakeWiseConfig::default(),
        &server_ca.server_cert(),
        &client_ca,
    )
    .await
    .unwrap();
    let uri: http::Uri = wise.mtls_url().parse().unwrap();
    let address = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap());
    let answer_v3 = exchange(p, "v3.crt", &server_ca, &address).await;
    assert!(
        answer_v3
            .as_ref()
            .is_ok_and(|text| text.starts_with("HTTP/1.1 ")),
        "{answer_v3:?}"
    );
    let answer_v1 = exchange(p, "v1.crt", &server_ca, &address).await;
    // The server's alert: certificate_unknown.
    let refused = answer_v1.expect_err("the server answered a v1 client certificate");
    assert!(
        refused.to_string().contains("CertificateUnknown"),
        "{refused}"
    );
}

/// One HTTP/1.1 request over TLS presenting `cert` with client.key; the answer's text.
async fn exchange(
    dir: &Path,
    cert: &str,
    server_ca: &TestCa,
    address: &str,
) -> std::io::Result<String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join(cert))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    // rustls' own `with_client_auth_cert` already refuses a v1 certificate (webpki's
    // UnsupportedCertVersion): a resolver presents it as it is, as wisegate's would.
    let provider = wisegate::tls::provider();
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let certified = Arc::new(CertifiedKey::new(chain, signing_key));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Present(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    tls.write_all(b"GET /v1/me HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Presents one certificate, unchecked.
#[derive(Debug)]
struct Present(Arc<CertifiedKey>);

impl ResolvesClientCert for Present {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
