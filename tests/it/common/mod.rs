//! Test harness: fake-wise on real TLS with certificates made now, a config written to a
//! temp folder, and wisegate's `run` on `127.0.0.1:0`.

pub mod redis_server;
pub mod sentinel;

use bytes::Bytes;
use fake_wise::{CertKeyPem, FakeWise, FakeWiseConfig, TestCa};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wisegate::config::Config;
use wisegate::Listeners;

/// How a test gets a wisegate: [`Harness::builder`], what differs from the defaults, then
/// [`HarnessBuilder::start`] (fake-wise, the files, authorized, wisegate serving) or
/// [`HarnessBuilder::setup`] (fake-wise and the files only, for a test that edits the
/// config, runs the binary or serves with [`serve`] itself).
#[derive(Clone, Default)]
pub struct HarnessBuilder {
    /// Config text appended at the end (routes, limits...).
    extra: String,
    /// Skip `authorize --code` before starting.
    unauthorized: bool,
    /// Present a client certificate from a CA fake-wise does not trust.
    untrusted_client_cert: bool,
    /// Present a client certificate that has expired.
    expired_client_cert: bool,
    /// Leave `upstream.ca_file` out, so fake-wise's server certificate is not trusted.
    no_ca_file: bool,
    fake: FakeWiseConfig,
    /// `listen.threads` (serving lanes); `None`: one per core.
    threads: Option<usize>,
    /// The clock of `/status`'s history; `None`: the system clock.
    clock: Option<wisegate::history::Clock>,
}

impl HarnessBuilder {
    /// Config text appended at the end of the config (routes, limits...).
    pub fn extra(mut self, text: impl Into<String>) -> Self {
        self.extra = text.into();
        self
    }

    /// fake-wise configured so.
    pub fn fake(mut self, fake: FakeWiseConfig) -> Self {
        self.fake = fake;
        self
    }

    /// [`start`](Self::start) skips `authorize --code`.
    pub fn unauthorized(mut self) -> Self {
        self.unauthorized = true;
        self
    }

    /// wisegate presents a client certificate from a CA fake-wise does not trust.
    pub fn untrusted_client_cert(mut self) -> Self {
        self.untrusted_client_cert = true;
        self
    }

    /// wisegate presents a client certificate that has expired.
    pub fn expired_client_cert(mut self) -> Self {
        self.expired_client_cert = true;
        self
    }

    /// `upstream.ca_file` left out, so fake-wise's server certificate is not trusted.
    pub fn no_ca_file(mut self) -> Self {
        self.no_ca_file = true;
        self
    }

    /// `listen.threads` (serving lanes); by default one per core.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The clock of `/status`'s history; by default the system clock.
    pub fn clock(mut self, clock: wisegate::history::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// fake-wise with a fresh PKI and the files and config written to a temp folder; not
    /// authorized, wisegate not started.
    pub async fn setup(self) -> Setup {
        self.written().await.0
    }

    /// The files and config, plus the client certificate the config presents.
    async fn written(&self) -> (Setup, CertKeyPem) {
        let (wise, client_ca, server_ca) = start_wise(self.fake.clone()).await;
        let client_cert = if self.untrusted_client_cert {
            TestCa::new("somebody else's CA").client_cert("Acme")
        } else if self.expired_client_cert {
            client_ca.client_cert_expired("Acme")
        } else {
            client_ca.client_cert("Acme")
        };
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_setup(dir.path(), &wise, &server_ca, &client_cert, self);
        let setup = Setup {
            wise,
            client_ca,
            server_ca,
            dir,
            config_path,
        };
        (setup, client_cert)
    }

    /// [`setup`](Self::setup), `authorize --code` (unless [`unauthorized`](Self::unauthorized)),
    /// and wisegate serving on loopback.
    pub async fn start(self) -> Harness {
        let (setup, client_cert) = self.written().await;
        let mut config = setup.config();
        if self.threads.is_some() {
            config.listen.threads = self.threads;
        }
        if !self.unauthorized {
            // Authorize with a trusted identity even when the run presents another one.
            let good = setup.dir.path().join("good");
            std::fs::create_dir_all(&good).unwrap();
            let mut authorize_config = config.clone();
            if self.untrusted_client_cert || self.no_ca_file || self.expired_client_cert {
                let trusted = setup.client_ca.client_cert("Acme");
                std::fs::write(good.join("client.crt"), &trusted.cert_pem).unwrap();
                std::fs::write(good.join("client.key"), &trusted.key_pem).unwrap();
                std::fs::write(good.join("wise-ca.pem"), setup.server_ca.cert_pem()).unwrap();
                authorize_config.mtls.cert_file = good.join("client.crt");
                authorize_config.mtls.key_file = good.join("client.key");
                authorize_config.upstream.ca_file = Some(good.join("wise-ca.pem"));
            }
            authorize_with_code(&authorize_config, &setup.wise).await;
        }
        let clock = self.clock.unwrap_or(wisegate::history::Clock::System);
        let Running {
            proxy,
            admin,
            shutdown,
            task,
        } = serve_on_clock(config, clock).await;
        Harness {
            dir: setup.dir,
            wise: setup.wise,
            client_cert,
            config_path: setup.config_path,
            proxy,
            admin,
            shutdown,
            task,
        }
    }
}

/// fake-wise, the files, and wisegate serving them (see [`HarnessBuilder::start`]).
pub struct Harness {
    pub dir: TempDir,
    pub wise: FakeWise,
    pub client_cert: CertKeyPem,
    pub config_path: PathBuf,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), wisegate::assembly::BuildError>>,
}

