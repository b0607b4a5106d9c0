//! `wisegate run`: binds the listeners and serves until SIGTERM or SIGINT.

use tokio_util::sync::CancellationToken;
use wisegate::config::Config;
use wisegate::Listeners;

/// Serves `config` until a stop signal, then drains.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&config).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    wisegate::run(config, listeners, shutdown).await?;
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}
