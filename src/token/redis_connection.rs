//! The connection to the shared store's Redis: the URL turned into connection settings
//! once, a client built at every connect (with the password as
//! `oauth.redis_password_file` says then, and the trust anchors of
//! `oauth.redis_ca_file`), one kept multiplexed connection numbered so that a stale
//! failure never drops a newer one, the pub/sub connection, and the health record that
//! readiness reports as degraded. What is stored, and how, is [`super::redis_store`]'s.
//!
//! With a Sentinel URL every connect asks the sentinels for the master
//! ([`super::redis_sentinel`]), and the kept connection is given up, and subscriptions
//! end, when the sentinels announce a new master (`+switch-master`): after a manual
//! failover the old master accepts writes for about ten seconds more, until Sentinel
//! turns it into a replica, and a write there would be lost. A `READONLY` answer (a
//! master demoted under a kept connection) also drops the connection
//! ([`needs_new_connection`]).
//!
//! The sentinels' own password (`oauth.redis_sentinel_password_file`) is read at every
//! connect too, by [`super::redis_sentinel`].
//!
//! Never a password in a message: the store is named by its redacted URL.

use super::error::StoreError;
use super::redis_sentinel::SentinelTarget;
use crate::config::RedisStoreConfig;
use arc_swap::ArcSwapOption;
use futures_util::stream::{BoxStream, StreamExt};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long connecting, and each command, may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// What is wrong with the URL, for messages.
fn url_problem(error: &redis::RedisError) -> String {
    format!(
        "the URL is not usable ({}): fix oauth.token_store",
        error.detail().unwrap_or_else(|| error.category())
    )
}

