//! A real `redis-server` on a free loopback port, started and stopped by the test:
//! no persistence, so a restart comes back empty (as a Redis without persistence does).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RedisServer {
    pub port: u16,
    password: Option<String>,
    /// TLS only: the server's certificate and key files and the CA that issued them.
    tls: Option<Tls>,
    /// A node of a replicated group: its own folder (replication writes files there)
    /// and the primary it replicates, if any.
    dir: Option<tempfile::TempDir>,
    replica_of: Option<u16>,
    child: Option<Child>,
}

pub struct Tls {
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
    pub ca_pem: String,
}

impl RedisServer {
    /// Starts `redis-server` on a free port; `password` sets `requirepass`.
    pub async fn start(password: Option<&str>) -> RedisServer {
        RedisServer::start_with(password, None).await
    }

    /// Starts `redis-server` speaking only TLS (no client certificates asked).
    pub async fn start_tls(tls: Tls) -> RedisServer {
        RedisServer::start_with(None, Some(tls)).await
    }

    async fn start_with(password: Option<&str>, tls: Option<Tls>) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            password: password.map(str::to_owned),
            tls,
            dir: None,
            replica_of: None,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// Starts a node of a replicated group (see [`super::sentinel`]) on a free port, in
    /// a folder of its own, replicating `replica_of` if given; `password` is both its
    /// `requirepass` and the `masterauth` it replicates with.
    pub async fn start_node(replica_of: Option<u16>, password: Option<&str>) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            password: password.map(str::to_owned),
            tls: None,
            dir: Some(tempfile::tempdir().unwrap()),
            replica_of,
            child: None,
        };
        server.spawn().await;
        server
    }

    /// Starts a killed node again, empty, as a replica of `primary`.
    pub async fn restart_as_replica_of(&mut self, primary: u16) {
        self.kill();
        self.replica_of = Some(primary);
        self.spawn().await;
    }

    async fn spawn(&mut self) {
        assert!(
            Path::new("/usr/bin/redis-server").exists() || which("redis-server"),
            "redis-server is not installed: `apt-get install -y redis-server` (.ci/run does it)"
        );
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .args(["--tls-auth-clients", "no"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(
                self.dir
                    .as_ref()
                    .map_or(std::env::temp_dir(), |dir| dir.path().to_owned()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
            command.args(["--masterauth", password]);
        }
        if let Some(primary) = self.replica_of {
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        self.child = Some(command.spawn().expect("redis-server starts"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping().await {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if self.tls.is_some() {
            // Listening is enough here; the TLS handshake is the test's business.
            return true;
        }
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&format!("AUTH {password}\r\n"));
        }
        request.push_str("PING\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut answer = [0u8; 64];
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut answer[read..]))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(n)) => read += n,
                Err(_) => {}
            }
            if String::from_utf8_lossy(&answer[..read]).contains("+PONG") {
                return true;
            }
        }
        false
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` with TLS), with the password if any.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}/0", self.port),
            None => format!("{scheme}://127.0.0.1:{}/0", self.port),
        }
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// A client connection for looking at what the store holds.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = match &self.tls {
            None => redis::Client::open(self.url()).unwrap(),
            Some(tls) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(tls.ca_pem.clone().into_bytes()),
                },
            )
            .unwrap(),
        };
        client
            .get_multiplexed_async_connection()
            .await
            .expect("the test connects to redis-server")
    }

    /// The generation stored under `<prefix>tokens`, if any.
    pub async fn generation(&self, prefix: &str) -> Option<u64> {
        let mut connection = self.connection().await;
        let generation: Option<String> = redis::cmd("HGET")
            .arg(format!("{prefix}tokens"))
            .arg("generation")
            .query_async(&mut connection)
            .await
            .unwrap();
        generation.map(|g| g.parse().unwrap())
    }
}

impl RedisServer {
    /// Sets a new `requirepass` and closes every other client's connection, as rotating a
    /// Redis password does: clients must log in again with the new one.
    pub async fn rotate_password(&mut self, password: &str) {
        let mut connection = self.connection().await;
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(password)
            .query_async(&mut connection)
            .await
            .unwrap();
        for kind in ["normal", "pubsub"] {
            let _: u64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg(kind)
                .query_async(&mut connection)
                .await
                .unwrap();
        }
        self.password = Some(password.to_owned());
    }

    /// The stored access token's expiry, Unix seconds, if a lineage is stored.
    pub async fn stored_expiry(&self, prefix: &str) -> Option<u64> {
        let mut connection = self.connection().await;
        let tokens: Option<String> = redis::cmd("HGET")
            .arg(format!("{prefix}tokens"))
            .arg("tokens")
            .query_async(&mut connection)
            .await
            .unwrap();
        let tokens: serde_json::Value = serde_json::from_str(&tokens?).unwrap();
        tokens["access_token_expires_at_ms"]
            .as_u64()
            .map(|ms| ms / 1000)
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).exists()))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
