//! Adopting a lineage that appeared in the store under a running process: `wisegate
//! authorize` wrote a new one (handed over by `POST /token/reload` on the admin
//! listener, or noticed on SIGHUP). The store is read under the refresh lock, so no
//! refresh of this process is half done (saved, not yet held): a different token in the
//! store, of the held generation or a later one, is then a new lineage. A lower
//! generation (a shared store behind this replica) is never taken.

use super::error::StoreError;
use super::held::{Arrival, Held};
use super::manager::TokenManager;

/// What a reload found in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// A newer lineage than the held one: now in use.
    Adopted,
    /// The store holds the lineage in use (or an older one): nothing changed.
    Unchanged,
    /// Nothing is stored.
    Empty,
}

impl TokenManager {
    /// Re-reads the store and uses its lineage when it is newer than the held one. A
    /// new lineage also lifts a refused grant (the refresh schedule starts again).
    pub async fn reload_from_store(&self) -> Result<Reloaded, StoreError> {
        let _no_refresh = self.refresh_lock.lock().await;
        let Some(stored) = self.store.load().await? else {
            return Ok(Reloaded::Empty);
        };
        let Some(candidate) = Held::new(stored.tokens, stored.generation) else {
            return Ok(Reloaded::Unchanged);
        };
        if !self.take(candidate, Arrival::Authorized) {
            return Ok(Reloaded::Unchanged);
        }
        tracing::info!(
            store = %self.store.describe(),
            "using the new lineage found in the token store (a new `wisegate authorize`)"
        );
        Ok(Reloaded::Adopted)
    }
}
