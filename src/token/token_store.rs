//! [`TokenStore`]: the choice of where the lineage lives, a file ([`FileStore`], one
//! process) or Redis ([`RedisStore`], a group of replicas), behind the few operations
//! every user of a store needs: load, store a new authorization, describe it, say what
//! is wrong with it. What every store holds is [`super::lineage`]'s. The group refresh
//! protocol itself is the manager's ([`super::group`]).

use super::error::StoreError;
use super::file_store::FileStore;
use super::lineage::{Lineage, TokenSet};
use super::redis_store::RedisStore;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum TokenStore {
    File(FileStore),
    Redis(Arc<RedisStore>),
}

impl TokenStore {
    /// The file's path, or the Redis URL without its password.
    pub fn describe(&self) -> String {
        match self {
            TokenStore::File(file) => file.path().display().to_string(),
            TokenStore::Redis(redis) => redis.name().to_owned(),
        }
    }

    pub fn redis(&self) -> Option<&Arc<RedisStore>> {
        match self {
            TokenStore::File(_) => None,
            TokenStore::Redis(redis) => Some(redis),
        }
    }

    /// Whether several replicas share this store.
    pub fn is_shared(&self) -> bool {
        self.redis().is_some()
    }

    /// What is wrong with the store right now (Redis unreachable), for readiness.
    pub fn trouble(&self) -> Option<String> {
        self.redis()
            .and_then(|redis| redis.trouble())
            .map(|trouble| trouble.as_str().to_owned())
    }

    /// The stored lineage; `None` when nothing is stored yet.
    pub async fn load(&self) -> Result<Option<Lineage>, StoreError> {
        match self {
            TokenStore::File(file) => {
                let file = file.clone();
                let loaded = tokio::task::spawn_blocking(move || file.load())
                    .await
                    .map_err(|error| StoreError::Read {
                        file: self.describe().into(),
                        message: error.to_string(),
                    })??;
                Ok(loaded.map(|tokens| Lineage {
                    tokens,
                    generation: 0,
                }))
            }
            TokenStore::Redis(redis) => redis.load().await,
        }
    }

    /// Stores a lineage from a new authorization (`wisegate authorize`), replacing any
    /// other; in Redis it gets the next generation and the running replicas adopt it.
    /// Returns its generation (0 for a file).
    pub async fn install_new(&self, tokens: &TokenSet) -> Result<u64, StoreError> {
        match self {
            TokenStore::File(file) => file.save(tokens).map(|()| 0),
            TokenStore::Redis(redis) => redis.save_next(0, tokens).await,
        }
    }

    /// Persists the tokens of a refresh based on generation `base`; returns the new
    /// generation. Failing to persist is logged, not returned: Wise has already
    /// invalidated the previous token, so the new one is used either way (and a
    /// replica writes it back to Redis once Redis answers again). The second value is
    /// a file store's write failure, for readiness.
    pub async fn save_refreshed(&self, base: u64, tokens: &TokenSet) -> (u64, Option<String>) {
        match self {
            TokenStore::File(file) => {
                let file = file.clone();
                let tokens = tokens.clone();
                let failure = match tokio::task::spawn_blocking(move || file.save(&tokens)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(error)) => Some(error.to_string()),
                    Err(error) => Some(format!("saving the token store failed: {error}")),
                };
                if let Some(failure) = &failure {
                    tracing::error!("{failure}; the new token is kept in memory only: a restart now would lose it");
                }
                (0, failure)
            }
            TokenStore::Redis(redis) => match redis.save_next(base, tokens).await {
                Ok(generation) => (generation, None),
                Err(error) => {
                    tracing::error!(
                        "{error}; the new token is kept in memory and written back when the store answers again"
                    );
                    (base + 1, None)
                }
            },
        }
    }
}
