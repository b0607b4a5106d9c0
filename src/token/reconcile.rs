//! The reconcile rules of the shared store, as pure functions of what a replica knows:
//! what it holds, what the store holds, whether it holds the group's lock, and whether
//! the store is still settling after a write-back. [`super::group`] runs them; the tests
//! (`reconcile_tests.rs`) run them over every interleaving of a small group.
//!
//! # The invariant
//!
//! **No replica presents a refresh token that may have been spent.** A replica presents
//! the refresh token of generation `G` only when
//!
//! 1. it holds the group's refresh lock, and
//! 2. the store, read under that lock, holds generation `G` with the very tokens the
//!    replica holds (the store confirms `G` is the newest generation it knows), and
//! 3. the store is not settling: no lineage was written back into it within the last
//!    [`SETTLE_AFTER_WRITE_BACK`] (after Redis lost data, every replica that holds a
//!    newer generation gets that long to write it back; the write-back compares
//!    generations, so the newest one wins).
//!
//! A replica whose refresh could not be saved (Redis away) leaves the lock to expire
//! instead of releasing it: until it writes its generation back, the lock keeps the
//! others from refreshing the one before.
//!
//! The first refresh of a seed (generation 0, from `oauth.refresh_token_file`, into an
//! empty store) needs only the lock. Everything that writes into the store keeps
//! generations going up: a refresh writes `max(stored, base) + 1`, a write-back writes only
//! over nothing or an older generation (compare-and-set, in a Lua script). A replica
//! whose access token Wise rejected knows its generation is stale: it never writes it
//! back, and refreshes only under the three conditions above. The one exception is
//! documented at [`super::group`]: with Redis unreachable for a long stretch, a replica
//! whose token Wise has not rejected refreshes alone in the token's last tenth (the
//! lesser evil against certain expiry).
//!
//! What this cannot cover: a generation that exists only in a replica that is gone (it
//! refreshed, Redis lost the write, and the replica crashed or stays cut off from Redis
//! past the settling time). Nothing in the group knows that generation; the next refresh
//! presents the spent token of the one before. Redis persistence (`appendonly yes`)
//! narrows that window to the writes of the last fsync.

use std::time::Duration;

/// How long after a write-back no replica refreshes: every replica reconnects to a Redis
/// that answers again within [`super::sync`]'s reconnect wait, which this exceeds by
/// a wide margin.
pub const SETTLE_AFTER_WRITE_BACK: Duration = Duration::from_millis(1_000);

/// What a replica holds, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldFacts {
    pub generation: u64,
    /// Wise answered 401 to this generation's access token: another replica has
    /// refreshed (or the grant is gone).
    pub rejected: bool,
}

/// What the store holds, compared with the held lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFacts {
    pub generation: u64,
    /// The stored tokens are the held ones.
    pub same_as_held: bool,
}

/// Everything the next step depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub held: Option<HeldFacts>,
    pub stored: Option<StoredFacts>,
    pub locked: bool,
    pub settling: bool,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Take the stored lineage: it is newer than the held one.
    Adopt,
    /// Write the held lineage back (compare-and-set on the generation), then look again.
    WriteBack,
    /// Take the group's lock (or wait for its holder), then look again.
    Lock,
    /// Wait for a newer lineage or for the store to settle; look again.
    Wait,
    /// Present the held refresh token.
    Refresh,
    /// Nothing is held or stored: a person must run `wisegate authorize`.
    NotAuthorized,
}

/// The step a replica about to refresh takes next (see the module doc).
pub fn next_step(facts: Facts) -> Next {
    let Facts {
        held,
        stored,
        locked,
        settling,
    } = facts;
    let Some(held) = held else {
        return match stored {
            None => Next::NotAuthorized,
            Some(_) => Next::Adopt,
        };
    };
    match stored {
        Some(stored) if stored.generation > held.generation => Next::Adopt,
        None if held.generation == 0 => match locked {
            false => Next::Lock,
            true => Next::Refresh,
        },
        None => write_back_or_wait(held, None),
        Some(stored) if stored.generation < held.generation => {
            write_back_or_wait(held, Some(stored.generation))
        }
        // The same generation from here on.
        Some(stored) if !stored.same_as_held => Next::Wait,
        Some(_) if !locked => Next::Lock,
        Some(_) if settling => Next::Wait,
        Some(_) => Next::Refresh,
    }
}

fn write_back_or_wait(held: HeldFacts, stored: Option<u64>) -> Next {
    match may_write_back(held, stored) {
        true => Next::WriteBack,
        false => Next::Wait,
    }
}

/// Whether a replica writes its lineage back into a store that holds `stored` (the
/// sync task asks this whenever it looks at the store): only a real generation Wise has
/// not rejected, and only over nothing or an older one.
pub fn may_write_back(held: HeldFacts, stored: Option<u64>) -> bool {
    held.generation > 0 && !held.rejected && stored.is_none_or(|s| s < held.generation)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
