//! `oauth.token_store`: a file path, or a `redis://` / `rediss://` URL (or a Sentinel
//! one, `redis+sentinel://` / `rediss+sentinel://`) with the `oauth.redis_*` keys that
//! only apply to it. The URL is never echoed in a problem: it may carry a password.

use super::checker::Checker;
use crate::config::{
    is_sentinel_url, RedisStoreConfig, RedisUrl, SentinelUrl, TokenStoreConfig, SENTINEL_EXAMPLE,
};
use std::path::PathBuf;

/// The `oauth.redis_*` keys as written.
pub(super) struct RedisKeys<'a> {
    pub(super) password_file: Option<&'a str>,
    pub(super) key_prefix: Option<&'a str>,
    pub(super) ca_file: Option<&'a str>,
    pub(super) sentinel_password_file: Option<&'a str>,
}

/// `oauth.token_store` and the keys that only make sense with a Redis store.
pub(super) fn token_store(
    c: &mut Checker<'_>,
    store_key: &str,
    store: Option<&str>,
    keys: RedisKeys<'_>,
    client_id: &str,
) -> TokenStoreConfig {
    let redis_text = store
        .filter(|s| s.starts_with("redis://") || s.starts_with("rediss://") || is_sentinel_url(s));
    match redis_text {
        Some(text) => redis_store(c, store_key, text, keys, client_id),
        None => file_store(c, store_key, store, &keys),
    }
}

/// A store that is not a Redis URL: a file path, with none of the `oauth.redis_*` keys.
fn file_store(
    c: &mut Checker<'_>,
    store_key: &str,
    store: Option<&str>,
    keys: &RedisKeys<'_>,
) -> TokenStoreConfig {
    if let Some(other) = store.filter(|s| s.contains("://")) {
        let scheme = other.split("://").next().unwrap_or_default();
        c.problem(
            store_key,
            format!("`{scheme}://...` is neither a file path nor a redis://, rediss://, redis+sentinel:// or rediss+sentinel:// URL"),
        );
    }
    for (key, set) in [
        ("oauth.redis_password_file", keys.password_file.is_some()),
        ("oauth.redis_key_prefix", keys.key_prefix.is_some()),
        ("oauth.redis_ca_file", keys.ca_file.is_some()),
        (
            "oauth.redis_sentinel_password_file",
            keys.sentinel_password_file.is_some(),
        ),
    ] {
        if set {
            c.problem(
                key,
                format!("only applies when {store_key} is a redis:// or rediss:// URL"),
            );
        }
    }
    TokenStoreConfig::File(c.path(store_key, store).unwrap_or_default())
}

/// A Redis store: its URL (`text`, never echoed: it may carry a password) and the
/// `oauth.redis_*` keys that go with it.
fn redis_store(
    c: &mut Checker<'_>,
    store_key: &str,
    text: &str,
    keys: RedisKeys<'_>,
    client_id: &str,
) -> TokenStoreConfig {
    let url = redis_url(c, store_key, text);
    let password_file = c.path("oauth.redis_password_file", keys.password_file);
    if password_file.is_some() && url.as_ref().is_some_and(RedisUrl::has_password) {
        c.problem(
            "oauth.redis_password_file",
            format!("the Redis URL in {store_key} already has a password: use one or the other"),
        );
    }
    let ca_file = c.path("oauth.redis_ca_file", keys.ca_file);
    if ca_file.is_some() && url.as_ref().is_some_and(|url| !url.is_tls()) {
        c.problem(
            "oauth.redis_ca_file",
            "only applies to a rediss:// or rediss+sentinel:// (TLS) token_store",
        );
    }
    let sentinel_password_file = c.path(
        "oauth.redis_sentinel_password_file",
        keys.sentinel_password_file,
    );
    if sentinel_password_file.is_some() && !is_sentinel_url(text) {
        c.problem(
            "oauth.redis_sentinel_password_file",
            "only applies to a redis+sentinel:// or rediss+sentinel:// token_store: the password the sentinels themselves require",
        );
    }
    let key_prefix = key_prefix(c, keys.key_prefix, client_id);
    match url {
        Some(url) => TokenStoreConfig::Redis(RedisStoreConfig {
            url,
            password_file,
            key_prefix,
            ca_file,
            sentinel_password_file,
        }),
        None => TokenStoreConfig::File(PathBuf::new()),
    }
}

/// The store's URL, a Sentinel one or a direct one; `None` (with a problem) when it is
/// not usable. Never echoes the URL itself: it may carry a password.
fn redis_url(c: &mut Checker<'_>, store_key: &str, text: &str) -> Option<RedisUrl> {
    match SentinelUrl::parse(text) {
        Err(problem) if is_sentinel_url(text) => {
            c.problem(
                store_key,
                format!("{problem}; write e.g. \"{SENTINEL_EXAMPLE}\""),
            );
            None
        }
        Ok(_) => RedisUrl::parse(text),
        Err(_) => direct_url(c, store_key, text),
    }
}

/// `oauth.redis_key_prefix`: non-empty, no white space; by default `wisegate:<client_id>:`.
fn key_prefix(c: &mut Checker<'_>, key_prefix: Option<&str>, client_id: &str) -> String {
    match key_prefix {
        Some(prefix) if prefix.is_empty() || prefix.chars().any(char::is_whitespace) => {
            c.problem(
                "oauth.redis_key_prefix",
                "must be non-empty and without white space, e.g. \"wisegate:yourapp:\"",
            );
            String::new()
        }
        Some(prefix) => prefix.to_owned(),
        None => format!("wisegate:{client_id}:"),
    }
}

/// A `redis://` or `rediss://` URL, checked by the crate.
fn direct_url(c: &mut Checker<'_>, store_key: &str, text: &str) -> Option<RedisUrl> {
    match RedisUrl::parse(text) {
        Some(url) => match redis::Client::open(url.expose()) {
            Ok(_) => Some(url),
            Err(error) => {
                let detail = error.detail().unwrap_or_else(|| error.category());
                c.problem(
                    store_key,
                    format!("the Redis URL is not usable ({detail}); write e.g. \"redis://redis.example.svc:6379/0\""),
                );
                None
            }
        },
        None => {
            c.problem(
                store_key,
                "the Redis URL cannot be parsed: write e.g. \"redis://redis.example.svc:6379/0\" or \"rediss://user@host:6380/0\" (percent-encode special characters of a password, or use oauth.redis_password_file)",
            );
            None
        }
    }
}