/// Whether `error` means that the connection it came on is of no more use: Redis closed
/// it, or the node is a replica now (`READONLY`: a demoted master). The command may be
/// sent again on a new connection, which asks the sentinels anew.
pub fn needs_new_connection(error: &redis::RedisError) -> bool {
    error.is_connection_dropped()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// Where the master is: the URL's one node, or wherever the sentinels say.
enum Target {
    /// The URL's settings (with the URL's password, if it has one).
    Direct(Box<redis::ConnectionInfo>),
    Sentinel(SentinelTarget),
}

/// The kept connection: its number (counted up with each new one), and the count of
/// master switches announced when it was made.
struct Kept {
    number: u64,
    connection: Option<MultiplexedConnection>,
    switches: u64,
}

/// Where the store's Redis is and how to reach it; the kept connection; its health.
pub struct RedisConnection {
    target: Target,
    password_file: Option<PathBuf>,
    ca_pem: Option<Vec<u8>>,
    name: String,
    kept: tokio::sync::Mutex<Kept>,
    /// Master switches the sentinels announced (always 0 without Sentinel).
    switches: watch::Receiver<u64>,
    /// Handed to the watcher of the sentinels, started with the first connection.
    switch_announcer: std::sync::Mutex<Option<watch::Sender<u64>>>,
    trouble: ArcSwapOption<String>,
}

impl RedisConnection {
    /// Settings for `config` (its password file read now, to fail at start if it cannot
    /// be, and again at every connect); `ca_pem` from `oauth.redis_ca_file`. Connects
    /// lazily.
    pub fn open(
        config: &RedisStoreConfig,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<RedisConnection, StoreError> {
        let name = config.url.redacted().to_owned();
        let unusable = |message: String| StoreError::Unusable {
            store: name.clone(),
            message,
        };
        let target = match config.url.sentinel() {
            Some(url) => Target::Sentinel(SentinelTarget::new(
                url,
                config.sentinel_password_file.clone(),
                REDIS_TIMEOUT,
            )),
            None => Target::Direct(Box::new(
                config
                    .url
                    .expose()
                    .into_connection_info()
                    .map_err(|error| unusable(url_problem(&error)))?,
            )),
        };
        let (announcer, switches) = watch::channel(0);
        let connection = RedisConnection {
            target,
            password_file: config.password_file.clone(),
            ca_pem,
            name: name.clone(),
            kept: tokio::sync::Mutex::new(Kept {
                number: 0,
                connection: None,
                switches: 0,
            }),
            switches,
            switch_announcer: std::sync::Mutex::new(Some(announcer)),
            trouble: ArcSwapOption::empty(),
        };
        let password = connection.password().map_err(unusable)?;
        match &connection.target {
            Target::Direct(info) => connection.direct_client(info, password).map(drop),
            Target::Sentinel(sentinel) => sentinel
                .client(password.as_deref(), connection.ca_pem.as_deref())
                .map(drop),
        }
        .map_err(unusable)?;
        Ok(connection)
    }

    /// The password as the password file says now; `None` without a file (the URL's
    /// own password, if any, is in the settings).
    fn password(&self) -> Result<Option<String>, String> {
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let password = crate::secret::read_file("the Redis password", file)
            .map_err(|error| format!("oauth.redis_password_file: {error}"))?;
        Ok(Some(password.trim().to_owned()))
    }

    /// A client for the URL's node.
    fn direct_client(
        &self,
        info: &redis::ConnectionInfo,
        password: Option<String>,
    ) -> Result<redis::Client, String> {
        let mut info = info.clone();
        if let Some(password) = password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        match &self.ca_pem {
            Some(root_cert) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(|error| url_problem(&error))
    }

    /// A client for the master as things are now: the URL's node, or the one the
    /// sentinels name (the first call also starts watching them for switches).
    async fn client(&self) -> Result<redis::Client, String> {
        let password = self.password()?;
        match &self.target {
            Target::Direct(info) => self.direct_client(info, password),
            Target::Sentinel(sentinel) => {
                let announcer = self.switch_announcer.lock().map_or(None, |mut a| a.take());
                if let Some(announcer) = announcer {
                    tokio::spawn(sentinel.watch_switches(self.ca_pem.clone(), announcer));
                }
                sentinel
                    .master(password.as_deref(), self.ca_pem.as_deref())
                    .await
            }
        }
    }

    /// The URL without its password, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the last operation failed, while Redis has not answered since.
    pub fn trouble(&self) -> Option<Arc<String>> {
        self.trouble.load_full()
    }

    /// How many times the sentinels announced a new master since the start (0 without
    /// Sentinel).
    pub fn master_switches(&self) -> u64 {
        *self.switches.borrow()
    }

    /// Records that Redis answered: the store is no longer degraded.
    pub fn answered(&self) {
        if self.trouble.load().is_some() {
            self.trouble.store(None);
        }
    }

    /// Records that Redis could not be used (e.g. the subscription dropped).
    pub fn mark_unreachable(&self, message: &str) {
        let _ = self.failed(&message);
    }

    /// The shared connection, connecting when there is none (or when the sentinels
    /// announced a new master since it was made): the connection, its number, and
    /// whether it was made now.
    pub async fn connection(&self) -> Result<(MultiplexedConnection, u64, bool), StoreError> {
        let mut kept = self.kept.lock().await;
        let switches = *self.switches.borrow();
        if let Some(connection) = &kept.connection {
            if kept.switches == switches {
                return Ok((connection.clone(), kept.number, false));
            }
            tracing::info!(
                "the sentinels of {} announced a new master: connecting to it",
                self.name
            );
        }
        kept.connection = None;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let client = self
            .client()
            .await
            .map_err(|message| self.failed(&message))?;
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| self.failed(&error))?;
        *kept = Kept {
            number: kept.number + 1,
            connection: Some(connection.clone()),
            switches,
        };
        Ok((connection, kept.number, true))
    }

    /// Drops connection `number` if it is still the kept one (not one made since).
    pub async fn forget(&self, number: u64) {
        let mut kept = self.kept.lock().await;
        if kept.number == number {
            kept.connection = None;
        }
    }

    /// Marks the store unreachable and turns `error` into a [`StoreError`].
    pub fn failed(&self, error: &dyn std::fmt::Display) -> StoreError {
        let error = StoreError::Unreachable {
            store: self.name.clone(),
            message: error.to_string(),
        };
        self.trouble.store(Some(Arc::new(error.to_string())));
        error
    }

    /// The messages on `channel`, on a connection of their own. The stream ends when
    /// the connection does, or when the sentinels announce a new master.
    pub async fn subscribe(
        &self,
        channel: &str,
    ) -> Result<BoxStream<'static, redis::Msg>, StoreError> {
        let mut switches = self.switches.clone();
        switches.mark_unchanged();
        let client = self
            .client()
            .await
            .map_err(|message| self.failed(&message))?;
        let connecting = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(REDIS_TIMEOUT, connecting).await {
            Ok(Ok(pubsub)) => {
                let switched = async move {
                    let _ = switches.changed().await;
                };
                Ok(pubsub.into_on_message().take_until(switched).boxed())
            }
            Ok(Err(error)) => Err(self.failed(&error)),
            Err(_) => Err(self.failed(&"no answer within 2 s")),
        }
    }
}
