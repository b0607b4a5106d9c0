//! Where an account's OAuth lineage is kept: a file, or a Redis server shared by
//! replicas, whose URL may carry a password that only [`RedisUrl::expose`] returns.

use super::sentinel_url::{is_sentinel_url, SentinelUrl};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the OAuth lineage is kept (`oauth.token_store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStoreConfig {
    /// A JSON file, written atomically with mode 0600: one process.
    File(PathBuf),
    /// A Redis server shared by several replicas (`redis://` or `rediss://`, or a
    /// Sentinel-managed one: `redis+sentinel://`, `rediss+sentinel://`).
    Redis(RedisStoreConfig),
}

impl TokenStoreConfig {
    /// The file, when the store is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            TokenStoreConfig::File(path) => Some(path),
            TokenStoreConfig::Redis(_) => None,
        }
    }
}

/// A shared token store on Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStoreConfig {
    pub url: RedisUrl,
    /// `oauth.redis_password_file`: the password, when it is not in the URL.
    pub password_file: Option<PathBuf>,
    /// `oauth.redis_key_prefix`; by default `wisegate:<client_id>:`.
    pub key_prefix: String,
    /// `oauth.redis_ca_file`: trust anchors (PEM) for `rediss://` instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `oauth.redis_sentinel_password_file`: the password the sentinels themselves
    /// require (their `requirepass`), for a Sentinel URL.
    pub sentinel_password_file: Option<PathBuf>,
}

/// A `redis://` or `rediss://` URL, or a Sentinel one ([`SentinelUrl`]), that may carry
/// a password: `Debug` and `Display` show it without the password, which only
/// [`RedisUrl::expose`] returns.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    full: String,
    redacted: String,
}

impl RedisUrl {
    /// Parses `text`; `None` unless it is a `redis://` or `rediss://` URL with a host,
    /// or a Sentinel URL.
    pub fn parse(text: &str) -> Option<RedisUrl> {
        if is_sentinel_url(text) {
            let sentinel = SentinelUrl::parse(text).ok()?;
            return Some(RedisUrl {
                full: text.to_owned(),
                redacted: sentinel.redacted(),
            });
        }
        let mut url = redis::parse_redis_url(text)?;
        if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
            return None;
        }
        let full = text.to_owned();
        if url.password().is_some() {
            url.set_password(Some("redacted")).ok()?;
        }
        Some(RedisUrl {
            full,
            redacted: url.to_string(),
        })
    }

    /// The URL as written, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.full
    }

    /// The URL with its password replaced by `redacted`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn has_password(&self) -> bool {
        match self.sentinel() {
            Some(sentinel) => sentinel.password.is_some(),
            None => redis::parse_redis_url(&self.full).is_some_and(|url| url.password().is_some()),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.full.starts_with("rediss://") || self.full.starts_with("rediss+sentinel://")
    }

    /// The sentinels and master, for a Sentinel URL.
    pub fn sentinel(&self) -> Option<SentinelUrl> {
        SentinelUrl::parse(&self.full).ok()
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}
