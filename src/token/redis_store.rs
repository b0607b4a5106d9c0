//! The shared token store on Redis: several replicas keep one OAuth lineage here.
//!
//! Keys, under a prefix (`oauth.redis_key_prefix`, by default `wisegate:<client_id>:`):
//!
//! - `<prefix>tokens`: a hash with `generation` (counted up with every new token) and
//!   `tokens` (JSON, times in milliseconds: [`super::stored_tokens`]);
//! - `<prefix>refresh-lock`: the group's refresh lock ([`super::lock`]);
//! - `<prefix>settling`: set for a moment after a lineage was written back, while the
//!   other replicas write back what they hold; nobody takes the lock meanwhile
//!   ([`super::reconcile`]);
//! - channel `<prefix>updates`: every write publishes the new generation.
//!
//! Writes are Lua scripts, so a generation and its tokens change together and the
//! notification goes out with them. A refresh writes `max(stored, base) + 1`; a replica
//! writing its lineage back (after Redis lost it) writes only over nothing or an older
//! generation (compare-and-set on the generation), and starts the settling time.
//!
//! Every operation records whether Redis answered: [`RedisStore::trouble`] is what
//! readiness reports as degraded. A failed operation drops the connection; the next one
//! connects anew ([`super::redis_connection`]: the URL, the password file read again at
//! every connect, TLS, the kept connection).

use super::error::StoreError;
use super::lineage::{Lineage, TokenSet};
use super::redis_connection::{needs_new_connection, RedisConnection};
use super::stored_tokens::StoredTokens;
use crate::config::RedisStoreConfig;
use std::sync::Arc;

/// The key names of one lineage.
#[derive(Debug, Clone)]
pub struct Keys {
    pub tokens: String,
    pub lock: String,
    pub settling: String,
    pub channel: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            tokens: format!("{prefix}tokens"),
            lock: format!("{prefix}refresh-lock"),
            settling: format!("{prefix}settling"),
            channel: format!("{prefix}updates"),
        }
    }
}

/// A refresh (or a new authorization): generation `max(stored, base) + 1`, published.
/// The same tokens sent again (the first answer lost with the connection) are not a new
/// generation: their stored one is returned.
const SAVE_NEXT: &str = r"
local current = redis.call('HMGET', KEYS[1], 'generation', 'tokens')
if current[1] and current[2] == ARGV[2] then return tonumber(current[1]) end
local stored = tonumber(current[1] or '0') or 0
local next = math.max(stored, tonumber(ARGV[1])) + 1
redis.call('HSET', KEYS[1], 'generation', next, 'tokens', ARGV[2])
redis.call('PUBLISH', ARGV[3], next)
return next
";

/// A lineage written back: only over nothing or an older generation; the store then
/// settles (`KEYS[2]` for `ARGV[4]` ms) before anyone takes the lock.
const WRITE_BACK: &str = r"
local stored = redis.call('HGET', KEYS[1], 'generation')
if stored and (tonumber(stored) or 0) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'generation', ARGV[1], 'tokens', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
";

/// `EVAL script 1 key`: the caller adds the arguments. (Scripts this small are sent
/// whole each time; no EVALSHA cache to lose when Redis restarts.)
pub(super) fn eval(script: &str, key: &str) -> redis::Cmd {
    eval_keys(script, &[key])
}

/// `EVAL script N keys...`: the caller adds the arguments.
pub(super) fn eval_keys(script: &str, keys: &[&str]) -> redis::Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(script).arg(keys.len()).arg(keys);
    command
}

/// The JSON kept under `tokens` ([`StoredTokens`]; its bytes are what every release reads).
fn encode(tokens: &TokenSet) -> String {
    serde_json::to_string(&StoredTokens::new(tokens)).unwrap_or_default()
}

