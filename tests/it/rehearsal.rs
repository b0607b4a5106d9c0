//! The README's "Rehearse locally" steps, run with the real binaries in a temporary
//! folder: `fake-wise --dir D` on fixed ports, `wisegate csr`, `fake-wise sign-csr`,
//! `wisegate authorize --code`, `wisegate check --online`; then fake-wise restarts on the
//! same folder and ports, and the same certificate and config still pass.
//!
//! `CARGO_BIN_EXE_fake-wise` exists only in fake-wise's own tests, so the test builds that
//! binary with the cargo that runs it (a no-op when it is fresh) and finds it in the
//! build's JSON messages.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn fake_wise_binary() -> PathBuf {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", "fake-wise", "--bin", "fake-wise"])
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo build -p fake-wise failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["target"]["name"] == "fake-wise")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the fake-wise executable")
}

/// Three ports that were free a moment ago (bound together, then released).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    [0, 1, 2].map(|i| listeners[i].local_addr().unwrap().port())
}

/// Starts `fake-wise --dir dir` on `ports` and waits for it to print its URLs; `None`
/// when it exits first (a port was taken meanwhile).
async fn start(binary: &Path, dir: &Path, ports: [u16; 3]) -> Option<(Child, String)> {
    let mut child = Command::new(binary)
        .arg("--dir")
        .arg(dir)
        .args(["--mtls-port", &ports[0].to_string()])
        .args(["--legacy-port", &ports[1].to_string()])
        .args(["--authorize-port", &ports[2].to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if line.starts_with("same ports") {
                return true;
            }
        }
        false
    };
    let started = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("fake-wise prints its URLs or exits");
    started.then_some((child, printed))
}

async fn wisegate(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A code from the double's authorize page, as the browser would bring it back.
async fn code(authorize_port: u16) -> String {
    let url = format!(
        "http://127.0.0.1:{authorize_port}/oauth/authorize/?client_id=wisegate-test\
         &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=s"
    );
    let (response, _) =
        common::send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("the redirect carries a code")
}

/// `wisegate authorize --code` (with `extra` arguments), then `check --online`.
async fn authorize_and_check(config: &str, authorize_port: u16, extra: &[&str]) -> String {
    let code = code(authorize_port).await;
    let args = [
        &["authorize", "--config", config, "--code", &code][..],
        extra,
    ]
    .concat();
    let (ok, text) = wisegate(&args).await;
    assert!(ok, "{text}");
    let (ok, text) = wisegate(&["check", "--config", config, "--online"]).await;
    assert!(ok, "{text}");
    text
}

#[tokio::test]
async fn the_readme_rehearsal_runs_and_survives_a_restart() {
    // The build below can take both cores for minutes (on a clean checkout it compiles
    // fake-wise's dependencies for the dev profile): not while the chaos run counts.
    let _alone = common::alone().await;
    let binary = fake_wise_binary();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("rehearsal");
    let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        std::process::Command::new(&binary)
            .args(args)
            .output()
            .unwrap()
    };
    let bad = run(&["--dir", &d("."), "--mtls-port", "https"]);
    assert_eq!(bad.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--mtls-port: `https`"));
    let early = run(&["sign-csr", "--dir", &d(".")]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("holds no test CA"));
    let mut started = None;
    for _ in 0..5 {
        let ports = free_ports();
        if let Some(running) = start(&binary, &dir, ports).await {
            started = Some((running, ports));
            break;
        }
    }
    let ((mut fake, printed), ports) = started.expect("fake-wise starts on free ports");
    assert!(printed.contains("test CA made"), "{printed}");
    assert!(printed.contains("oauth.authorize_url"), "{printed}");

    let (ok, text) = wisegate(&[
        "csr",
        "--org",
        "Rehearsal Ltd",
        "--key-type",
        "rsa2048",
        "--key-out",
        &d("tls/client.key"),
        "--csr-out",
        &d("tls/client.csr"),
    ])
    .await;
    assert!(ok, "{text}");
    let signed = run(&["sign-csr", "--dir", &d(".")]);
    assert!(signed.status.success(), "{signed:?}");
    let config = d("wisegate.toml");
    let text = authorize_and_check(&config, ports[2], &[]).await;
    assert!(text.contains("answered 200 with our certificate"), "{text}");

    // An EC CSR is signed too.
    let (ok, text) = wisegate(&[
        "csr",
        "--org",
        "Rehearsal Ltd",
        "--key-type",
        "ec256",
        "--key-out",
        &d("tls/ec.key"),
        "--csr-out",
        &d("tls/ec.csr"),
    ])
    .await;
    assert!(ok, "{text}");
    let ec = ["--csr", &d("tls/ec.csr"), "--out", &d("tls/ec.crt")];
    let signed = run(&[&["sign-csr", "--dir", &d(".")][..], &ec].concat());
    assert!(signed.status.success(), "{signed:?}");

    // Restart on the same folder and ports: the CA, certificates and config still hold
    // (tokens live in fake-wise's memory, so authorize again, replacing the stored ones).
    fake.kill().await.unwrap();
    let edited = std::fs::read_to_string(&config).unwrap() + "# edited\n";
    std::fs::write(&config, &edited).unwrap();
    let (_fake, printed) = start(&binary, &dir, ports)
        .await
        .expect("fake-wise restarts on its ports");
    assert!(printed.contains("test CA reused"), "{printed}");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        edited,
        "never overwritten"
    );
    let text = authorize_and_check(&config, ports[2], &["--force"]).await;
    assert!(text.contains("answered 200 with our certificate"), "{text}");
}
