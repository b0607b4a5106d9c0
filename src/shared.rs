//! The state every request and every background task reads: the current config
//! [`Snapshot`] and [`AccountSet`] (each swapped whole on reload) and the parts that
//! outlive snapshots (the OAuth client's shared parts, the client certificate, the
//! metrics, the migration-safety state, the last hour for `/status`).

use crate::account::build::{self as accounts, Company};
use crate::account::AccountSet;
use crate::assembly::{self, BuildError, Snapshot};
use crate::config::{Config, TokenStoreConfig};
use crate::history::{Clock, History};
use crate::last_reload::LastReload;
use crate::legacy_path::Readiness;
use crate::metrics::Metrics;
use crate::proxy::Migration;
use crate::tls::ClientCertResolver;
use arc_swap::{ArcSwap, ArcSwapOption};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// State shared by every request: the current snapshot and the long-lived parts.
#[derive(Debug)]
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    /// The accounts (each with its lineage); a request loads them once.
    pub accounts: ArcSwap<AccountSet>,
    /// The OAuth client and its client-credentials token, shared by every account.
    pub company: ArcSwap<Company>,
    pub resolver: Arc<ClientCertResolver>,
    pub metrics: Metrics,
    pub migration: Migration,
    pub shutting_down: AtomicBool,
    /// Whether a rollback would work: the last probe of the legacy path.
    pub rollback_readiness: Readiness,
    /// The last config reload's outcome (none yet: the config of the start).
    pub last_reload: ArcSwapOption<LastReload>,
    /// The serving lanes, counted once at start (upstream clients are made per lane).
    pub lanes: usize,
    /// The last hour for `/status`: route series and the event time line.
    pub history: History,
}

impl Shared {
    /// Builds everything from `config` (failing on bad certificates, keys, secrets or
    /// store) for `lanes` serving lanes, `/status`'s history on `clock`; also returns the
    /// first snapshot. The parts built before the history report their events to it.
    pub async fn build(
        config: Config,
        lanes: usize,
        clock: Clock,
    ) -> Result<(Arc<Shared>, Arc<Snapshot>), BuildError> {
        let history = History::new(clock);
        let resolver = assembly::load_identity(&config)?;
        resolver.events.attach(history.timeline().clone());
        let company = Company {
            oauth: Arc::new(assembly::oauth_client(&config, &resolver)?),
            client_token: Arc::default(),
        };
        let shared_store = config
            .accounts()
            .iter()
            .any(|account| matches!(account.token_store, TokenStoreConfig::Redis(_)));
        let metrics = Metrics::new(shared_store);
        let built = accounts::build(&config, &company, None, &metrics.lineages).await?;
        for account in built.set.iter() {
            account.tokens.events.attach(history.timeline().clone());
        }
        let mut snapshot = Snapshot::build(config, &resolver, 1, lanes)?;
        snapshot.series = history.series_for(&snapshot.labels);
        let snapshot = Arc::new(snapshot);
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::new(snapshot.clone()),
            metrics,
            accounts: ArcSwap::from_pointee(built.set),
            company: ArcSwap::from_pointee(company),
            resolver,
            migration: Migration::reporting_to(history.timeline()),
            shutting_down: AtomicBool::new(false),
            rollback_readiness: Readiness::default(),
            last_reload: ArcSwapOption::empty(),
            lanes,
            history,
        });
        Ok((shared, snapshot))
    }
}
