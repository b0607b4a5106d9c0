//! Keeping the user's token fresh: the manager's background loop, which refreshes on
//! the schedule of [`super::schedule`], backs off after failures
//! ([`TokenManager::retry_wait`]), looks again soon while the shared store does not
//! answer, and starts over whenever a new token is installed.

use super::manager::{RefreshError, TokenManager};
use super::schedule;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How soon the refresh schedule looks again after the shared store did not answer.
const STORE_RETRY: Duration = Duration::from_millis(250);

impl TokenManager {
    /// Keeps the user token fresh until `shutdown`: refreshes at
    /// `expires_at - min(refresh_before, lifetime / 2)` minus a little jitter, retries
    /// transient failures with capped exponential backoff, and stops asking Wise once the
    /// grant is refused (until a new token is installed).
    pub async fn keep_fresh(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut failures: u32 = 0;
        let mut store_waits = false;
        loop {
            let changed = self.lineage.changed();
            let wait = match self.lineage.load() {
                Some(_) if self.last_refresh().is_some_and(|o| o.grant_refused) => None,
                Some(_) if store_waits => Some(STORE_RETRY),
                Some(held) if failures > 0 => Some(self.retry_wait(&held, failures)),
                Some(held) => Some(schedule::refresh_delay(
                    held.tokens.obtained_at,
                    held.tokens.expires_at,
                    SystemTime::now(),
                    self.refresh_before,
                    rand::random(),
                )),
                None => None,
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = changed => { (failures, store_waits) = (0, false); continue; }
                _ = async { match wait { Some(wait) => tokio::time::sleep(wait).await, None => std::future::pending().await } } => {}
            }
            let stale = self.lineage.load().map(|held| held.bearer.clone());
            match self.refresh_unless_replaced(stale.as_ref()).await {
                Ok(_) => (failures, store_waits) = (0, false),
                // The shared store did not answer or did not confirm the lineage yet: no
                // call to Wise was made, so look again soon rather than backing off
                // towards the token's expiry.
                Err(RefreshError::StoreUnavailable { .. }) => store_waits = true,
                Err(_) => (failures, store_waits) = (failures.saturating_add(1), false),
            }
        }
    }
}
