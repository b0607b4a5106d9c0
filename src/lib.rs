//! wisegate: a sidecar that lets an application written for Wise's personal-token API
//! move to OAuth 2.0 + mutual TLS without changing its code. The app sends plain HTTP to
//! the listener; wisegate removes the app's credential, adds the route's credential and
//! forwards over (m)TLS to Wise.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, validated into a typed [`config::Config`].
//! - [`route`]: path patterns and the route table (method + path -> route, the default
//!   route last) and what a route does now; [`route_counts`]: answers per route.
//! - [`tls`]: PEM loading, the client identity and its resolver, rustls configs.
//! - [`upstream`]: one pooled HTTP/2 + HTTP/1.1 client per upstream host.
//! - [`token`]: the OAuth client, the token store (a file, or Redis shared by replicas)
//!   and the token manager.
//! - [`app`]: assembles the parts; a [`app::Snapshot`] is one config's request-path state.
//! - [`proxy`]: the request path. [`headers`]: hop-by-hop hygiene. [`body`]: body types;
//!   [`app_body`]: the app's request body as read and streamed; [`body_stall`]: its pause
//!   limit.
//! - [`server`]: the app-facing listener; [`watchdog`]: its per-connection deadlines;
//!   [`admission`]: `max_connections`. [`admin`]: `/healthz`, `/readyz`, `/metrics`,
//!   the token endpoints; [`readiness`]: what `/readyz` says; [`admin_client`]: the
//!   command line's way to a running wisegate.
//! - [`slots`]: the upstream request slots, shared out per app connection and client.
//! - [`reload`]: file watch + SIGHUP -> a new validated snapshot, swapped in atomically.
//! - [`rollback_readiness`]: whether the legacy path would work if ops rolled back.
//! - [`metrics`]: the Prometheus metrics. [`expiry`]: the daily certificate-expiry warning.
//!   [`timestamps`]: Unix seconds and RFC 3339, as wisegate writes times.
//! - [`authorize`]: the one-time OAuth authorization step. [`check`]: `wisegate check`;
//!   [`check_online`]: its `--online` part, which changes nothing.
//! - [`csr`]: `wisegate csr`, the private key and CSR for Wise's Developer Hub.
//! - [`error`]: wisegate's own answers. [`secret`]: redacting secret types.
//!   [`file_safety`]: credential files and the token store folder others may read or write.
//!
//! Tests and embedders call [`run`] with listeners they bound themselves.

pub mod admin;
pub mod admin_client;
pub mod admission;
pub mod app;
pub mod app_body;
pub mod authorize;
pub mod body;
pub mod body_stall;
pub mod check;
pub mod check_online;
pub mod config;
pub mod csr;
pub mod error;
pub mod expiry;
pub mod file_safety;
pub mod headers;
pub mod lanes;
pub mod metrics;
pub mod proxy;
pub mod readiness;
pub mod reload;
pub mod rollback_readiness;
pub mod route;
pub mod route_counts;
pub mod sca;
pub mod secret;
pub mod server;
pub mod slots;
pub mod status;
pub mod timestamps;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod watchdog;

use app::{BuildError, Snapshot};
use arc_swap::ArcSwap;
use config::Config;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tls::ClientCertResolver;
use token::TokenManager;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// State shared by every request: the current snapshot and the long-lived parts.
#[derive(Debug)]
pub struct Shared {
    pub snapshot: ArcSwap<Snapshot>,
    pub tokens: Arc<TokenManager>,
    pub resolver: Arc<ClientCertResolver>,
    pub metrics: metrics::Metrics,
    pub migration: proxy::Migration,
    pub shutting_down: AtomicBool,
    /// Whether a rollback would work: the last probe of the legacy path.
    pub rollback_readiness: rollback_readiness::Readiness,
    /// The last config reload's outcome (none yet: the config of the start).
    pub last_reload: arc_swap::ArcSwapOption<reload::LastReload>,
    /// The serving lanes, counted once at start (upstream clients are made per lane).
    pub lanes: usize,
}

