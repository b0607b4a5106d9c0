//! Soak: mixed load through the real `wisegate` binary for a while (10 minutes by
//! default) while its config is reloaded, its client certificate rotated and its tokens
//! refreshed, reporting failed requests (must be 0) and RSS over time (must be flat).
//!
//! `cargo build --release --bin wisegate && cargo run --release --example soak -- [MINUTES]`
//! Everything runs on 127.0.0.1 and stops by itself.

use bytes::Bytes;
use fake_wise::{FakeWise, FakeWiseConfig, TestCa};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 16;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let minutes: u64 = std::env::args()
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(10);
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/wisegate");
    anyhow::ensure!(
        binary.exists(),
        "build it first: cargo build --release --bin wisegate"
    );
    let dir = tempfile::tempdir()?;
    let (server_ca, client_ca) = (TestCa::new("soak server CA"), TestCa::new("soak client CA"));
    let fake = FakeWiseConfig {
        access_token_lifetime: Duration::from_secs(20),
        ..FakeWiseConfig::default()
    };
    let wise = FakeWise::start(fake, &server_ca.server_cert(), &client_ca.cert_pem()).await?;
    let client = client_ca.client_cert("Soak Ltd");
    std::fs::write(dir.path().join("ca.pem"), server_ca.cert_pem())?;
    std::fs::write(dir.path().join("client.crt"), &client.cert_pem)?;
    std::fs::write(dir.path().join("client.key"), &client.key_pem)?;
    std::fs::write(
        dir.path().join("client_secret"),
        &wise.config().client_secret,
    )?;
    std::fs::write(
        dir.path().join("personal_token"),
        &wise.config().personal_token,
    )?;
    let proxy = free_port();
    let admin = free_port();
    let config = |rollback: bool| {
        format!(
            "[listen]\naddress = \"{proxy}\"\n[admin]\naddress = \"{admin}\"\n[upstream]\nmtls_url = \"{}\"\nlegacy_url = \"{}\"\nca_file = \"ca.pem\"\n\
             [mtls]\ncert_file = \"client.crt\"\nkey_file = \"client.key\"\n[oauth]\nclient_id = \"{}\"\nclient_secret_file = \"client_secret\"\n\
             redirect_uri = \"{}\"\ntoken_store = \"tokens.json\"\n[personal_token]\ntoken_file = \"personal_token\"\n[log]\nlevel = \"warn\"\n\
             [rollback]\nall = {rollback}\n[[route]]\nname = \"hooks\"\npath = \"/v3/profiles/*/subscriptions/**\"\nmode = \"personal_token\"\n",
            wise.mtls_url(), wise.legacy_url(), wise.config().client_id, wise.config().redirect_uri
        )
    };
    let config_path = dir.path().join("wisegate.toml");
    std::fs::write(&config_path, config(false))?;
    let status = std::process::Command::new(&binary)
        .args(["authorize", "--config"])
        .arg(&config_path)
        .args(["--code", &wise.issue_code()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "authorize failed");
    let mut child = tokio::process::Command::new(&binary)
        .args(["run", "--config"])
        .arg(&config_path)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for n in 0..CLIENTS {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let paths = [
                "/v1/profiles",
                "/v3/profiles/1/subscriptions",
                "/test/download?bytes=65536",
            ];
            let mut i = n;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (method, body) = if i % 4 == 0 {
                    ("POST", Bytes::from(vec![b'x'; 20_000]))
                } else {
                    ("GET", Bytes::new())
                };
                let request = http::Request::builder()
                    .method(method)
                    .uri(format!("http://{proxy}{}", paths[i % paths.len()]))
                    .body(Full::new(body))
                    .expect("valid request");
                let ok = match http.request(request).await {
                    Ok(response) => {
                        response.status() == 200 && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                sent.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    println!("minute  requests  failed  rss_kb  reloads  rotations  refreshes");
    let started = Instant::now();
    let (mut reloads, mut rotations) = (0, 0);
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(minutes * 60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        tick += 1;
        // fake-wise records every request; the soak reads none of them (10 minutes of
        // records took the driver to 4.6 GB).
        wise.clear_requests();
        if tick % 3 == 0 {
            std::fs::write(&config_path, config(tick % 6 == 0))?;
            reloads += 1;
        }
        if tick % 12 == 0 {
            let rotated = client_ca.client_cert("Soak Ltd");
            std::fs::write(dir.path().join("client.key.new"), &rotated.key_pem)?;
            std::fs::write(dir.path().join("client.crt.new"), &rotated.cert_pem)?;
            std::fs::rename(
                dir.path().join("client.key.new"),
                dir.path().join("client.key"),
            )?;
            std::fs::rename(
                dir.path().join("client.crt.new"),
                dir.path().join("client.crt"),
            )?;
            rotations += 1;
        }
        if tick % 6 == 0 {
            println!(
                "{:>6.1}  {:>8}  {:>6}  {:>6}  {:>7}  {:>9}  {:>9}",
                started.elapsed().as_secs_f64() / 60.0,
                sent.load(Ordering::Relaxed),
                failed.load(Ordering::Relaxed),
                rss_kb(pid),
                reloads,
                rotations,
                wise.token_calls().refresh_token
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let _ = child.kill().await;
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "total: {} requests, {failed} failed",
        sent.load(Ordering::Relaxed)
    );
    anyhow::ensure!(failed == 0, "{failed} requests failed");
    Ok(())
}

fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
