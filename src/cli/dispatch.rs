//! From parsed arguments to the command: the config read, logging started in its format
//! (`--log-format` wins), then the subcommand's module.

use super::args::{AccountAction, Cli, Command, LogFormatArg, TokenAction};
use super::{account, authorize, check, serve, token, EXIT_USAGE};
use std::path::Path;
use wisegate::config::{Config, LogFormat};
use wisegate::log_filter;

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

/// Starts logging with `WISEGATE_LOG` if it is set and not empty, else with `level`
/// (`log.level`, which the config's validation has already checked). A bad `WISEGATE_LOG` is a usage error
/// (exit 64), as a bad argument is: silently logging less is how incidents go unseen.
fn init_logging(format: LogFormat, level: &str) {
    let (source, filter) = match std::env::var("WISEGATE_LOG") {
        // Set but empty, as a manifest's placeholder leaves it: as if unset.
        Ok(text) if text.trim().is_empty() => ("log.level", log_filter::parse(level)),
        Ok(text) => ("the WISEGATE_LOG variable", log_filter::parse(&text)),
        Err(std::env::VarError::NotPresent) => ("log.level", log_filter::parse(level)),
        Err(std::env::VarError::NotUnicode(_)) => {
            ("the WISEGATE_LOG variable", Err("is not UTF-8".to_owned()))
        }
    };
    let filter = filter.unwrap_or_else(|problem| {
        eprintln!("wisegate: {source}: {problem}");
        std::process::exit(i32::from(EXIT_USAGE));
    });
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
