//! A walk-through of wisegate against fake-wise, a local double of Wise's API.
//!
//! It makes throw-away certificates, starts fake-wise, writes a `wisegate.toml`, runs the
//! real `wisegate authorize` flow (the demo plays the browser), then serves and sends one
//! call as a legacy app would: plain HTTP with the app's old personal token. Wise receives
//! the OAuth bearer over mutual TLS instead. The proxy then stays up for you to try.
//!
//! Run with `cargo run --release --example demo`; stop with Ctrl-C.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use fake_wise::{FakeWise, FakeWiseConfig, TestCa};
use http::{header, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wisegate::config::Config;
use wisegate::Listeners;

/// The credential the legacy app sends; wisegate must never pass it on.
const APP_TOKEN: &str = "the-apps-old-personal-token";

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

#[tokio::main]
async fn main() -> Result<()> {
    println!("== 1. Setting up a fake Wise and a wisegate config");
    let dir = tempfile::tempdir().context("cannot create a temp folder")?;
    println!("Working folder (removed on exit): {}", dir.path().display());

    println!("Generating certificates: a Wise server CA and a client CA...");
    let server_ca = TestCa::new("demo Wise server CA");
    let client_ca = TestCa::new("demo client CA");
    let client = client_ca.client_cert("Demo App Ltd");

    let callback_port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let fake = FakeWiseConfig {
        redirect_uri: format!("http://127.0.0.1:{callback_port}/callback"),
        ..FakeWiseConfig::default()
    };
    let wise = FakeWise::start(fake, &server_ca.server_cert(), &client_ca.cert_pem())
        .await
        .context("cannot start fake-wise")?;
    println!("fake-wise mTLS API:   {}", wise.mtls_url());
    println!("fake-wise legacy API: {}", wise.legacy_url());
    println!("fake-wise authorize:  {}", wise.authorize_url());

    let listeners = Listeners {
        proxy: bind_or_any("127.0.0.1:8080").await?,
        admin: bind_or_any("127.0.0.1:9901").await?,
    };
    let proxy = listeners.proxy.local_addr()?;
    let admin = listeners.admin.local_addr()?;
    let config_path = write_setup(dir.path(), &wise, &server_ca, &client, proxy, admin)?;
    println!("Wrote {}", config_path.display());
    let config = Config::load(&config_path)?;

    println!();
    println!("== 2. Authorizing (the one-time OAuth step)");
    let (url_tx, mut url_rx) = mpsc::unbounded_channel::<String>();
    let say = move |text: &str| {
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            println!("  wisegate> {}", line.trim());
            if line.trim().starts_with("http") {
                let _ = url_tx.send(line.trim().to_owned());
            }
        }
    };
    let authorize_config = config.clone();
    let authorizing = tokio::spawn(async move {
        wisegate::authorize::authorize(&authorize_config, None, tokio::io::empty(), say).await
    });
    let Some(url) = url_rx.recv().await else {
        authorizing.await??; // wisegate stopped early: show its error
        bail!("wisegate printed no authorize URL");
    };
    let browser: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    println!("Browser: opening the authorize page (fake-wise approves at once)");
    let (response, _) = get(&browser, &url, None).await?;
    let location = response
        .headers()
        .get(header::LOCATION)
        .context("the authorize page gave no redirect")?
        .to_str()?
        .to_owned();
    println!("Browser: {} redirect to {location}", response.status());
    let (response, body) = retry_get(&browser, &location).await?;
    let page = String::from_utf8_lossy(&body);
    println!("Browser: {} {}", response.status(), page.trim());
    let profile = authorizing.await??.profile_id.unwrap_or_default();
    println!("Authorized. profileId: {profile}");
    println!(
        "Tokens stored in {}",
        wisegate::assembly::token_store(&config)?.describe()
    );

    println!();
    println!("== 3. Serving, and one call as a legacy app would make it");
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(std::io::stdout().is_terminal())
        .init();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(wisegate::run(config, listeners, shutdown.clone()));
    let app_url = format!("http://{proxy}/v1/profiles");
    println!("App: GET {app_url}");
    println!("App: Authorization: Bearer {APP_TOKEN}");
    let (response, body) = get(&browser, &app_url, Some(APP_TOKEN)).await?;
    drop(browser);
    println!("App got: {}", response.status());
    show_echo(&body)?;

    println!();
    println!("== 4. Your turn");
    println!("wisegate is listening on http://{proxy} (admin on http://{admin}).");
    println!("Try, in another terminal:");
    println!("  curl -s http://{proxy}/v1/profiles");
    println!("  curl -s http://{admin}/readyz");
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!();
    println!("Stopping...");
    shutdown.cancel();
    running.await??;
    wise.shutdown().await;
    println!("Stopped. Removing {}", dir.path().display());
    Ok(())
}

