//! The series where a lineage is involved, one per account (`account` label; with the
//! single-account keys `account="default"`): refreshes, 401s answered without a
//! refresh, token expiry, whether a person must authorize, and the shared store's
//! state. Counters are created at 0 as soon as an account is known.

use crate::token::counters::LineageCounters;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountLabels {
    pub account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AccountResultLabels {
    pub account: String,
    pub result: &'static str,
}

fn account(name: &str) -> AccountLabels {
    AccountLabels {
        account: name.to_owned(),
    }
}

/// Each account's lineage series.
#[derive(Debug, Default)]
pub struct LineageMetrics {
    refreshes: Family<AccountResultLabels, Counter>,
    unauthorized_without_refresh: Family<AccountLabels, Counter>,
    token_expiry: Family<AccountLabels, Gauge>,
    authorization_required: Family<AccountLabels, Gauge>,
    token_store_up: Family<AccountLabels, Gauge>,
}

/// One account's state at scrape time.
pub struct LineageState<'a> {
    pub account: &'a str,
    /// Unix seconds; 0 without a token.
    pub token_expiry: i64,
    pub authorization_required: bool,
    /// `None` for a file store (no series).
    pub store_up: Option<bool>,
}

impl LineageMetrics {
    /// Registers the series (`wisegate_token_store_up` only with `shared_store`).
    pub fn register(&self, registry: &mut Registry, shared_store: bool) {
        registry.register(
            "wisegate_token_refresh",
            "OAuth token refreshes, by account and result (success, failure)",
            self.refreshes.clone(),
        );
        registry.register(
            "wisegate_unauthorized_without_refresh",
            "401s from Wise answered without a refresh, by account: a token had been obtained less than limits.min_refresh_interval_on_401 before (replayed with a newer token, or passed to the app)",
            self.unauthorized_without_refresh.clone(),
        );
        registry.register(
            "wisegate_token_expiry_timestamp_seconds",
            "When the account's current OAuth access token expires (Unix time)",
            self.token_expiry.clone(),
        );
        registry.register(
            "wisegate_authorization_required",
            "1 while Wise refuses the account's grant (revoked, email changed, enhanced security): a person must run wisegate authorize --account NAME",
            self.authorization_required.clone(),
        );
        if shared_store {
            registry.register(
                "wisegate_token_store_up",
                "1 while the account's shared token store (Redis) answers, 0 while it cannot be reached",
                self.token_store_up.clone(),
            );
        }
    }

    /// The counters the manager of account `name` counts into (created at 0).
    pub fn counters_for(&self, name: &str) -> LineageCounters {
        let result = |result| {
            self.refreshes
                .get_or_create(&AccountResultLabels {
                    account: name.to_owned(),
                    result,
                })
                .clone()
        };
        LineageCounters {
            refresh_success: result("success"),
            refresh_failure: result("failure"),
            unauthorized_without_refresh: self
                .unauthorized_without_refresh
                .get_or_create(&account(name))
                .clone(),
        }
    }

    /// Sets the gauges to `accounts`' state (accounts a reload removed drop out).
    pub fn set(&self, accounts: &[LineageState<'_>]) {
        self.token_expiry.clear();
        self.authorization_required.clear();
        self.token_store_up.clear();
        for state in accounts {
            let labels = account(state.account);
            self.token_expiry
                .get_or_create(&labels)
                .set(state.token_expiry);
            self.authorization_required
                .get_or_create(&labels)
                .set(i64::from(state.authorization_required));
            if let Some(up) = state.store_up {
                self.token_store_up
                    .get_or_create(&labels)
                    .set(i64::from(up));
            }
        }
    }
}