/// The listeners `run` serves on, bound by the caller.
pub struct Listeners {
    pub proxy: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let proxy = TcpListener::bind(config.listen.address)
            .await
            .map_err(|error| {
                std::io::Error::new(
                    error.kind(),
                    format!(
                        "cannot listen on {} (listen.address): {error}",
                        config.listen.address
                    ),
                )
            })?;
        let admin = TcpListener::bind(config.admin.address)
            .await
            .map_err(|error| {
                std::io::Error::new(
                    error.kind(),
                    format!(
                        "cannot listen on {} (admin.address): {error}",
                        config.admin.address
                    ),
                )
            })?;
        Ok(Listeners { proxy, admin })
    }
}

/// Builds everything from `config` (failing on bad certificates, keys, secrets or
/// store), then serves until `shutdown` is cancelled and in-flight requests drained.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), BuildError> {
    file_safety::warn(&config);
    let resolver = app::load_identity(&config)?;
    let tokens = Arc::new(app::token_manager(&config, &resolver).await?);
    let limits = config.limits.clone();
    let grace = config.listen.shutdown_grace;
    let lanes = lanes::count(config.listen.threads);
    // A refresh in flight at shutdown is bounded by the token call's own timeout.
    let settle_within = limits.upstream_timeout;
    let config_file = config.file.clone();
    let snapshot = Arc::new(Snapshot::build(config, &resolver, 1, lanes)?);
    let mut metrics = metrics::Metrics::new(tokens.refresh_counter())
        .with_unauthorized_counter(tokens.unauthorized_without_refresh_counter());
    if tokens.store().is_shared() {
        metrics = metrics.with_token_store_gauge();
    }
    let shared = Arc::new(Shared {
        snapshot: ArcSwap::new(snapshot.clone()),
        metrics,
        tokens,
        resolver,
        migration: proxy::Migration::default(),
        shutting_down: AtomicBool::new(false),
        rollback_readiness: rollback_readiness::Readiness::default(),
        last_reload: arc_swap::ArcSwapOption::empty(),
        lanes,
    });
    reload::publish(&shared, &snapshot);
    let reloader = reload::Reloader::new(shared.clone(), config_file);
    let watching = tokio::spawn(reload::watch(reloader, shutdown.clone()));
    tracing::info!(
        listen = %listeners.proxy.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        admin = %listeners.admin.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        "wisegate is serving"
    );

    let refresher = tokio::spawn(shared.tokens.clone().keep_fresh(shutdown.clone()));
    let syncing = tokio::spawn(token::sync::keep_in_sync(
        shared.tokens.clone(),
        shutdown.clone(),
    ));
    let prober = tokio::spawn(rollback_readiness::keep_probing(
        shared.clone(),
        shutdown.clone(),
    ));
    let warner = tokio::spawn(expiry::warn_daily(
        shared.resolver.clone(),
        shutdown.clone(),
    ));
    let admin_stop = CancellationToken::new();
    let admin_shared = shared.clone();
    // The admin listener has the app listener's connection limits: a silent socket there
    // must not keep `/healthz` from the probes either.
    let admin_listening = server::Listening {
        name: "admin",
        limits: limits.clone(),
        grace: std::time::Duration::from_secs(1),
        lanes: 0,
    };
    let admin = tokio::spawn(server::serve(
        listeners.admin,
        admin_listening,
        admin_stop.clone(),
        move |request| admin::handle(admin_shared.clone(), request),
    ));

    let marker = shared.clone();
    let proxy_stop = shutdown.clone();
    let marking = async move {
        proxy_stop.cancelled().await;
        marker.shutting_down.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections, draining requests in flight");
    };
    let proxy_shared = shared.clone();
    let listening = server::Listening {
        name: "app",
        limits,
        grace,
        lanes,
    };
    let serving = server::serve(listeners.proxy, listening, shutdown, move |request| {
        proxy::handle(proxy_shared.clone(), request)
    });
    tokio::join!(marking, serving);
    // A refresh a request started just before (its tokens not yet saved) still finishes.
    shared.tokens.settle(settle_within).await;
    admin_stop.cancel();
    let _ = admin.await;
    let _ = refresher.await;
    let _ = syncing.await;
    let _ = watching.await;
    let _ = warner.await;
    let _ = prober.await;
    Ok(())
}
