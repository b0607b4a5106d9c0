//! The Grafana dashboard (deploy/grafana/wisegate.json) against a real Prometheus: a
//! Prometheus scrapes a running wisegate in front of fake-wise under a little traffic,
//! and every query of every panel must return data (a panel whose query returns
//! nothing is a broken panel).

use crate::common;

use bytes::Bytes;
use common::{eventually, get_at, json, send, Harness};
use http::Request;
use http_body_util::Full;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `prometheus` process scraping one target every second, killed on drop.
struct Prometheus {
    address: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    async fn start(target: SocketAddr) -> Prometheus {
        assert!(
            Command::new("prometheus").arg("--version").output().is_ok(),
            "prometheus is not installed: `apt-get install -y prometheus` (.ci/run does it)"
        );
        // The port is picked by binding and releasing it; another process may take it
        // in between, so a Prometheus that exits at once is started again elsewhere.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let config = dir.path().join("prometheus.yml");
            std::fs::write(
                &config,
                format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wisegate\n    static_configs:\n      - targets: ['{target}']\n"),
            )
            .unwrap();
            let address = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={address}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus starts");
            let mut prometheus = Prometheus {
                address,
                child,
                _dir: dir,
            };
            let ready = eventually(Duration::from_secs(30), async || {
                if prometheus.child.try_wait().ok().flatten().is_some() {
                    return true;
                }
                tokio::net::TcpStream::connect(address).await.is_ok()
            })
            .await;
            if ready && prometheus.child.try_wait().ok().flatten().is_none() {
                return prometheus;
            }
        }
        panic!("prometheus did not start in three tries");
    }

    /// The result vector of an instant query.
    async fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .finish();
        let (response, body) = send(
            Request::get(format!("http://{}/api/v1/query?{query}", self.address))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        let answer = json(&body);
        assert_eq!(response.status(), 200, "{expr}: {answer}");
        answer["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Every `expr` of every panel, with Grafana's variables as a dashboard shows them.
fn panel_queries() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/wisegate.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", ".*")
                .replace("$instance", ".*")
                .replace("$__rate_interval", "1m");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    queries
}

#[tokio::test]
async fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let extra = "[[route]]\nname = \"profiles\"\npath = \"/v1/profiles/**\"\nfallback = true\nshadow = true\n";
    let h = Harness::builder().extra(extra).start().await;
    let prometheus = Prometheus::start(h.admin).await;
    let traffic = async || {
        for path in [
            "/v1/me",
            "/v1/profiles/1",
            "/test/status/429",
            "/test/status/503",
        ] {
            get_at(h.proxy, path).await;
        }
    };
    // A little traffic between scrapes, until Prometheus holds a few of them.
    let scraped = eventually(Duration::from_secs(60), async || {
        traffic().await;
        let samples = prometheus
            .query("count_over_time(wisegate_requests_in_flight[1m])")
            .await;
        samples
            .first()
            .and_then(|sample| sample["value"][1].as_str()?.parse::<f64>().ok())
            .is_some_and(|count| count >= 5.0)
    })
    .await;
    assert!(scraped, "Prometheus scraped wisegate's /metrics");
    traffic().await;
    let queries = panel_queries();
    assert!(queries.len() >= 15, "the dashboard has its panels");
    let mut empty = Vec::new();
    for (title, expr) in &queries {
        if prometheus.query(expr).await.is_empty() {
            empty.push(format!("{title}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panel queries with no data:\n{}",
        empty.join("\n")
    );
}
