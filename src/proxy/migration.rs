//! Migration-safety state that outlives config snapshots: the fallback breakers (after
//! [`THRESHOLD`] consecutive mTLS failures a route goes straight to the legacy path for
//! its cool-down; then one request probes the mTLS side while the others keep going the
//! legacy way, so it neither flaps nor hammers) and the bound on shadow copies. Nothing
//! here knows the request path: [`crate::shared::Shared`] holds it, the proxy asks it.

use crate::history::{EventSink, Timeline};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Consecutive mTLS failures that open a route's breaker.
pub const THRESHOLD: u32 = 3;

/// Migration-safety state that outlives config snapshots: fallback breakers and the
/// bound on shadow copies.
#[derive(Debug, Default)]
pub struct Migration {
    pub breakers: Breakers,
    pub shadow_permits: ShadowPermits,
}

impl Migration {
    /// With breaker openings reported to `timeline`.
    pub fn reporting_to(timeline: &Arc<Timeline>) -> Migration {
        let migration = Migration::default();
        migration.breakers.events.attach(timeline.clone());
        migration
    }
}

/// Shadow copies in flight at most.
pub const MAX_SHADOWS_IN_FLIGHT: usize = 16;

/// The bound on copies in flight.
#[derive(Debug)]
pub struct ShadowPermits(Arc<Semaphore>);

impl ShadowPermits {
    /// A permit for one more copy, if fewer than the bound are in flight.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

impl Default for ShadowPermits {
    fn default() -> Self {
        ShadowPermits(Arc::new(Semaphore::new(MAX_SHADOWS_IN_FLIGHT)))
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// Per-route breakers, kept across reloads (keyed by route name).
#[derive(Debug, Default)]
pub struct Breakers {
    routes: Mutex<HashMap<String, Breaker>>,
    /// Where a breaker opening is reported (`/status`'s time line).
    pub events: EventSink,
}

/// Where a fallback route's request goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the mTLS side (normal, or the probe after a cool-down).
    Mtls,
    /// The breaker is open: straight to the legacy side.
    Legacy,
}

impl Breakers {
    pub fn decide(&self, route: &str, cooldown: Duration) -> Decision {
        let mut map = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(breaker) = map.get_mut(route) else {
            return Decision::Mtls;
        };
        match breaker.open_until {
            Some(until) if Instant::now() < until => Decision::Legacy,
            Some(_) => {
                // This request probes; the others keep to the legacy side meanwhile.
                breaker.open_until = Some(Instant::now() + cooldown);
                Decision::Mtls
            }
            None => Decision::Mtls,
        }
    }

    pub fn success(&self, route: &str) {
        let mut map = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(breaker) = map.remove(route) {
            if breaker.open_until.is_some() {
                tracing::warn!(%route, "the mTLS side answers again: route back on OAuth + mTLS");
            }
        }
    }

    pub fn failure(&self, route: &str, cooldown: Duration) {
        let mut map = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = map.entry(route.to_owned()).or_default();
        breaker.failures += 1;
        if breaker.failures >= THRESHOLD {
            if breaker.open_until.is_none() {
                tracing::warn!(%route, failures = breaker.failures, cooldown_s = cooldown.as_secs(), "the mTLS side keeps failing: route goes straight to the personal-token way, probing again after the cool-down");
                self.events.breaker_open(route, breaker.failures, cooldown);
            }
            breaker.open_until = Some(Instant::now() + cooldown);
        }
    }

    /// Routes whose breaker is open, with the seconds until the next probe (for `/status`).
    pub fn open(&self) -> HashMap<String, u64> {
        let map = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.iter()
            .filter_map(|(route, b)| {
                b.open_until.map(|until| {
                    (
                        route.clone(),
                        until.saturating_duration_since(now).as_secs(),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_once_after_the_cooldown() {
        let breakers = Breakers::default();
        let cooldown = Duration::from_millis(0);
        for _ in 0..THRESHOLD - 1 {
            breakers.failure("r", Duration::from_secs(60));
            assert_eq!(
                breakers.decide("r", Duration::from_secs(60)),
                Decision::Mtls
            );
        }
        breakers.failure("r", Duration::from_secs(60));
        assert_eq!(
            breakers.decide("r", Duration::from_secs(60)),
            Decision::Legacy
        );
        // An elapsed cool-down lets one probe through and re-arms for the others.
        breakers.failure("q", cooldown);
        breakers.failure("q", cooldown);
        breakers.failure("q", cooldown);
        assert_eq!(
            breakers.decide("q", Duration::from_secs(60)),
            Decision::Mtls
        );
        assert_eq!(
            breakers.decide("q", Duration::from_secs(60)),
            Decision::Legacy
        );
        breakers.success("q");
        assert_eq!(
            breakers.decide("q", Duration::from_secs(60)),
            Decision::Mtls
        );
    }
}