/// The shared store. Cheap to share behind an `Arc`; one multiplexed connection.
pub struct RedisStore {
    connection: RedisConnection,
    keys: Keys,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("store", &self.name())
            .field("keys", &self.keys.tokens)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config` (its password file read now, to fail at start if it cannot
    /// be, and again at every connect); `ca_pem` from `oauth.redis_ca_file`. Connects
    /// lazily.
    pub fn open(
        config: &RedisStoreConfig,
        ca_pem: Option<Vec<u8>>,
    ) -> Result<RedisStore, StoreError> {
        Ok(RedisStore {
            connection: RedisConnection::open(config, ca_pem)?,
            keys: Keys::new(&config.key_prefix),
        })
    }

    /// The URL without its password, for messages.
    pub fn name(&self) -> &str {
        self.connection.name()
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Why the last operation failed, while Redis has not answered since.
    pub fn trouble(&self) -> Option<Arc<String>> {
        self.connection.trouble()
    }

    /// How many times the sentinels announced a new master (0 without Sentinel).
    pub fn master_switches(&self) -> u64 {
        self.connection.master_switches()
    }

    /// Records that Redis could not be used (e.g. the subscription dropped).
    pub fn mark_unreachable(&self, message: &str) {
        self.connection.mark_unreachable(message);
    }

    /// Runs one command on the shared connection, keeping the health record. A kept
    /// connection that Redis has closed meanwhile (a restart, a failover, an idle timeout,
    /// a password rotation), or whose node answers `READONLY` (a master demoted under it),
    /// costs no failure: the command is sent once more on a new connection. Every command here can be repeated safely (reads; writes that compare
    /// generations or owners), in case the first one ran and only its answer was lost.
    pub(super) async fn run<T: redis::FromRedisValue>(
        &self,
        command: redis::Cmd,
    ) -> Result<T, StoreError> {
        let (mut connection, mut number, fresh) = self.connection.connection().await?;
        let mut result: redis::RedisResult<T> = command.query_async(&mut connection).await;
        if !fresh && result.as_ref().is_err_and(needs_new_connection) {
            tracing::debug!(
                "the kept Redis connection was closed or its node is a replica now; sending again on a new one"
            );
            self.connection.forget(number).await;
            let (mut connection, again, _) = self.connection.connection().await?;
            number = again;
            result = command.query_async(&mut connection).await;
        }
        match result {
            Ok(value) => {
                self.connection.answered();
                Ok(value)
            }
            Err(error) => {
                // Whatever broke, the next operation starts from a fresh connection.
                self.connection.forget(number).await;
                Err(self.connection.failed(&error))
            }
        }
    }

    /// Whether Redis answers (`wisegate authorize` asks before the browser step).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self.run(redis::cmd("PING")).await?;
        Ok(())
    }

    /// The stored lineage, if any.
    pub async fn load(&self) -> Result<Option<Lineage>, StoreError> {
        let mut command = redis::cmd("HMGET");
        command
            .arg(&self.keys.tokens)
            .arg("tokens")
            .arg("generation");
        let (tokens, generation): (Option<String>, Option<String>) = self.run(command).await?;
        let (Some(tokens), Some(generation)) = (tokens, generation) else {
            return Ok(None);
        };
        self.decode(&tokens, &generation).map(Some)
    }

    fn decode(&self, tokens: &str, generation: &str) -> Result<Lineage, StoreError> {
        let corrupt = |message: String| StoreError::CorruptShared {
            store: self.name().to_owned(),
            key: self.keys.tokens.clone(),
            message,
        };
        let generation = generation
            .parse::<u64>()
            .map_err(|_| corrupt("the generation is not a number".into()))?;
        // serde_json's messages quote no input values, so no token can leak through them.
        let stored: StoredTokens = serde_json::from_str(tokens).map_err(|error| {
            corrupt(format!("column {}: {:?}", error.column(), error.classify()))
        })?;
        Ok(Lineage {
            tokens: stored.into_tokens().map_err(corrupt)?,
            generation,
        })
    }

    /// Writes new tokens (a refresh based on generation `base`, or a new authorization
    /// with `base` 0) and notifies the group; returns their generation.
    pub async fn save_next(&self, base: u64, tokens: &TokenSet) -> Result<u64, StoreError> {
        let mut command = eval(SAVE_NEXT, &self.keys.tokens);
        command
            .arg(base)
            .arg(encode(tokens))
            .arg(&self.keys.channel);
        self.run(command).await
    }

    /// Writes `lineage` back unless the store holds the same or a newer generation;
    /// returns whether it was written (the store then settles).
    pub async fn write_back(&self, lineage: &Lineage) -> Result<bool, StoreError> {
        let mut command = eval_keys(WRITE_BACK, &[&self.keys.tokens, &self.keys.settling]);
        let settle_ms = super::reconcile::SETTLE_AFTER_WRITE_BACK.as_millis() as u64;
        command
            .arg(lineage.generation)
            .arg(encode(&lineage.tokens))
            .arg(&self.keys.channel)
            .arg(settle_ms);
        let written: u8 = self.run(command).await?;
        Ok(written == 1)
    }

    /// A subscription to the update channel, on its own connection.
    pub async fn subscribe(
        &self,
    ) -> Result<futures_util::stream::BoxStream<'static, redis::Msg>, StoreError> {
        self.connection.subscribe(&self.keys.channel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_in_milliseconds() {
        let tokens = super::super::stored_tokens::tests::sample();
        let config = RedisStoreConfig {
            url: crate::config::RedisUrl::parse("redis://:pw@127.0.0.1:1/0").unwrap(),
            password_file: None,
            key_prefix: "p:".into(),
            ca_file: None,
            sentinel_password_file: None,
        };
        let store = RedisStore::open(&config, None).unwrap();
        let lineage = store.decode(&encode(&tokens), "7").unwrap();
        assert_eq!(lineage.tokens, tokens);
        assert_eq!(lineage.generation, 7);
        let debug = format!("{store:?}");
        assert!(!debug.contains("pw@"), "{debug}");
        let error = store
            .decode("{\"access_token\":\"leaky\"", "1")
            .unwrap_err();
        assert!(!error.to_string().contains("leaky"), "{error}");
    }
}
