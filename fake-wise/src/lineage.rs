//! One user's token lineage: its newest user access token, its refresh token, the refresh
//! tokens a rotation spent, and its reuse counts. Each user of the double has its own, so
//! that a refresh or a revocation of one user's grant touches no other user's tokens.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::config::ReuseCounts;
use crate::token_shape::TokenShape;

/// A token and when it stops being valid.
#[derive(Clone)]
pub(crate) struct Issued {
    pub token: String,
    pub expires: Instant,
}

impl Issued {
    pub(crate) fn new(shape: TokenShape, lifetime: Duration) -> Issued {
        Issued {
            token: shape.generate(),
            expires: Instant::now() + lifetime,
        }
    }

    /// Whether this is `token` and it has not expired.
    pub(crate) fn valid(&self, token: &str) -> bool {
        self.token == token && Instant::now() < self.expires
    }

    /// The token, if it has not expired.
    pub(crate) fn current(&self) -> Option<String> {
        (Instant::now() < self.expires).then(|| self.token.clone())
    }
}

/// What a refresh token presented to a lineage turned out to be.
pub(crate) enum Presented {
    /// The lineage's live refresh token.
    Current,
    /// A refresh token this lineage's rotation spent earlier.
    Spent,
    /// Not this lineage's.
    Foreign,
}

/// One user's grant: at most one valid user access token (each new one replaces the last,
/// as Wise's refresh does) and one refresh token.
#[derive(Default)]
pub(crate) struct Lineage {
    pub user_access: Option<Issued>,
    pub refresh: Option<String>,
    /// Refresh tokens a refresh rotated away: presenting one again is reuse.
    pub spent: HashSet<String>,
    pub reuse: ReuseCounts,
}

impl Lineage {
    /// Whether `token` is this lineage's refresh token, a spent one, or neither.
    pub(crate) fn presented(&self, token: &str) -> Presented {
        if self.spent.contains(token) {
            Presented::Spent
        } else if self.refresh.as_deref() == Some(token) {
            Presented::Current
        } else {
            Presented::Foreign
        }
    }

    /// A spent refresh token came back: counted, and with `revoke` the grant dies.
    pub(crate) fn reused(&mut self, revoke: bool) {
        self.reuse.spent_refresh_tokens_presented += 1;
        if revoke && self.refresh.is_some() {
            self.reuse.grants_revoked += 1;
            self.revoke();
        }
    }

    /// The grant is revoked: its refresh token and user access token stop working.
    pub(crate) fn revoke(&mut self) {
        self.user_access = None;
        self.refresh = None;
    }
}
