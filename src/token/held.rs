//! A token as the manager holds it: the token set with its ready-made `Authorization`
//! value and its generation in the shared store; how token responses and the refresh
//! token seed become one; and [`HeldLineage`], the one owner of the lineage in use.

use super::client::TokenResponse;
use super::lineage::{Lineage, TokenSet};
use crate::secret::{AccessToken, RefreshToken};
use arc_swap::ArcSwapOption;
use http::HeaderValue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How a lineage arrived, which decides what it may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// This process refreshed: Wise's newest answer. Replaces its own base and
    /// anything older (a file store's generation is always 0: the same one too).
    Refreshed,
    /// Another replica's generation, read from the shared store (a notification, a
    /// periodic read, a read before refreshing or after a 401): only a higher one.
    Adopted,
    /// A lineage found in the store by a reload (`wisegate authorize` wrote it): a
    /// higher generation, or at the same one a different token obtained no earlier.
    Authorized,
    /// The refresh token seed: only when nothing is held.
    Seed,
}

/// The lineage in use: the only place that holds it. Every arrival goes through
/// [`HeldLineage::install`], which never goes back a generation and wakes whoever waits
/// for a change. Readers take one atomic load.
#[derive(Debug, Default)]
pub(super) struct HeldLineage {
    current: ArcSwapOption<Held>,
    changed: tokio::sync::Notify,
}

