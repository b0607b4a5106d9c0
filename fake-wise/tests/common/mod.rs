//! Test helpers: a started double with its PKI, and a tiny HTTP client over real TLS
//! (tokio-rustls + hyper's connection API), HTTP/2 when ALPN picks it.

#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use fake_wise::{CertKeyPem, FakeWise, FakeWiseConfig, TestCa};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Env {
    pub ca: TestCa,
    pub client: CertKeyPem,
    pub fake: FakeWise,
}

pub async fn start(config: FakeWiseConfig) -> Env {
    let ca = TestCa::new("fake-wise test CA");
    let client = ca.client_cert("Acme Ltd");
    let fake = FakeWise::start(config, &ca.server_cert(), &ca.cert_pem())
        .await
        .unwrap();
    Env { ca, client, fake }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A client config trusting `ca_pem`, presenting `client` if given, offering `alpn`.
pub fn tls(ca_pem: &str, client: Option<&CertKeyPem>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match client {
        Some(c) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(c.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Sends one request to `base` (`https://..` with `tls`, or `http://..`); `path` is appended.
pub async fn send(
    base: &str,
    tls: Option<Arc<ClientConfig>>,
    req: Request<Full<Bytes>>,
) -> Result<Answer, Error> {
    let authority = base
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or("bad base URL")?;
    let tcp = TcpStream::connect(authority).await?;
    match tls {
        None => round_trip(TokioIo::new(tcp), false, req).await,
        Some(config) => {
            let name = ServerName::try_from("127.0.0.1")?.to_owned();
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            round_trip(TokioIo::new(stream), h2, req).await
        }
    }
}

async fn round_trip<IO>(io: IO, h2: bool, req: Request<Full<Bytes>>) -> Result<Answer, Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let resp = if h2 {
        // HTTP/2 needs :scheme and :authority, so an absolute URI.
        let mut req = req;
        let pq = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        *req.uri_mut() = format!("https://127.0.0.1{pq}").parse()?;
        req.headers_mut().remove("host");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        sender.send_request(req).await?
    };
    let (parts, body) = resp.into_parts();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await?.to_bytes(),
        version: parts.version,
    })
}

pub fn get(path: &str, bearer: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(path).header("host", "127.0.0.1");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::default()).unwrap()
}

pub fn basic(id: &str, secret: &str) -> String {
    let raw = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A token request with the configured client credentials and this form.
pub fn token_request(
    config: &FakeWiseConfig,
    path: &str,
    form: &[(&str, &str)],
) -> Request<Full<Bytes>> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            basic(&config.client_id, &config.client_secret),
        )
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

impl Env {
    pub fn mtls_tls(&self) -> Arc<ClientConfig> {
        tls(
            &self.ca.cert_pem(),
            Some(&self.client),
            &[b"h2", b"http/1.1"],
        )
    }

    pub async fn mtls(&self, req: Request<Full<Bytes>>) -> Answer {
        send(&self.fake.mtls_url(), Some(self.mtls_tls()), req)
            .await
            .unwrap()
    }

    pub async fn legacy(&self, req: Request<Full<Bytes>>) -> Answer {
        let config = tls(&self.ca.cert_pem(), None, &[b"http/1.1"]);
        send(&self.fake.legacy_url(), Some(config), req)
            .await
            .unwrap()
    }

    /// Exchanges a fresh code; returns the token response.
    pub async fn authorize(&self) -> serde_json::Value {
        let cfg = self.fake.config();
        let code = self.fake.issue_code();
        let req = token_request(
            cfg,
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &cfg.client_id),
                ("code", &code),
                ("redirect_uri", &cfg.redirect_uri),
            ],
        );
        let answer = self.mtls(req).await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.json()
    }
}
