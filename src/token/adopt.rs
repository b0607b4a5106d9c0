//! Adopting a lineage that appeared in the store under a running process: `wisegate
//! authorize` wrote a new one (handed over by `POST /token/reload` on the admin
//! listener, or noticed on SIGHUP). The store is read under the refresh lock, so no
//! refresh of this process is half done (saved, not yet held): a different token in the
//! store, of the held generation or a later one, is then a new lineage. A lower
//! generation (a shared store behind this replica) is never taken.

use super::held::Held;
use super::manager::TokenManager;
use super::store::StoreError;
use std::sync::Arc;

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

/// Whether `candidate` (read from the store) is a newer lineage than `held`. A higher
/// generation is; at the same generation (the file store's is always 0) only a
/// different token obtained no earlier than the held one, in the store's whole seconds:
/// a store that a failed save left behind holds the lineage before the held one, whose
/// refresh token is spent, and must never be taken back.
fn newer_lineage(candidate: &Held, held: &Held) -> bool {
    let secs = |held: &Held| {
        held.tokens
            .obtained_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    candidate.generation > held.generation
        || (candidate.generation == held.generation
            && candidate.bearer != held.bearer
            && secs(candidate) >= secs(held))
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
        let candidate = Arc::new(candidate);
        let newer = |held: &Held| newer_lineage(&candidate, held);
        let previous = self.user.rcu(|current| match current {
            Some(current) if !newer(current) => Some(current.clone()),
            _ => Some(candidate.clone()),
        });
        if previous.as_ref().is_some_and(|previous| !newer(previous)) {
            return Ok(Reloaded::Unchanged);
        }
        tracing::info!(
            store = %self.store.describe(),
            "using the new lineage found in the token store (a new `wisegate authorize`)"
        );
        if self.last_refresh().is_some_and(|o| o.grant_refused) {
            self.outcome.store(None);
        }
        self.changed.notify_waiters();
        Ok(Reloaded::Adopted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use crate::token::store::TokenSet;
    use std::time::{Duration, UNIX_EPOCH};

    fn held(token: &str, obtained_s: u64, generation: u64) -> Held {
        let at = UNIX_EPOCH + Duration::from_millis(obtained_s * 1000 + 400);
        let tokens = TokenSet {
            access_token: AccessToken::new(token.to_owned()),
            expires_at: at + Duration::from_secs(43_200),
            refresh_token: None,
            refresh_token_expires_at: None,
            profile_id: None,
            obtained_at: at,
        };
        Held::new(tokens, generation).unwrap()
    }

    #[test]
    fn a_store_left_behind_by_a_failed_save_is_never_taken_back() {
        // Held: B, refreshed at t=2000. The file still holds A from t=1000.
        assert!(!newer_lineage(&held("A", 1000, 0), &held("B", 2000, 0)));
        // A new authorization written after B was obtained is taken.
        assert!(newer_lineage(&held("C", 2500, 0), &held("B", 2000, 0)));
        // The held lineage read back (whole seconds in the file) is not new.
        assert!(!newer_lineage(&held("B", 2000, 0), &held("B", 2000, 0)));
        // A shared store's higher generation is newer, a lower one never.
        assert!(newer_lineage(&held("D", 1000, 8), &held("B", 2000, 7)));
        assert!(!newer_lineage(&held("D", 3000, 6), &held("B", 2000, 7)));
    }
}
