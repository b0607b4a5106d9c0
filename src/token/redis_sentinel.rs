//! Finding the store's master through Redis Sentinel (`redis+sentinel://` and
//! `rediss+sentinel://` URLs, [`crate::config::SentinelUrl`]).
//!
//! Every new connection asks the sentinels again which node is the master: the redis
//! crate's `SentinelClient` asks them (several at once, in the order written), skips a
//! master they flag down, and connects to the one named to check that `ROLE` says
//! master, so a failover is followed at the next connect. The crate keeps no connection
//! to a master itself and does not notice a switch: [`SentinelTarget::watch_switches`]
//! subscribes to a sentinel's `+switch-master` events and counts the switches of this
//! master, and [`super::redis_connection`] gives up its kept connection at each one
//! (and on a `READONLY` answer), so the next command rediscovers.
//!
//! Credentials: the URL's user and password, or `oauth.redis_password_file`, are for the
//! master (and its replicas); the sentinels get the password of
//! `oauth.redis_sentinel_password_file` (their own `requirepass`, read again at every
//! connect so that it can be rotated), or none. With TLS, the CA of
//! `oauth.redis_ca_file` is trusted for both the sentinels and the master.

use crate::config::SentinelUrl;
use futures_util::StreamExt;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsCertificates, TlsMode};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The wait before subscribing again to a sentinel after losing it.
const RESUBSCRIBE_WAIT: Duration = Duration::from_secs(1);

/// The sentinels to ask and what to tell the master.
#[derive(Clone)]
pub struct SentinelTarget {
    url: Arc<SentinelUrl>,
    /// `oauth.redis_sentinel_password_file`.
    password_file: Option<Arc<PathBuf>>,
    /// How long asking the sentinels (for the master, or to subscribe) may take: the
    /// connection's timeout, which [`super::redis_connection`] hands over.
    timeout: Duration,
}

impl SentinelTarget {
    pub fn new(
        url: SentinelUrl,
        password_file: Option<PathBuf>,
        timeout: Duration,
    ) -> SentinelTarget {
        SentinelTarget {
            url: Arc::new(url),
            password_file: password_file.map(Arc::new),
            timeout,
        }
    }

    /// The sentinels' password as its file says now.
    fn sentinel_password(&self) -> Result<Option<String>, String> {
        let Some(file) = &self.password_file else {
            return Ok(None);
        };
        let password = crate::secret::read_file("the Redis Sentinel password", file)
            .map_err(|error| format!("oauth.redis_sentinel_password_file: {error}"))?;
        Ok(Some(password.trim().to_owned()))
    }

    /// The crate's client for the master, `password` (the URL's or the file's), the
    /// sentinels' password and `ca_pem` applied. No connection yet: this is also how
    /// `open` checks the settings.
    pub fn client(
        &self,
        password: Option<&str>,
        ca_pem: Option<&[u8]>,
    ) -> Result<SentinelClient, String> {
        let url = &self.url;
        let sentinels = url.sentinels.iter().map(|(host, port)| match url.tls {
            false => ConnectionAddr::Tcp(host.clone(), *port),
            true => ConnectionAddr::TcpTls {
                host: host.clone(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
        });
        let mut builder =
            SentinelClientBuilder::new(sentinels, &*url.master_name, SentinelServerType::Master)
                .map_err(|error| problem(&error))?
                .set_client_to_redis_db(url.db);
        if let Some(username) = &url.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = password.or(url.password.as_deref()) {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(password) = self.sentinel_password()? {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if url.tls {
            builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
            if let Some(ca_pem) = ca_pem {
                let trust = || TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca_pem.to_vec()),
                };
                builder = builder
                    .set_client_to_sentinel_certificates(trust())
                    .set_client_to_redis_certificates(trust());
            }
        }
        builder.build().map_err(|error| problem(&error))
    }

    /// A client for the node the sentinels name as the master now (checked with `ROLE`).
    pub async fn master(
        &self,
        password: Option<&str>,
        ca_pem: Option<&[u8]>,
    ) -> Result<redis::Client, String> {
        let mut sentinel = self.client(password, ca_pem)?;
        let name = &self.url.master_name;
        match tokio::time::timeout(self.timeout, sentinel.async_get_client()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(error)) => Err(format!(
                "the sentinels named no usable master `{name}`: {}",
                detail(&error)
            )),
            Err(_) => Err(format!(
                "the sentinels named no usable master `{name}` within {} s",
                self.timeout.as_secs()
            )),
        }
    }

    /// Counts this master's switches into `announcer` until every receiver is gone:
    /// subscribed to `+switch-master` on the first sentinel that answers, and again on
    /// the next after losing it.
    pub fn watch_switches(
        &self,
        ca_pem: Option<Vec<u8>>,
        announcer: watch::Sender<u64>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let target = self.clone();
        async move {
            loop {
                let subscribing = target.switch_events(ca_pem.as_deref());
                if let Ok(Ok(mut events)) = tokio::time::timeout(target.timeout, subscribing).await
                {
                    loop {
                        tokio::select! {
                            _ = announcer.closed() => return,
                            event = events.next() => match event {
                                Some(event) if target.is_switch(&event) => {
                                    tracing::info!("a sentinel announced a new master `{}`", target.url.master_name);
                                    announcer.send_modify(|switches| *switches += 1);
                                }
                                Some(_) => {}
                                None => break,
                            },
                        }
                    }
                }
                tokio::select! {
                    _ = announcer.closed() => return,
                    _ = tokio::time::sleep(RESUBSCRIBE_WAIT) => {}
                }
            }
        }
    }

    /// `+switch-master` events from the first sentinel that answers.
    async fn switch_events(
        &self,
        ca_pem: Option<&[u8]>,
    ) -> Result<futures_util::stream::BoxStream<'static, redis::Msg>, String> {
        let mut sentinels = self.client(None, ca_pem)?;
        let sentinel = sentinels
            .async_get_sentinel_client()
            .await
            .map_err(|error| detail(&error))?;
        let mut pubsub = sentinel
            .get_async_pubsub()
            .await
            .map_err(|error| detail(&error))?;
        pubsub
            .subscribe("+switch-master")
            .await
            .map_err(|error| detail(&error))?;
        Ok(pubsub.into_on_message().boxed())
    }

    /// Whether `event` (`<name> <old ip> <old port> <new ip> <new port>`) is this
    /// master's.
    fn is_switch(&self, event: &redis::Msg) -> bool {
        let payload: String = event.get_payload().unwrap_or_default();
        payload.split_whitespace().next() == Some(self.url.master_name.as_str())
    }
}

fn detail(error: &redis::RedisError) -> String {
    match error.detail() {
        Some(detail) => format!("{} ({detail})", error.category()),
        None => error.to_string(),
    }
}

fn problem(error: &redis::RedisError) -> String {
    format!(
        "the Sentinel settings are not usable ({}): fix oauth.token_store",
        detail(error)
    )
}
