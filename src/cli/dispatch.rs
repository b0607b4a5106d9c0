//! From parsed arguments to the command: the config read, logging started in its format
//! (`--log-format` wins), then the subcommand's module.

use super::args::{AccountAction, Cli, Command, LogFormatArg, TokenAction};
use super::{account, authorize, check, serve, token};
use std::path::Path;
use wisegate::config::{Config, LogFormat};

/// Runs the command `cli` names.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let early = cli.log_format;
    let load = |path: &Path, log: Option<LogFormatArg>| load(path, log.or(early));
    match cli.command {
        Command::Run { config, log } => {
            // From here on SIGHUP means "reload", never the default "terminate", even
            // before the reload watcher listens.
            let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
            serve::run(load(&config, log.log_format)?).await
        }
        Command::Authorize {
            config,
            log,
            account,
            code,
            force,
        } => authorize::run(&load(&config, log.log_format)?, account, code, force).await,
        Command::Token {
            action:
                TokenAction::Status {
                    config,
                    log,
                    account,
                },
        } => token::status(&load(&config, log.log_format)?, account.as_deref()).await,
        Command::Token {
            action:
                TokenAction::Refresh {
                    config,
                    log,
                    account,
                },
        } => token::refresh(&load(&config, log.log_format)?, account.as_deref()).await,
        Command::Account {
            action: AccountAction::HashToken,
        } => account::hash_token(),
        Command::Check {
            config,
            log,
            online,
        } => check::check(&load(&config, log.log_format)?, online).await,
        Command::Csr(args) => check::csr(args),
    }
}

/// Reads the config and starts logging in its format (`--log-format` wins).
fn load(path: &Path, log_format: Option<LogFormatArg>) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    let format = match log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    };
    init_logging(format, &config.log.level);
    Ok(config)
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WISEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
