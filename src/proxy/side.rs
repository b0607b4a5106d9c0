//! The side a request went to: the mTLS host (OAuth credentials and the client
//! certificate) or the legacy host (the personal token). Apart from the route's
//! [`Mode`]: an OAuth route's request that falls back goes to the legacy side, and a
//! shadow copy goes to the side the answer did not come from.

use crate::assembly::Snapshot;
use crate::route::Mode;
use crate::upstream::Upstream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The mTLS host, with an OAuth token and the client certificate.
    Mtls,
    /// The legacy host, with the personal token.
    Legacy,
}

impl Side {
    /// The side a route of `mode` sends to when nothing falls back.
    pub fn of(mode: Mode) -> Side {
        match mode {
            Mode::OAuthMtls | Mode::OAuthClient => Side::Mtls,
            Mode::PersonalToken => Side::Legacy,
        }
    }

    /// The other side (where a shadow copy goes).
    pub fn other(self) -> Side {
        match self {
            Side::Mtls => Side::Legacy,
            Side::Legacy => Side::Mtls,
        }
    }

    /// This side's upstream client under `snapshot`.
    pub fn upstream(self, snapshot: &Snapshot) -> &Upstream {
        match self {
            Side::Mtls => &snapshot.mtls,
            Side::Legacy => &snapshot.legacy,
        }
    }

    /// The mode a request of a `route_mode` route was served in on this side (the
    /// `mode` label and access-log field): the legacy side is always the personal token.
    pub fn served_as(self, route_mode: Mode) -> Mode {
        match self {
            Side::Mtls => route_mode,
            Side::Legacy => Mode::PersonalToken,
        }
    }
}
