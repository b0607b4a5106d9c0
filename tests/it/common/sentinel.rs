//! A Sentinel-managed Redis, started and stopped by the test: a primary and a replica
//! (`redis-server`) and sentinels (`redis-sentinel`) watching them under [`MASTER`],
//! each on a free loopback port in a folder of its own. Failover is quick (a node
//! counts as down after [`DOWN_AFTER_MS`]); every wait is a condition with a deadline.

use super::redis_server::{free_port, RedisServer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the sentinels watch the master under.
pub const MASTER: &str = "mymaster";

/// How long a node may not answer before a sentinel counts it as down.
pub const DOWN_AFTER_MS: u64 = 1000;

struct Sentinel {
    port: u16,
    /// Its own `requirepass`.
    password: Option<String>,
    /// The folder of its config file, which it rewrites.
    _dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Sentinel {
    /// Writes a config watching `master_port` with `quorum` and starts `redis-sentinel`.
    async fn start(
        port: u16,
        dir: tempfile::TempDir,
        master_port: u16,
        quorum: usize,
        passwords: &Passwords,
    ) -> Sentinel {
        let config = dir.path().join("sentinel.conf");
        let mut text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {MASTER} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER} 2000\n\
             sentinel parallel-syncs {MASTER} 1\n",
            dir = dir.path().display()
        );
        if let Some(master) = &passwords.master {
            text.push_str(&format!("sentinel auth-pass {MASTER} {master}\n"));
        }
        if let Some(own) = &passwords.sentinels {
            // Its peers log in with the same one.
            text.push_str(&format!(
                "requirepass {own}\nsentinel sentinel-pass {own}\n"
            ));
        }
        std::fs::write(&config, text).unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel is installed (`apt-get install -y redis-sentinel`; .ci/run does it)");
        let sentinel = Sentinel {
            port,
            password: passwords.sentinels.clone(),
            _dir: dir,
            child: Some(child),
        };
        let answers = super::eventually(Duration::from_secs(10), async || {
            sentinel.master_port().await.is_some()
        })
        .await;
        assert!(answers, "redis-sentinel on {port} never answered");
        sentinel
    }

    async fn connection(&self) -> Option<redis::aio::MultiplexedConnection> {
        let url = match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        };
        let client = redis::Client::open(url).ok()?;
        client.get_multiplexed_async_connection().await.ok()
    }

    async fn ask<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Option<T> {
        let mut connection = self.connection().await?;
        command.query_async(&mut connection).await.ok()
    }

    /// The master's port as this sentinel names it.
    async fn master_port(&self) -> Option<u16> {
        let mut command = redis::cmd("SENTINEL");
        command.arg("get-master-addr-by-name").arg(MASTER);
        let (_, port): (String, u16) = self.ask(&command).await?;
        Some(port)
    }

    /// Whether this sentinel knows `replicas` replicas it does not consider down, and
    /// `others` other sentinels: what a failover needs.
    async fn ready_for_failover(&self, replicas: usize, others: usize) -> bool {
        let mut command = redis::cmd("SENTINEL");
        command.arg("replicas").arg(MASTER);
        let known: Vec<std::collections::HashMap<String, String>> =
            self.ask(&command).await.unwrap_or_default();
        let healthy = known
            .iter()
            .filter(|replica| {
                let flags = replica.get("flags").map_or("", String::as_str);
                !flags.contains("down")
                    && !flags.contains("disconnected")
                    && replica.get("master-link-status").map(String::as_str) == Some("ok")
            })
            .count();
        let mut command = redis::cmd("SENTINEL");
        command.arg("sentinels").arg(MASTER);
        let peers: Vec<redis::Value> = self.ask(&command).await.unwrap_or_default();
        healthy >= replicas && peers.len() >= others
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The passwords of a group: the nodes' `requirepass` (and `masterauth`), and the
/// sentinels' own `requirepass`.
#[derive(Clone, Default)]
pub struct Passwords {
    pub master: Option<String>,
    pub sentinels: Option<String>,
}

/// A primary, a replica and `count` sentinels.
pub struct SentinelGroup {
    /// The Redis nodes, the first one the primary at the start.
    pub nodes: Vec<RedisServer>,
    sentinels: Vec<Sentinel>,
    passwords: Passwords,
}

impl SentinelGroup {
    /// Starts the nodes and `count` sentinels (quorum: a majority), and waits until a
    /// failover could happen (the replica in sync and known to every sentinel).
    pub async fn start(count: usize) -> SentinelGroup {
        SentinelGroup::start_with(count, Passwords::default()).await
    }

    /// [`SentinelGroup::start`] with passwords on the nodes and on the sentinels.
    pub async fn start_with(count: usize, passwords: Passwords) -> SentinelGroup {
        let master = passwords.master.as_deref();
        let primary = RedisServer::start_node(None, master).await;
        let replica = RedisServer::start_node(Some(primary.port), master).await;
        let master_port = primary.port;
        let mut sentinels = Vec::new();
        for _ in 0..count {
            let dir = tempfile::tempdir().unwrap();
            let quorum = count / 2 + 1;
            sentinels
                .push(Sentinel::start(free_port(), dir, master_port, quorum, &passwords).await);
        }
        let group = SentinelGroup {
            nodes: vec![primary, replica],
            sentinels,
            passwords,
        };
        group.wait_ready_for_failover().await;
        group
    }

    /// `redis+sentinel://` naming every sentinel, database 0.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("127.0.0.1:{}", sentinel.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER}/0", hosts.join(","))
    }

    /// Waits until every sentinel sees a replica in sync and the other sentinels.
    pub async fn wait_ready_for_failover(&self) {
        let others = self.sentinels.len() - 1;
        let ready = super::eventually(Duration::from_secs(30), async || {
            for sentinel in &self.sentinels {
                if !sentinel.ready_for_failover(1, others).await {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(
            ready,
            "the sentinels never saw a replica in sync and each other"
        );
    }

    /// The master's port as the first sentinel that answers names it.
    pub async fn master_port(&self) -> u16 {
        for sentinel in &self.sentinels {
            if let Some(port) = sentinel.master_port().await {
                return port;
            }
        }
        panic!("no sentinel answers");
    }

    /// The node listening on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("a node of the group")
    }

    /// `SENTINEL FAILOVER`: promote the replica although the master is healthy.
    pub async fn failover(&self) {
        let mut command = redis::cmd("SENTINEL");
        command.arg("failover").arg(MASTER);
        let answer: Option<String> = self.sentinels[0].ask(&command).await;
        assert_eq!(answer.as_deref(), Some("OK"), "SENTINEL FAILOVER refused");
    }

    /// Waits until every sentinel names a master other than `old` and that node says it
    /// is the master (`ROLE`); returns its port.
    pub async fn wait_for_master_other_than(&self, old: u16) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut named = Vec::new();
            for sentinel in &self.sentinels {
                named.push(sentinel.master_port().await);
            }
            if let Some(Some(port)) = named.first().copied() {
                if port != old
                    && named.iter().all(|p| *p == Some(port))
                    && self.is_master(port).await
                {
                    return port;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new master: the sentinels name {named:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the node on `port` says it is a master (`ROLE`).
    pub async fn is_master(&self, port: u16) -> bool {
        let Some(node) = self.nodes.iter().find(|node| node.port == port) else {
            return false;
        };
        let mut connection = node.connection().await;
        let role: Option<Vec<redis::Value>> =
            redis::cmd("ROLE").query_async(&mut connection).await.ok();
        matches!(role.as_deref().and_then(|r| r.first()), Some(redis::Value::BulkString(b)) if b == b"master")
    }

    /// Stops every sentinel (the nodes are left as they are, as an operator moving the
    /// master by hand would leave them).
    pub fn stop_sentinels(&mut self) {
        for sentinel in &mut self.sentinels {
            sentinel.kill();
        }
    }

    /// Starts the stopped sentinels again on their ports, watching `master` afresh.
    pub async fn start_sentinels_watching(&mut self, master: u16) {
        let count = self.sentinels.len();
        let ports: Vec<u16> = self
            .sentinels
            .drain(..)
            .map(|sentinel| sentinel.port)
            .collect();
        for port in ports {
            let dir = tempfile::tempdir().unwrap();
            let quorum = count / 2 + 1;
            self.sentinels
                .push(Sentinel::start(port, dir, master, quorum, &self.passwords).await);
        }
    }
}