/// Binds `address`, or any free port on 127.0.0.1 when it is taken.
async fn bind_or_any(address: &str) -> Result<TcpListener> {
    match TcpListener::bind(address).await {
        Ok(listener) => Ok(listener),
        Err(error) => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            println!(
                "{address} is not available ({error}); using {} instead",
                listener.local_addr()?
            );
            Ok(listener)
        }
    }
}

/// Writes certificates, keys, secrets and `wisegate.toml` into `dir`.
fn write_setup(
    dir: &Path,
    wise: &FakeWise,
    server_ca: &TestCa,
    client: &fake_wise::CertKeyPem,
    proxy: SocketAddr,
    admin: SocketAddr,
) -> Result<std::path::PathBuf> {
    let fake = wise.config();
    let files = [
        ("wise-ca.pem", server_ca.cert_pem()),
        ("client.crt", client.cert_pem.clone()),
        ("client.key", client.key_pem.clone()),
        ("client_secret", format!("{}\n", fake.client_secret)),
        ("personal_token", format!("{}\n", fake.personal_token)),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {name}"))?;
    }
    println!("Wrote the CA, client certificate and key, client secret and personal token");
    let text = format!(
        r#"environment = "sandbox"

[listen]
address = "{proxy}"
shutdown_grace = "5s"

[admin]
address = "{admin}"

[upstream]
mtls_url = "{mtls}"
legacy_url = "{legacy}"
ca_file = "wise-ca.pem"

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
"#,
        mtls = wise.mtls_url(),
        legacy = wise.legacy_url(),
        client_id = fake.client_id,
        redirect = fake.redirect_uri,
        authorize = wise.authorize_url(),
    );
    let path = dir.join("wisegate.toml");
    std::fs::write(&path, text).context("cannot write wisegate.toml")?;
    Ok(path)
}

/// One plain HTTP GET (no redirects followed), with an optional bearer token.
async fn get(
    client: &HttpClient,
    url: &str,
    bearer: Option<&str>,
) -> Result<(Response<()>, Bytes)> {
    let mut request = Request::get(url);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = client
        .request(request.body(Empty::new())?)
        .await
        .with_context(|| format!("GET {url} failed"))?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((Response::from_parts(parts, ()), bytes))
}

/// `get`, retried briefly: wisegate may print the URL before its callback listener is up.
async fn retry_get(client: &HttpClient, url: &str) -> Result<(Response<()>, Bytes)> {
    for _ in 0..20 {
        match get(client, url, None).await {
            Ok(answer) => return Ok(answer),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    get(client, url, None).await
}

/// Prints fake-wise's echo of what reached it, with the bearer token masked.
fn show_echo(body: &Bytes) -> Result<()> {
    let mut echo: serde_json::Value =
        serde_json::from_slice(body).context("fake-wise did not answer with its JSON echo")?;
    if String::from_utf8_lossy(body).contains(APP_TOKEN) {
        bail!("the app's token reached Wise: this should never happen");
    }
    let mut authorization = String::from("(none)");
    if let Some(headers) = echo["headers"].as_array_mut() {
        for pair in headers {
            if pair[0] == "authorization" {
                let value = pair[1].as_str().unwrap_or_default();
                let token = value.strip_prefix("Bearer ").unwrap_or(value);
                authorization = format!("Bearer {}...", token.chars().take(4).collect::<String>());
                pair[1] = authorization.clone().into();
            }
        }
    }
    println!("fake-wise echo (what Wise received, token masked):");
    println!("{}", serde_json::to_string_pretty(&echo)?);
    let kind = echo["token_kind"].as_str().unwrap_or("?");
    println!("Wise got Authorization: {authorization} (token_kind: {kind}, the OAuth token)");
    println!("The app's token ({APP_TOKEN}) was removed; Wise never saw it.");
    Ok(())
}