impl HeldLineage {
    pub(super) fn new(held: Option<Held>) -> HeldLineage {
        HeldLineage {
            current: ArcSwapOption::new(held.map(Arc::new)),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn load(&self) -> Option<Arc<Held>> {
        self.current.load_full()
    }

    pub(super) fn generation(&self) -> u64 {
        self.current
            .load()
            .as_ref()
            .map_or(0, |held| held.generation)
    }

    /// A future that completes at the next install (create it before looking).
    pub(super) fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// Uses `candidate` if `arrival` allows it over the held lineage (see [`Arrival`]);
    /// returns whether it did.
    pub(super) fn install(&self, candidate: Held, arrival: Arrival) -> bool {
        let candidate = Arc::new(candidate);
        let previous = self.current.rcu(|current| match current {
            Some(current) if !replaces(&candidate, current, arrival) => Some(current.clone()),
            _ => Some(candidate.clone()),
        });
        let installed = previous
            .as_ref()
            .is_none_or(|previous| replaces(&candidate, previous, arrival));
        if installed {
            self.changed.notify_waiters();
        }
        installed
    }
}

/// Whether `candidate`, arriving as `arrival`, replaces `held`.
fn replaces(candidate: &Held, held: &Held, arrival: Arrival) -> bool {
    match arrival {
        Arrival::Refreshed => candidate.generation >= held.generation,
        Arrival::Adopted => candidate.generation > held.generation,
        Arrival::Authorized => newer_lineage(candidate, held),
        Arrival::Seed => false,
    }
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
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    candidate.generation > held.generation
        || (candidate.generation == held.generation
            && candidate.bearer != held.bearer
            && secs(candidate) >= secs(held))
}

/// A token with its ready-made header value and its generation in the shared store
/// (0 with a file store, or for a seed that was never refreshed).
#[derive(Debug)]
pub(super) struct Held {
    pub(super) tokens: TokenSet,
    pub(super) bearer: HeaderValue,
    pub(super) generation: u64,
    /// Wise answered 401 to this access token: the generation is stale (another
    /// replica refreshed, or the grant is gone). See [`super::reconcile`].
    rejected: AtomicBool,
}

impl Held {
    pub(super) fn new(tokens: TokenSet, generation: u64) -> Option<Held> {
        let bearer = bearer_header(&tokens.access_token)?;
        Some(Held {
            tokens,
            bearer,
            generation,
            rejected: AtomicBool::new(false),
        })
    }

    /// Wise rejected this access token.
    pub(super) fn mark_rejected(&self) {
        self.rejected.store(true, Ordering::Relaxed);
    }

    pub(super) fn rejected(&self) -> bool {
        self.rejected.load(Ordering::Relaxed)
    }

    pub(super) fn lineage(&self) -> Lineage {
        Lineage {
            tokens: self.tokens.clone(),
            generation: self.generation,
        }
    }

    pub(super) fn usable(&self, now: SystemTime) -> bool {
        self.tokens.expires_at > now
    }

    /// This token's header, when it can stand in for `stale` (the token a caller saw
    /// fail or expire): a different one, valid, and not rejected by Wise. It arrived
    /// while the caller waited (the sync task adopted it, or a refresh here made it).
    pub(super) fn instead_of(&self, stale: &HeaderValue, now: SystemTime) -> Option<HeaderValue> {
        (self.bearer != *stale && self.usable(now) && !self.rejected()).then(|| self.bearer.clone())
    }

    pub(super) fn lifetime(&self) -> Duration {
        self.tokens
            .expires_at
            .duration_since(self.tokens.obtained_at)
            .unwrap_or(Duration::ZERO)
    }
}

/// `Bearer <token>`, marked sensitive so hyper's HPACK never indexes it.
pub fn bearer_header(token: &AccessToken) -> Option<HeaderValue> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A lineage that only has the refresh token from `oauth.refresh_token_file`: its
/// empty access token has expired long ago, so the first refresh starts the lineage.
pub(super) fn seeded(refresh_token: &RefreshToken) -> Option<Held> {
    tracing::info!("the token store is empty: seeding it from oauth.refresh_token_file");
    let seed = TokenSet {
        access_token: AccessToken::new(""),
        expires_at: SystemTime::UNIX_EPOCH,
        refresh_token: Some(refresh_token.clone()),
        refresh_token_expires_at: None,
        profile_id: None,
        obtained_at: SystemTime::UNIX_EPOCH,
    };
    Held::new(seed, 0)
}

/// A token response as a storable set.
pub fn token_set(response: TokenResponse, profile_id: Option<String>) -> TokenSet {
    TokenSet {
        access_token: response.access_token,
        expires_at: response.expires_at,
        refresh_token: response.refresh_token,
        refresh_token_expires_at: response.refresh_token_expires_at,
        profile_id,
        obtained_at: response.received_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_a_different_valid_token_wise_has_not_rejected_stands_in_for_a_stale_one() {
        let now = UNIX_EPOCH + Duration::from_secs(3000);
        let old = held("A", 1000, 7);
        let new = held("B", 2000, 8);
        let stale = old.bearer.clone();
        assert_eq!(new.instead_of(&stale, now), Some(new.bearer.clone()));
        assert_eq!(old.instead_of(&stale, now), None, "the stale token itself");
        let expired = now + Duration::from_secs(43_200);
        assert_eq!(new.instead_of(&stale, expired), None, "expired");
        new.mark_rejected();
        assert_eq!(new.instead_of(&stale, now), None, "rejected by Wise");
    }

    #[test]
    fn no_arrival_goes_back_a_generation() {
        let lineage = HeldLineage::new(Some(held("B", 2000, 7)));
        for arrival in [
            Arrival::Refreshed,
            Arrival::Adopted,
            Arrival::Authorized,
            Arrival::Seed,
        ] {
            assert!(!lineage.install(held("A", 3000, 6), arrival), "{arrival:?}");
            assert_eq!(lineage.generation(), 7);
        }
        assert!(!lineage.install(held("C", 3000, 7), Arrival::Adopted));
        assert!(lineage.install(held("C", 3000, 8), Arrival::Adopted));
        assert!(lineage.install(held("D", 3000, 8), Arrival::Refreshed));
        assert!(!lineage.install(held("E", 3000, 0), Arrival::Seed));
        let empty = HeldLineage::default();
        assert!(empty.install(held("S", 0, 0), Arrival::Seed));
    }
}
