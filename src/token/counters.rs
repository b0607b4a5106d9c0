//! The counters one lineage counts into: its refreshes by result and the 401s answered
//! without a refresh. The metrics hand each account's manager its own, labelled with
//! the account ([`crate::lineage_metrics`]); a manager made elsewhere (the command
//! line) counts into counters nobody reads.

use prometheus_client::metrics::counter::Counter;

#[derive(Clone, Debug, Default)]
pub struct LineageCounters {
    /// `wisegate_token_refresh_total{result="success"}`.
    pub refresh_success: Counter,
    /// `wisegate_token_refresh_total{result="failure"}`.
    pub refresh_failure: Counter,
    /// `wisegate_unauthorized_without_refresh_total`.
    pub unauthorized_without_refresh: Counter,
}
