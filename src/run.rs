//! Serving, from a config to a drained shutdown: [`run`] builds the [`Shared`] state,
//! starts the background tasks (reload watch, token refresh and store sync, the rollback
//! probe, the certificate-expiry warning) and the two listeners, and once `shutdown` is
//! cancelled stops them in order: the app listener drains its requests first, the admin
//! listener stays up until then, the background tasks stop last.

use crate::assembly::BuildError;
use crate::config::{Config, Limits};
use crate::history::Clock;
use crate::shared::Shared;
use crate::{
    account, admin, expiry, file_safety, lanes, proxy, reload, rollback_readiness, server,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The listeners `run` serves on, bound by the caller.
pub struct Listeners {
    pub proxy: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let proxy = bind(config.listen.address, "listen.address").await?;
        let admin = bind(config.admin.address, "admin.address").await?;
        Ok(Listeners { proxy, admin })
    }
}

/// Binds `address`, an error naming it and its config key.
async fn bind(address: SocketAddr, key: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await.map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot listen on {address} ({key}): {error}"),
        )
    })
}

/// Builds everything from `config` (failing on bad certificates, keys, secrets or
/// store), then serves until `shutdown` is cancelled and in-flight requests drained.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> Result<(), BuildError> {
    run_with_clock(config, listeners, shutdown, Clock::System).await
}

/// [`run`] with `/status`'s history on `clock`: a manual clock lets a test or a demo
/// pass an hour in a minute.
pub async fn run_with_clock(
    config: Config,
    listeners: Listeners,
    shutdown: CancellationToken,
    clock: Clock,
) -> Result<(), BuildError> {
    file_safety::warn(&config);
    let limits = config.limits.clone();
    let grace = config.listen.shutdown_grace;
    let config_file = config.file.clone();
    let lanes = lanes::count(config.listen.threads);
    let (shared, snapshot) = Shared::build(config, lanes, clock).await?;
    reload::publish(&shared, &snapshot);
    let background = Background::start(&shared, config_file, &shutdown, &listeners);
    let admin_stop = CancellationToken::new();
    let admin = spawn_admin(&shared, listeners.admin, &limits, admin_stop.clone());
    serve_app(&shared, listeners.proxy, &limits, grace, shutdown).await;
    // A refresh a request started just before (its tokens not yet saved) still finishes;
    // one in flight is bounded by the token call's own timeout.
    for account in shared.accounts.load_full().iter() {
        account.tokens.settle(limits.upstream_timeout).await;
    }
    admin_stop.cancel();
    let _ = admin.await;
    background.join().await;
    Ok(())
}

/// The tasks that run beside the listeners until `shutdown`.
struct Background(Vec<JoinHandle<()>>);

impl Background {
    fn start(
        shared: &Arc<Shared>,
        config_file: PathBuf,
        shutdown: &CancellationToken,
        listeners: &Listeners,
    ) -> Background {
        let reloader = reload::Reloader::new(shared.clone(), config_file, shutdown.clone());
        let watching = tokio::spawn(reload::watch(reloader, shutdown.clone()));
        let address = |listener: &TcpListener| {
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        tracing::info!(
            listen = %address(&listeners.proxy),
            admin = %address(&listeners.admin),
            "wisegate is serving"
        );
        let mut tasks = vec![watching];
        for account in shared.accounts.load().iter() {
            tasks.extend(account::tasks::start(account, shutdown));
        }
        tasks.extend([
            tokio::spawn(expiry::warn_daily(
                shared.resolver.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(rollback_readiness::keep_probing(
                shared.clone(),
                shutdown.clone(),
            )),
        ]);
        Background(tasks)
    }

    /// Waits for every task (each ends on `shutdown`).
    async fn join(self) {
        for task in self.0 {
            let _ = task.await;
        }
    }
}

/// The admin listener, until `stop`. It has the app listener's connection limits: a
/// silent socket there must not keep `/healthz` from the probes either.
fn spawn_admin(
    shared: &Arc<Shared>,
    listener: TcpListener,
    limits: &Limits,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let listening = server::Listening {
        name: "admin",
        limits: limits.clone(),
        grace: Duration::from_secs(1),
        lanes: 0,
    };
    let shared = shared.clone();
    tokio::spawn(server::serve(
        listener,
        listening,
        stop,
        move |request, connection| admin::handle(shared.clone(), request, connection),
    ))
}

/// The app listener until `shutdown`, then until its requests in flight have drained
/// (at most `grace`); `/readyz` says "shutting down" from the moment it is cancelled.
async fn serve_app(
    shared: &Arc<Shared>,
    listener: TcpListener,
    limits: &Limits,
    grace: Duration,
    shutdown: CancellationToken,
) {
    let marker = shared.clone();
    let cancelled = shutdown.clone();
    let marking = async move {
        cancelled.cancelled().await;
        marker.shutting_down.store(true, Ordering::Relaxed);
        tracing::info!("shutting down: no new connections, draining requests in flight");
    };
    let listening = server::Listening {
        name: "app",
        limits: limits.clone(),
        grace,
        lanes: shared.lanes,
    };
    let shared = shared.clone();
    let serving = server::serve(listener, listening, shutdown, move |request, connection| {
        proxy::handle(shared.clone(), request, connection)
    });
    tokio::join!(marking, serving);
}
