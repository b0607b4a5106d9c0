//! Hot reload under load: a Kubernetes-style ConfigMap folder (`..data` symlink swap)
//! flips the rollback and a route's mode, a broken config is rejected whole, the
//! certificate rotates; zero failed requests throughout. Also SIGHUP on the real binary.

use crate::common;

use common::{authorize_with_code, get_at, json, serve, wait_for_metric, Harness, Running, Setup};
use fake_wise::HostKind;
use http::StatusCode;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisegate::config::Config;

/// A ConfigMap-like folder: `wisegate.toml -> ..data/wisegate.toml`, `..data -> ..vN`.
struct ConfigMap {
    folder: PathBuf,
    version: u32,
}

impl ConfigMap {
    fn new(folder: &Path, text: &str) -> ConfigMap {
        std::fs::create_dir_all(folder).unwrap();
        let mut map = ConfigMap {
            folder: folder.to_owned(),
            version: 0,
        };
        map.publish(text);
        std::os::unix::fs::symlink("..data/wisegate.toml", folder.join("wisegate.toml")).unwrap();
        map
    }

    /// Writes a new version and swaps `..data` atomically, as the kubelet does.
    fn publish(&mut self, text: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.folder.join(&version)).unwrap();
        std::fs::write(self.folder.join(&version).join("wisegate.toml"), text).unwrap();
        let temp = self.folder.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &temp).unwrap();
        std::fs::rename(&temp, self.folder.join("..data")).unwrap();
    }

    fn file(&self) -> PathBuf {
        self.folder.join("wisegate.toml")
    }
}

/// The setup's config text with absolute paths, so it can live in another folder.
fn absolute_config(setup: &Setup) -> String {
    let dir = setup.dir.path().display().to_string();
    let mut text = std::fs::read_to_string(&setup.config_path).unwrap();
    for file in [
        "wise-ca.pem",
        "client.crt",
        "client.key",
        "client_secret",
        "personal_token",
        "state/tokens.json",
    ] {
        text = text.replace(&format!("\"{file}\""), &format!("\"{dir}/{file}\""));
    }
    text + "\n[[route]]\nname = \"transfers\"\npath = \"/v1/transfers/**\"\nmode = \"oauth_mtls\"\n"
}

/// Waits until `host` served the latest request to `path`, sending requests meanwhile.
async fn observed(
    proxy: std::net::SocketAddr,
    wise: &fake_wise::FakeWise,
    path: &str,
    host: HostKind,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let (_, body) = get_at(proxy, path).await;
        if json(&body)["host"] == host.as_str() {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{path} never reached {host:?}; seen: {:?}",
        wise.requests().last().map(|r| r.host)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_apply_under_load_without_a_failed_request() {
    common::init_tracing();
    let setup = Harness::builder().setup().await;
    authorize_with_code(&Config::load(&setup.config_path).unwrap(), &setup.wise).await;
    let base = absolute_config(&setup);
    let mut map = ConfigMap::new(&setup.dir.path().join("configmap"), &base);
    let Running { proxy, admin, .. } = serve(Config::load(&map.file()).unwrap()).await;

    // Continuous load from 4 clients until told to stop; count failures.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for client in 0..4 {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (response, _) = get_at(proxy, &format!("/v1/transfers/{client}")).await;
                sent.fetch_add(1, Ordering::Relaxed);
                if response.status() != StatusCode::OK {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let mut delays = Vec::new();
    map.publish(&format!("{base}\n[rollback]\nall = true\n"));
    delays.push(observed(proxy, &setup.wise, "/v1/me", HostKind::Legacy).await);
    map.publish(&base);
    delays.push(observed(proxy, &setup.wise, "/v1/me", HostKind::Mtls).await);
    let personal = base.replace(
        "path = \"/v1/transfers/**\"\nmode = \"oauth_mtls\"",
        "path = \"/v1/transfers/**\"\nmode = \"personal_token\"",
    );
    map.publish(&personal);
    delays.push(observed(proxy, &setup.wise, "/v1/transfers/x", HostKind::Legacy).await);

    // A broken config is rejected whole: the previous one keeps serving.
    map.publish(
        &personal
            .replace("mode = \"personal_token\"", "mode = \"bogus\"")
            .replace("[oauth]", "[oauth]\nclient_id = 3"),
    );
    wait_for_metric(
        admin,
        "wisegate_config_reload_total{result=\"failure\"}",
        1.0,
    )
    .await;
    let (_, body) = get_at(proxy, "/v1/transfers/x").await;
    assert_eq!(
        json(&body)["host"],
        "legacy",
        "the last good config still serves"
    );
    // /status says the last reload was rejected, and why, not only that all is well.
    let status = json(&get_at(admin, "/status").await.1);
    let last = &status["config"]["last_reload"];
    assert_eq!(last["result"], "failure", "{status}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("wisegate.toml:")),
        "{status}"
    );
    let (_, page) = get_at(admin, "/status?format=html").await;
    assert!(String::from_utf8_lossy(&page).contains("rejected"));
    map.publish(&base);
    delays.push(observed(proxy, &setup.wise, "/v1/transfers/x", HostKind::Mtls).await);

    // However fast the machine, more than 100 requests ran through the changes: wait for
    // them (a count, not a time), then stop the load.
    let enough = common::eventually(Duration::from_secs(60), async || {
        sent.load(Ordering::Relaxed) > 100
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(enough, "load was applied ({sent})");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    eprintln!("changes observed after {delays:?} with {sent} requests in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_presented_and_a_broken_one_is_refused() {
    common::init_tracing();
    let setup = Harness::builder().setup().await;
    let config = Config::load(&setup.config_path).unwrap();
    authorize_with_code(&config, &setup.wise).await;
    let Running { proxy, admin, .. } = serve(config).await;
    let (response, _) = get_at(proxy, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = setup.wise.requests()[0].client_cert_der.clone().unwrap();

    // Rotate: new key and certificate, written as a Secret update would (new files).
    let rotated = setup.client_ca.client_cert("Acme");
    let dir = setup.dir.path();
    std::fs::write(dir.join("client.key.new"), &rotated.key_pem).unwrap();
    std::fs::write(dir.join("client.crt.new"), &rotated.cert_pem).unwrap();
    std::fs::rename(dir.join("client.key.new"), dir.join("client.key")).unwrap();
    std::fs::rename(dir.join("client.crt.new"), dir.join("client.crt")).unwrap();
    let rotated_der = common::first_der(&rotated.cert_pem);
    let started = Instant::now();
    loop {
        let (response, _) = get_at(proxy, "/v1/me").await;
        assert_eq!(response.status(), StatusCode::OK);
        let presented = setup
            .wise
            .requests()
            .last()
            .unwrap()
            .client_cert_der
            .clone()
            .unwrap();
        if presented == rotated_der {
            break;
        }
        assert_eq!(presented, first);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A key that does not match: the rotated pair stays in use.
    std::fs::write(
        dir.join("client.key"),
        setup.client_ca.client_cert("Other").key_pem,
    )
    .unwrap();
    wait_for_metric(
        admin,
        "wisegate_config_reload_total{result=\"cert_rejected\"}",
        1.0,
    )
    .await;
    let (response, _) = get_at(proxy, "/v1/me").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        setup
            .wise
            .requests()
            .last()
            .unwrap()
            .client_cert_der
            .as_deref(),
        Some(rotated_der.as_slice())
    );
}
