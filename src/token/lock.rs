//! The group's refresh lock in Redis: `SET key owner NX PX ttl` with a random owner (a Lua
//! script, so that sending it twice still takes it).
//! The expiry means a crashed holder cannot block the group for longer than [`LOCK_TTL`];
//! a live holder extends it while its call to Wise takes long. Release and extension
//! happen only while the key still holds our owner value (Lua compare-and-delete), so a
//! holder whose lock expired never removes its successor's.
//!
//! While the store settles after a write-back (`<prefix>settling`, see
//! [`super::reconcile`]) nobody takes the lock; a holder whose call to Wise is in flight
//! takes it again if Redis lost it, every [`EXTEND_EVERY`], so that nobody else can
//! refresh from the generation it is spending.

use super::error::StoreError;
use super::redis_store::{eval, eval_keys, RedisStore};
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long the lock lives without being extended.
pub const LOCK_TTL: Duration = Duration::from_secs(15);

/// How often a holder extends the lock (and takes it again if the store lost it)
/// while its call to Wise is in flight: well inside the settling time.
pub const EXTEND_EVERY: Duration = Duration::from_millis(250);

/// `SET NX PX`, and "taken" also when the key already holds our owner value: the store
/// may send a command twice (its first answer lost with the connection), and the second
/// send must not find the lock held by "somebody else". Never while the store settles
/// (`KEYS[2]`).
const ACQUIRE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
";

/// The longer of the lock's and the settling time's remaining milliseconds: -2 when
/// neither is set, -1 for a lock without expiry.
const REMAINING: &str = r"
local lock = redis.call('PTTL', KEYS[1])
local settling = redis.call('PTTL', KEYS[2])
if lock == -1 then return -1 end
return math.max(lock, settling)
";
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Extends the lock if it is ours; with `ARGV[3]` = 1 also takes it again when the key
/// is gone (Redis lost it while our call to Wise is in flight).
const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if ARGV[3] == '1' and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
";

/// A held lock. Release it with [`LockGuard::release`]; if it is dropped instead (the
/// task was cancelled), it expires after [`LOCK_TTL`].
#[derive(Debug)]
pub struct LockGuard {
    store: Arc<RedisStore>,
    owner: String,
}

fn ttl_ms() -> u64 {
    u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX)
}

/// Takes the lock if nobody holds it.
pub async fn try_acquire(store: &Arc<RedisStore>) -> Result<Option<LockGuard>, StoreError> {
    let owner = format!("{:032x}", rand::rng().random::<u128>());
    let keys = store.keys();
    let mut command = eval_keys(ACQUIRE, &[&keys.lock, &keys.settling]);
    command.arg(&owner).arg(ttl_ms());
    let taken: i64 = store.run(command).await?;
    Ok((taken == 1).then(|| LockGuard {
        store: store.clone(),
        owner,
    }))
}

/// How long the lock still lives, or the store still settles; `None` when neither.
pub async fn remaining(store: &RedisStore) -> Result<Option<Duration>, StoreError> {
    let keys = store.keys();
    let command = eval_keys(REMAINING, &[&keys.lock, &keys.settling]);
    let ms: i64 = store.run(command).await?;
    Ok(match ms {
        -2 => None,
        // No expiry (set by hand?): treat as held for a full TTL.
        -1 => Some(LOCK_TTL),
        ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// Whether the store is settling after a write-back.
pub async fn settling(store: &RedisStore) -> Result<bool, StoreError> {
    let mut command = redis::cmd("EXISTS");
    command.arg(&store.keys().settling);
    let exists: i64 = store.run(command).await?;
    Ok(exists == 1)
}

impl LockGuard {
    /// Runs `work` (the call to Wise), extending the lock every [`EXTEND_EVERY`] until
    /// `work` is done, and taking it again if the store lost it meanwhile.
    pub async fn hold_while<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        let mut warned = false;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tokio::time::sleep(EXTEND_EVERY) => {
                    if !self.extend(true).await.unwrap_or(false) && !warned {
                        warned = true;
                        tracing::warn!("the refresh lock could not be extended: another replica may refresh as well");
                    }
                }
            }
        }
    }

    /// Whether the lock is still ours (extended if so).
    pub async fn still_held(&self) -> Result<bool, StoreError> {
        self.extend(false).await
    }

    async fn extend(&self, take_again: bool) -> Result<bool, StoreError> {
        let mut command = eval(EXTEND, &self.store.keys().lock);
        command
            .arg(&self.owner)
            .arg(ttl_ms())
            .arg(if take_again { "1" } else { "0" });
        let extended: i64 = self.store.run(command).await?;
        Ok(extended == 1)
    }

    /// Releases the lock if it is still ours. A failure is logged: the lock expires.
    pub async fn release(self) {
        let mut command = eval(RELEASE, &self.store.keys().lock);
        command.arg(&self.owner);
        let released: Result<i64, _> = self.store.run(command).await;
        if let Err(error) = released {
            tracing::warn!("{error}; the refresh lock expires by itself");
        }
    }
}
