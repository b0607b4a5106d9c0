//! Hot reload. Every trigger (a change in a watched folder, SIGHUP) calls one
//! [`Reloader::reload`], which builds and validates a complete new snapshot (config,
//! client identity, upstream clients with fresh connection pools, personal token, OAuth
//! client) and only then swaps it in. A request in flight keeps the snapshot it started
//! with. A config that does not parse or validate is rejected whole and the old one keeps
//! serving; a broken new certificate/key pair keeps the old pair in use while the rest of
//! the config applies (so the rollback lever is never blocked by a bad certificate).
//! Folders are watched, not files: editors save by rename and Kubernetes swaps a `..data`
//! symlink in mounted ConfigMaps and Secrets. SIGHUP also re-reads the token store, so a
//! lineage `wisegate authorize` stored meanwhile is taken up.

mod watched;

use crate::account::build::{Built, Company};
use crate::account::reload as account_reload;
use crate::assembly::{self, Snapshot};
use crate::config::restart::needs_restart;
use crate::config::Config;
use crate::last_reload::LastReload;
use crate::metrics::{ResultLabels, RouteModeLabels};
use crate::route::Mode;
use crate::tls::ClientIdentity;
use crate::Shared;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watched::{relevant, rewatch, watched_files};

/// How long a burst of file events is left to settle before one reload.
const SETTLE: Duration = Duration::from_millis(250);

/// Applies config changes; one reload at a time.
#[derive(Debug)]
pub struct Reloader {
    shared: Arc<Shared>,
    file: PathBuf,
    lock: tokio::sync::Mutex<()>,
    /// The process's shutdown: accounts a reload adds run their tasks until it.
    shutdown: CancellationToken,
}

impl Reloader {
    pub fn new(shared: Arc<Shared>, file: PathBuf, shutdown: CancellationToken) -> Arc<Reloader> {
        Arc::new(Reloader {
            shared,
            file,
            lock: tokio::sync::Mutex::new(()),
            shutdown,
        })
    }

    /// Rebuilds from the files; true when a new snapshot was applied.
    pub async fn reload(&self) -> bool {
        let _one_at_a_time = self.lock.lock().await;
        let old = self.shared.snapshot.load_full();
        match self.validate_and_build(&old).await {
            Ok(built) => {
                self.swap(&old, built);
                true
            }
            Err(message) => {
                self.reject(&old, message);
                false
            }
        }
    }

    /// Reads, validates and builds the new config whole; the error is why it is
    /// rejected. Nothing the requests see changes, but for a new client certificate,
    /// which is taken up here (a broken one is kept out: `cert_rejected`).
    async fn validate_and_build(&self, old: &Snapshot) -> Result<Rebuilt, String> {
        let shared = &self.shared;
        let text = std::fs::read_to_string(&self.file)
            .map_err(|error| format!("cannot read {}: {error}", self.file.display()))?;
        let config = Config::parse(&self.file, &text).map_err(|error| error.to_string())?;
        warn_restart_only(&old.config, &config);
        let cert_rejected = !rotate_certificate(shared, &config);
        let oauth = assembly::oauth_client(&config, &shared.resolver).map_err(|e| e.to_string())?;
        let generation = old.generation + 1;
        let mut snapshot = Snapshot::build(config, &shared.resolver, generation, shared.lanes)
            .map_err(|error| error.to_string())?;
        let accounts = account_reload::prepare(shared, &snapshot.config, oauth)
            .await
            .map_err(|error| error.to_string())?;
        snapshot.series = shared.history.series_for(&snapshot.labels);
        Ok(Rebuilt {
            snapshot,
            accounts,
            cert_rejected,
        })
    }

