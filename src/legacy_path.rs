//! What the rollback-readiness probe ([`crate::rollback_readiness`]) found about the
//! legacy path (the legacy host with the personal token), and where its last finding is
//! kept. [`crate::shared::Shared`] holds the [`Readiness`]; the metrics name the
//! [`LegacyPath`] states; the probe, which uses `Shared`, writes both.

use arc_swap::ArcSwapOption;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// What the last probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyPath {
    /// The legacy host accepted the personal token: a rollback would work.
    Available,
    /// The legacy host answered 401/403 to the personal token.
    Refused,
    /// The legacy host could not be asked (connection, TLS, timeout, 5xx, 429).
    Unreachable,
    /// No personal token is configured: there is nothing to roll back to.
    NotConfigured,
}

impl LegacyPath {
    pub const ALL: [LegacyPath; 4] = [
        LegacyPath::Available,
        LegacyPath::Refused,
        LegacyPath::Unreachable,
        LegacyPath::NotConfigured,
    ];

    /// The `state` label and the name `/status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            LegacyPath::Available => "available",
            LegacyPath::Refused => "refused",
            LegacyPath::Unreachable => "unreachable",
            LegacyPath::NotConfigured => "not_configured",
        }
    }
}

/// One probe's result: the state, when, and a sentence saying what was seen.
#[derive(Debug, Clone)]
pub struct Probe {
    pub state: LegacyPath,
    pub at: SystemTime,
    pub detail: String,
}

/// The last probe, and a way to ask for the next one now.
#[derive(Debug, Default)]
pub struct Readiness {
    last: ArcSwapOption<Probe>,
    now: Notify,
}

impl Readiness {
    pub fn last(&self) -> Option<Arc<Probe>> {
        self.last.load_full()
    }

    /// Keeps `probe` as the last one.
    pub fn set_last(&self, probe: Probe) {
        self.last.store(Some(Arc::new(probe)));
    }

    /// Asks the probe loop to probe at once (the personal token changed).
    pub fn probe_now(&self) {
        self.now.notify_one();
    }

    /// Resolves when [`Readiness::probe_now`] asks for a probe.
    pub fn probe_requested(&self) -> Notified<'_> {
        self.now.notified()
    }
}