/// fake-wise started with a fresh PKI; returns it, the client CA and the server CA.
async fn start_wise(fake: FakeWiseConfig) -> (FakeWise, TestCa, TestCa) {
    let server_ca = TestCa::new("fake-wise server CA");
    let client_ca = TestCa::new("fake-wise client CA");
    let wise = FakeWise::start(fake, &server_ca.server_cert(), &client_ca.cert_pem())
        .await
        .expect("fake-wise starts");
    (wise, client_ca, server_ca)
}

/// Writes the files and config for a wisegate in front of `wise` into `dir`.
fn write_setup(
    dir: &Path,
    wise: &FakeWise,
    server_ca: &TestCa,
    client: &CertKeyPem,
    options: &HarnessBuilder,
) -> PathBuf {
    std::fs::write(dir.join("wise-ca.pem"), server_ca.cert_pem()).unwrap();
    std::fs::write(dir.join("client.crt"), &client.cert_pem).unwrap();
    std::fs::write(dir.join("client.key"), &client.key_pem).unwrap();
    std::fs::write(
        dir.join("client_secret"),
        format!("{}\n", wise.config().client_secret),
    )
    .unwrap();
    std::fs::write(
        dir.join("personal_token"),
        format!("{}\n", wise.config().personal_token),
    )
    .unwrap();
    let ca_line = if options.no_ca_file {
        ""
    } else {
        "ca_file = \"wise-ca.pem\""
    };
    let text = format!(
        r#"environment = "sandbox"

[listen]
address = "127.0.0.1:0"
shutdown_grace = "5s"

[admin]
address = "127.0.0.1:0"

[upstream]
mtls_url = "{mtls}"
legacy_url = "{legacy}"
{ca_line}

[mtls]
cert_file = "client.crt"
key_file = "client.key"

[oauth]
client_id = "{client_id}"
client_secret_file = "client_secret"
redirect_uri = "{redirect}"
authorize_url = "{authorize}"
token_store = "state/tokens.json"

[personal_token]
token_file = "personal_token"

{extra}
"#,
        mtls = wise.mtls_url(),
        legacy = wise.legacy_url(),
        client_id = wise.config().client_id,
        redirect = wise.config().redirect_uri,
        authorize = wise.authorize_url(),
        extra = options.extra,
    );
    let path = dir.join("wisegate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `wisegate authorize --code` against fake-wise.
pub async fn authorize_with_code(config: &Config, wise: &FakeWise) {
    wisegate::authorize::authorize(config, Some(wise.issue_code()), tokio::io::empty(), |_| {})
        .await
        .expect("authorize --code succeeds");
}

async fn bind_pair() -> Listeners {
    Listeners {
        proxy: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    }
}

impl Harness {
    /// The defaults; change what a test needs, then `start` or `setup`.
    pub fn builder() -> HarnessBuilder {
        HarnessBuilder::default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy)
    }

    pub async fn get(&self, path: &str) -> (Response<()>, Bytes) {
        send(
            Request::get(self.url(path))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    /// Asserts that `/readyz` answers 503 and that its first reason mentions `text`.
    pub async fn assert_not_ready(&self, text: &str) {
        let (ready, body) = self.admin_get("/readyz").await;
        assert_eq!(ready.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let body = json(&body);
        let reason = body["reasons"][0].as_str().unwrap_or_default();
        assert!(reason.contains(text), "readiness: {body}");
    }

    pub async fn admin_get(&self, path: &str) -> (Response<()>, Bytes) {
        send(
            Request::get(format!("http://{}{path}", self.admin))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }
}

/// Sends one request over plain HTTP/1.1 and collects the whole answer.
pub async fn send(request: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await.expect("wisegate answers");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body arrives whole").to_bytes();
    (Response::from_parts(parts, ()), bytes)
}

/// An h2c (prior knowledge) connection to `proxy`, driven in the background; its sender.
pub async fn h2c_connect<B>(proxy: SocketAddr) -> hyper::client::conn::http2::SendRequest<B>
where
    B: http_body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    sender
}

/// The JSON of a body.
pub fn json(bytes: &Bytes) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| panic!("JSON body, got {:?}", String::from_utf8_lossy(bytes)))
}

/// The DER of the first certificate in a PEM text.
pub fn first_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// fake-wise plus a written (not yet authorized) setup in a temp folder
/// ([`HarnessBuilder::setup`]).
pub struct Setup {
    pub wise: FakeWise,
    pub client_ca: TestCa,
    pub server_ca: TestCa,
    pub dir: TempDir,
    pub config_path: PathBuf,
}

impl Setup {
    /// The config as written.
    pub fn config(&self) -> Config {
        Config::load(&self.config_path).expect("test config is valid")
    }
}

/// A wisegate serving in this process ([`serve`]).
pub struct Running {
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), wisegate::assembly::BuildError>>,
}

/// Runs wisegate with `config` on fresh loopback listeners, in this process.
pub async fn serve(config: Config) -> Running {
    serve_on_clock(config, wisegate::history::Clock::System).await
}

/// [`serve`] with `/status`'s history on `clock`.
async fn serve_on_clock(config: Config, clock: wisegate::history::Clock) -> Running {
    let listeners = bind_pair().await;
    let proxy = listeners.proxy.local_addr().unwrap();
    let admin = listeners.admin.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(wisegate::run_with_clock(
        config,
        listeners,
        shutdown.clone(),
        clock,
    ));
    Running {
        proxy,
        admin,
        shutdown,
        task,
    }
}

/// Whether every admin listener in `admins` reports `expiry` (Unix seconds) as the
/// default account's token expiry: every replica holds the same token.
pub async fn all_report_expiry(admins: &[SocketAddr], expiry: u64) -> bool {
    for admin in admins {
        let sample = "wisegate_token_expiry_timestamp_seconds{account=\"default\"}";
        if metric(*admin, sample).await != expiry as f64 {
            return false;
        }
    }
    true
}

/// The value of one sample in the admin listener's `/metrics`, e.g.
/// `wisegate_config_reload_total{result="failure"}`; 0 when absent.
pub async fn metric(admin: SocketAddr, sample: &str) -> f64 {
    let (_, body) = get_at(admin, "/metrics").await;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|line| {
            line.strip_prefix(sample)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// Waits (at most 10 s) until a sample of `/metrics` equals `value`.
pub async fn wait_for_metric_to_be(admin: SocketAddr, sample: &str, value: f64) {
    let reached = eventually(std::time::Duration::from_secs(10), async || {
        metric(admin, sample).await == value
    })
    .await;
    assert!(reached, "{sample} never became {value}");
}

/// Waits (at most 10 s) until a sample of `/metrics` reaches `value` or more.
pub async fn wait_for_metric(admin: SocketAddr, sample: &str, value: f64) {
    let reached = eventually(std::time::Duration::from_secs(10), async || {
        metric(admin, sample).await >= value
    })
    .await;
    assert!(reached, "{sample} never reached {value}");
}

/// `GET http://{proxy}{path}`.
pub async fn get_at(proxy: SocketAddr, path: &str) -> (Response<()>, Bytes) {
    send(
        Request::get(format!("http://{proxy}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

/// Logs to the test output when `WISEGATE_TEST_LOG` is set (e.g. `debug`).
pub fn init_tracing() {
    if let Ok(filter) = std::env::var("WISEGATE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

/// Who has the machine: [`alone`] excludes every [`heavy`] test and other `alone` ones.
static MACHINE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held for the whole test by a test that must have the machine to itself, as it had when
/// each file was a binary run on its own: one whose work takes the machine (the
/// rehearsal's cargo build) or one that counts on timing under load (the Redis chaos
/// run). Take it once, first thing.
pub async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// Held for the whole test by a test that loads the machine (Redis replicas under load,
/// Sentinel failovers), so that it never runs beside one that holds [`alone`]; `heavy`
/// tests run beside each other. Take it once, first thing (a second one could wait
/// behind an `alone` that waits for the first).
pub async fn heavy() -> tokio::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: std::time::Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// Sends `bytes` to `proxy` and then nothing, keeping the connection open; returns what
/// came back once wisegate closed the connection (panics if it has not within 30 s).
pub async fn send_and_wait_for_close(proxy: SocketAddr, bytes: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("wisegate closed the connection")
    .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// An app whose request meets a 401 hangs up while the refresh it started waits for
/// Wise's answer: Wise (answering its token endpoint after `answer_after`) has made the
/// grant, and nothing is in flight any more. The token endpoint stays slow.
pub async fn hang_up_during_a_refresh(
    wise: &FakeWise,
    proxy: SocketAddr,
    admin: SocketAddr,
    answer_after: std::time::Duration,
) {
    use tokio::io::AsyncWriteExt;
    wise.set_token_endpoint(fake_wise::TokenEndpointMode::SlowAnswer(answer_after));
    wise.invalidate_access_tokens();
    let mut app = tokio::net::TcpStream::connect(proxy).await.unwrap();
    app.write_all(b"GET /v1/me HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let granted = eventually(std::time::Duration::from_secs(10), async || {
        wise.token_calls().refresh_token >= 1
    })
    .await;
    assert!(granted, "the 401 led to no refresh");
    drop(app);
    wait_for_metric_to_be(admin, "wisegate_requests_in_flight", 0.0).await;
}

/// Runs the `wisegate` binary with `args` (stdin closed); its exit code and its stdout
/// followed by its stderr.
pub async fn wisegate_output(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// Panics when `output` holds any 16-character piece of any of `secrets` (a secret
/// shorter than that: the whole of it). Types that redact print no piece of a token,
/// whatever its size; a line that printed part of one, cut or not, is caught. The panic
/// names the secret by position and the line, never the text.
pub fn assert_no_piece_of(secrets: &[String], output: &str) {
    const PIECE: usize = 16;
    let mut pieces = std::collections::HashSet::new();
    for (index, secret) in secrets.iter().enumerate() {
        assert!(!secret.is_empty(), "secret {index} is empty");
        if secret.len() < PIECE {
            assert!(
                !output.contains(secret.as_str()),
                "secret {index} is in the output"
            );
        }
        for piece in secret.as_bytes().windows(PIECE) {
            pieces.insert((piece, index));
        }
    }
    let by_piece: std::collections::HashMap<&[u8], usize> = pieces.into_iter().collect();
    if let Some((at, index)) = output
        .as_bytes()
        .windows(PIECE)
        .enumerate()
        .find_map(|(at, window)| by_piece.get(window).map(|index| (at, *index)))
    {
        let line = output.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        panic!("a {PIECE}-character piece of secret {index} is in the output, line {line}");
    }
}

/// Clients sending GETs round-robin to every proxy in `proxies` until `stop`: each
/// answer's status and when it came.
pub fn load(
    proxies: &[SocketAddr],
    clients: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<JoinHandle<Vec<(std::time::Instant, http::StatusCode)>>> {
    (0..clients)
        .map(|client| {
            let proxies = proxies.to_vec();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut turn = client;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let proxy = proxies[turn % proxies.len()];
                    turn += 1;
                    let url = format!("http://{proxy}/v1/balances?client={client}");
                    let (response, _) =
                        send(Request::get(&url).body(Full::new(Bytes::new())).unwrap()).await;
                    statuses.push((std::time::Instant::now(), response.status()));
                }
                statuses
            })
        })
        .collect()
}