    /// Publishes the rebuilt accounts and snapshot, then the metrics, the rollback
    /// readiness, `/status`'s last reload and history, and the log lines that say so.
    fn swap(&self, old: &Arc<Snapshot>, rebuilt: Rebuilt) {
        let shared = &self.shared;
        let Rebuilt {
            snapshot,
            accounts,
            cert_rejected,
        } = rebuilt;
        let personal_before = personal_bearers(shared);
        account_reload::publish(shared, &snapshot.config, accounts, &self.shutdown);
        let personal_changed = personal_bearers(shared) != personal_before;
        snapshot.carry_counts_from(old);
        let changes = mode_changes(old, &snapshot);
        let generation = snapshot.generation;
        let snapshot = Arc::new(snapshot);
        shared.snapshot.store(snapshot.clone());
        publish(shared, &snapshot);
        crate::rollback_readiness::after_reload(shared, old, &snapshot, personal_changed);
        let result = if cert_rejected {
            "cert_rejected"
        } else {
            "success"
        };
        shared
            .metrics
            .config_reloads
            .get_or_create(&ResultLabels::of(result))
            .inc();
        shared.last_reload.store(Some(Arc::new(LastReload {
            at: std::time::SystemTime::now(),
            result,
            error: cert_rejected.then(|| "the new client certificate or key was refused; the old one stays in use (the log says why)".to_owned()),
        })));
        let sha256 = &snapshot.config.sha256;
        let rollback = snapshot.config.rollback_all;
        shared
            .history
            .reload_applied(generation, result, rollback, &changes);
        tracing::warn!(generation, %sha256, file = %self.file.display(), "config applied");
        for (route, (before, after)) in changes {
            tracing::warn!(generation, %route, "route mode changed: {before} -> {after}");
        }
    }

    /// Says a reload was rejected (log, metric, history, `/status`); the old config stays.
    fn reject(&self, old: &Snapshot, message: String) {
        let shared = &self.shared;
        tracing::error!(
            generation = old.generation,
            "config reload rejected, the running config stays: {message}"
        );
        shared
            .metrics
            .config_reloads
            .get_or_create(&ResultLabels::of("failure"))
            .inc();
        shared.history.reload_rejected(&message);
        shared.last_reload.store(Some(Arc::new(LastReload {
            at: std::time::SystemTime::now(),
            result: "failure",
            error: Some(message),
        })));
    }
}

/// What a reload built before it is swapped in.
struct Rebuilt {
    snapshot: Snapshot,
    accounts: (Built, Company),
    cert_rejected: bool,
}

/// Warns about each changed key that takes effect only after a restart.
fn warn_restart_only(old: &Config, new: &Config) {
    for setting in needs_restart(old, new) {
        let key = setting.key;
        let note = setting
            .note
            .map(|note| format!(" ({note})"))
            .unwrap_or_default();
        tracing::warn!("{key} changed: it takes effect after a restart{note}; the rest of the config applies now");
    }
}

/// Takes up `config`'s client certificate and key when they changed; false when they
/// cannot be used (the current pair stays).
fn rotate_certificate(shared: &Shared, config: &Config) -> bool {
    match ClientIdentity::load_current(&config.mtls.cert_file, &config.mtls.key_file) {
        Ok(identity) => {
            let current = shared.resolver.current();
            if identity.key.cert != current.key.cert || identity.cert_file != current.cert_file {
                tracing::warn!(
                    cert_file = %identity.cert_file.display(),
                    expires_unix = identity.not_after_unix(),
                    "client certificate rotated: new connections present the new certificate"
                );
                shared.resolver.replace(identity);
            }
            true
        }
        Err(error) => {
            tracing::error!(
                "the new client certificate/key cannot be used, keeping the current pair: {error}"
            );
            false
        }
    }
}

/// Each account's name and personal-token bearer, to tell whether a reload changed one.
fn personal_bearers(shared: &Shared) -> Vec<(Arc<str>, Option<http::HeaderValue>)> {
    let accounts = shared.accounts.load();
    let bearers = accounts
        .iter()
        .map(|a| (a.name.clone(), a.personal_bearer.clone()));
    bearers.collect()
}

