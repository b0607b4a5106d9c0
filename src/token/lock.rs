//! The group's refresh lock in Redis: `SET key owner NX PX ttl` with a random owner (a Lua
//! script, so that sending it twice still takes it).
//! The expiry means a crashed holder cannot block the group for longer than [`LOCK_TTL`];
//! a live holder extends it while its call to Wise takes long. Release and extension
//! happen only while the key still holds our owner value (Lua compare-and-delete), so a
//! holder whose lock expired never removes its successor's.

use super::redis_store::{eval, RedisStore};
use super::store::StoreError;
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long the lock lives without being extended.
pub const LOCK_TTL: Duration = Duration::from_secs(15);

/// `SET NX PX`, and "taken" also when the key already holds our owner value: the store
/// may send a command twice (its first answer lost with the connection), and the second
/// send must not find the lock held by "somebody else".
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
";
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

const EXTEND: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
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
    let mut command = eval(ACQUIRE, &store.keys().lock);
    command.arg(&owner).arg(ttl_ms());
    let taken: i64 = store.run(command).await?;
    Ok((taken == 1).then(|| LockGuard {
        store: store.clone(),
        owner,
    }))
}

/// How long the lock still lives; `None` when nobody holds it.
pub async fn remaining(store: &RedisStore) -> Result<Option<Duration>, StoreError> {
    let mut command = redis::cmd("PTTL");
    command.arg(&store.keys().lock);
    let ms: i64 = store.run(command).await?;
    Ok(match ms {
        -2 => None,
        // No expiry (set by hand?): treat as held for a full TTL.
        -1 => Some(LOCK_TTL),
        ms => Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

impl LockGuard {
    /// Runs `work`, extending the lock every third of its TTL until `work` is done.
    pub async fn hold_while<T>(&self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tokio::time::sleep(LOCK_TTL / 3) => {
                    if !self.extend().await {
                        tracing::warn!("the refresh lock could not be extended: another replica may refresh as well");
                    }
                }
            }
        }
    }

    async fn extend(&self) -> bool {
        let mut command = eval(EXTEND, &self.store.keys().lock);
        command.arg(&self.owner).arg(ttl_ms());
        let extended: Result<i64, _> = self.store.run(command).await;
        extended.is_ok_and(|n| n == 1)
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
