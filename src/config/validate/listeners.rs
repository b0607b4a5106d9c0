//! The `[listen]` and `[admin]` sections: the app-facing and the admin listener, both
//! loopback-only unless `allow_non_loopback` says otherwise.

use super::checker::Checker;
use crate::config::raw::{RawAdmin, RawListen};
use crate::config::{Admin, Listen};
use std::time::Duration;

/// The most serving lanes `listen.threads` may ask for.
const MAX_THREADS: u64 = 256;

pub(super) fn listen(c: &mut Checker<'_>, raw: &RawListen) -> Listen {
    Listen {
        address: c.address(
            "listen.address",
            raw.address.as_deref(),
            "127.0.0.1:8080",
            raw.allow_non_loopback,
        ),
        shutdown_grace: c.duration(
            "listen.shutdown_grace",
            raw.shutdown_grace.as_deref(),
            Duration::from_secs(30),
        ),
        threads: raw.threads.map(|threads| {
            if threads > MAX_THREADS {
                c.problem(
                    "listen.threads",
                    format!("{threads} is more than {MAX_THREADS}: leave it out for one per core"),
                );
            }
            c.positive("listen.threads", Some(threads.min(MAX_THREADS)), 1) as usize
        }),
    }
}

pub(super) fn admin(c: &mut Checker<'_>, raw: &RawAdmin) -> Admin {
    Admin {
        address: c.address(
            "admin.address",
            raw.address.as_deref(),
            "127.0.0.1:9901",
            raw.allow_non_loopback,
        ),
    }
}