/// Sets the metrics that mirror a snapshot: rollback state and each route's mode.
pub fn publish(shared: &Shared, snapshot: &Snapshot) {
    let metrics = &shared.metrics;
    metrics
        .rollback_active
        .set(i64::from(snapshot.config.rollback_all));
    metrics.zero_route_counters(snapshot.config.routes.routes());
    let routes = snapshot.config.routes.routes();
    let modes = routes
        .iter()
        .map(|route| route.mode)
        .chain([Mode::OAuthMtls]);
    for (label, mode) in snapshot.labels.iter().zip(modes) {
        metrics.zero_sca_counters(label, mode);
    }
    metrics.route_mode.clear();
    for (route, mode) in effective_modes(snapshot) {
        for candidate in Mode::ALL {
            let labels = RouteModeLabels {
                route: Arc::from(route.as_str()),
                mode: candidate.as_str(),
            };
            metrics
                .route_mode
                .get_or_create(&labels)
                .set(i64::from(candidate == mode));
        }
    }
}

/// Each route's effective mode (after the rollback flag), the default route included.
pub fn effective_modes(snapshot: &Snapshot) -> BTreeMap<String, Mode> {
    let rollback = snapshot.config.rollback_all;
    snapshot
        .config
        .routes
        .all()
        .iter()
        .map(|route| (route.name.clone(), route.effective(rollback).mode))
        .collect()
}

fn mode_changes(old: &Snapshot, new: &Snapshot) -> Vec<(String, (String, String))> {
    let before = effective_modes(old);
    let after = effective_modes(new);
    let name = |mode: Option<&Mode>| mode.map_or("absent".to_owned(), |m| m.as_str().to_owned());
    let mut routes: Vec<&String> = before.keys().chain(after.keys()).collect();
    routes.sort();
    routes.dedup();
    routes
        .into_iter()
        .filter(|route| before.get(*route) != after.get(*route))
        .map(|route| {
            (
                route.clone(),
                (name(before.get(route)), name(after.get(route))),
            )
        })
        .collect()
}

/// Watches the folders of the config and the files it names, and SIGHUP, until
/// `shutdown`; each settled burst of changes is one reload.
pub async fn watch(reloader: Arc<Reloader>, shutdown: CancellationToken) {
    let (sender, mut events) = tokio::sync::mpsc::channel::<notify::Event>(64);
    let watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                if sender.try_send(event).is_err() {
                    tracing::debug!("file event dropped: the queue is full");
                }
            }
            Err(error) => tracing::debug!("file watch error: {error}"),
        });
    let mut watcher = match watcher {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::error!("cannot watch files ({error}); reload with SIGHUP");
            None
        }
    };
    let mut watched_folders: Vec<PathBuf> = Vec::new();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut first = true;
    loop {
        let snapshot = reloader.shared.snapshot.load_full();
        let files = watched_files(&snapshot.config);
        if let Some(watcher) = watcher.as_mut() {
            rewatch(watcher, &mut watched_folders, &files);
        }
        // A change between loading the config and watching it would go unseen.
        if std::mem::take(&mut first) {
            let now = std::fs::read(&reloader.file).map(|text| crate::config::sha256_hex(&text));
            if now.is_ok_and(|sha| sha != snapshot.config.sha256) {
                reloader.reload().await;
                continue;
            }
        }
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        let mut hung_up = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hup => {
                tracing::info!("SIGHUP: reloading");
                hung_up = true;
            }
            Some(event) = events.recv() => {
                tracing::debug!(?event, "file event");
                if !relevant(&event, &files) {
                    continue;
                }
                tokio::time::sleep(SETTLE).await;
                while events.try_recv().is_ok() {}
                tracing::info!("files changed: reloading");
            }
        }
        reloader.reload().await;
        if hung_up {
            adopt_stored_lineage(&reloader.shared).await;
        }
    }
}

/// SIGHUP also re-reads every account's token store: a lineage `wisegate authorize`
/// stored while this process ran (without handing it over) is taken up.
async fn adopt_stored_lineage(shared: &Shared) {
    for account in shared.accounts.load_full().iter() {
        if let Err(error) = account.tokens.reload_from_store().await {
            let account = &*account.name;
            tracing::warn!(account, "SIGHUP: the token store was not re-read: {error}");
        }
    }
}
