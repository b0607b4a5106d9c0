//! The client certificate's expiry warning: once it has fewer than 30 days left, a
//! warning is logged at start and then once a day, so that a rotation is never a
//! surprise. (Metrics carry the expiry too, for alerts.)

use crate::tls::ClientCertResolver;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// From how many days before expiry the warning is logged.
pub const WARNING_DAYS: u64 = 30;
const DAY: Duration = Duration::from_secs(86_400);

/// Days left when a warning is due at `now`, given the last warning; else `None`.
pub fn warning_due(
    not_after: SystemTime,
    now: SystemTime,
    last_warned: Option<SystemTime>,
) -> Option<u64> {
    let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
    if left >= DAY * WARNING_DAYS as u32 {
        return None;
    }
    let quiet =
        last_warned.is_some_and(|last| now.duration_since(last).unwrap_or(Duration::ZERO) < DAY);
    (!quiet).then_some(left.as_secs() / DAY.as_secs())
}

/// Checks hourly (the certificate may be rotated meanwhile) until `shutdown`.
pub async fn warn_daily(resolver: Arc<ClientCertResolver>, shutdown: CancellationToken) {
    let mut last_warned = None;
    loop {
        let identity = resolver.current();
        let now = SystemTime::now();
        if let Some(days) = warning_due(identity.not_after, now, last_warned) {
            tracing::warn!(
                cert_file = %identity.cert_file.display(),
                days_left = days,
                "the client certificate expires in {days} days: make a new CSR (`wisegate csr`), upload it in Wise's Developer Hub and replace the certificate and key"
            );
            last_warned = Some(now);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_under_30_days_once_a_day() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(warning_due(now + DAY * 31, now, None), None);
        assert_eq!(
            warning_due(now + DAY * 29 + Duration::from_secs(5), now, None),
            Some(29)
        );
        assert_eq!(warning_due(now + DAY * 29, now, Some(now - DAY / 2)), None);
        assert_eq!(warning_due(now + DAY * 29, now, Some(now - DAY)), Some(29));
        assert_eq!(warning_due(now - DAY, now, None), Some(0));
    }
}
