//! The connection to the shared store's Redis: the URL turned into connection settings
//! once, a client built at every connect (with the password as
//! `oauth.redis_password_file` says then, and the trust anchors of
//! `oauth.redis_ca_file`), one kept multiplexed connection numbered so that a stale
//! failure never drops a newer one, the pub/sub connection, and the health record that
//! readiness reports as degraded. What is stored, and how, is [`super::redis_store`]'s.
//!
//! Never a password in a message: the store is named by its redacted URL.

use super::store::StoreError;
use crate::config::RedisStoreConfig;
use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting, and each command, may take before Redis counts as unreachable.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// What is wrong with the URL, for messages.
fn url_problem(error: &redis::RedisError) -> String {
    format!(
        "the URL is not usable ({}): fix oauth.token_store",
        error.detail().unwrap_or_else(|| error.category())
    )
}

/// Where the store's Redis is and how to reach it; the kept connection; its health.
pub struct RedisConnection {
    /// The URL's settings (with the URL's password, if it has one).
    info: redis::ConnectionInfo,
    password_file: Option<PathBuf>,
    ca_pem: Option<Vec<u8>>,
    name: String,
    /// The kept connection and its number (counted up with each new one).
    connection: tokio::sync::Mutex<(u64, Option<MultiplexedConnection>)>,
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
        let info = config
            .url
            .expose()
            .into_connection_info()
            .map_err(|error| StoreError::Unusable {
                store: name.clone(),
                message: url_problem(&error),
            })?;
        let connection = RedisConnection {
            info,
            password_file: config.password_file.clone(),
            ca_pem,
            name,
            connection: tokio::sync::Mutex::new((0, None)),
            trouble: ArcSwapOption::empty(),
        };
        connection
            .client()
            .map_err(|message| StoreError::Unusable {
                store: connection.name.clone(),
                message,
            })?;
        Ok(connection)
    }

    /// A client with the password as the password file says now.
    fn client(&self) -> Result<redis::Client, String> {
        let mut info = self.info.clone();
        if let Some(file) = &self.password_file {
            let password = crate::secret::read_file("the Redis password", file)
                .map_err(|error| format!("oauth.redis_password_file: {error}"))?;
            let settings = info.redis_settings().clone().set_password(password.trim());
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

    /// The URL without its password, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the last operation failed, while Redis has not answered since.
    pub fn trouble(&self) -> Option<Arc<String>> {
        self.trouble.load_full()
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

    /// The shared connection, connecting when there is none: the connection, its number,
    /// and whether it was made now.
    pub async fn connection(&self) -> Result<(MultiplexedConnection, u64, bool), StoreError> {
        let mut slot = self.connection.lock().await;
        if let (number, Some(connection)) = &*slot {
            return Ok((connection.clone(), *number, false));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let client = self.client().map_err(|message| self.failed(&message))?;
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|error| self.failed(&error))?;
        let number = slot.0 + 1;
        *slot = (number, Some(connection.clone()));
        Ok((connection, number, true))
    }

    /// Drops connection `number` if it is still the kept one (not one made since).
    pub async fn forget(&self, number: u64) {
        let mut slot = self.connection.lock().await;
        if slot.0 == number {
            slot.1 = None;
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

    /// A subscription to `channel`, on its own connection.
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, StoreError> {
        let client = self.client().map_err(|message| self.failed(&message))?;
        let connecting = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(REDIS_TIMEOUT, connecting).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(error)) => Err(self.failed(&error)),
            Err(_) => Err(self.failed(&"no answer within 2 s")),
        }
    }
}
