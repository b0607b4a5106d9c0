//! The `wisegate` command line: parses arguments, sets up logging, and calls into the
//! library. Exit codes: 0 success, 64 invalid arguments or config, 1 anything else.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;
use wisegate::admin_client::{self, Lookup};
use wisegate::config::{Config, ConfigError, LogFormat};
use wisegate::{app, authorize, Listeners};

/// mimalloc instead of glibc's malloc: under load glibc's arenas contended on their locks
/// and kept freed memory resident (bench/RESULTS.md, "What was tried", has the figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Invalid arguments or config (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Parser)]
#[command(
    name = "wisegate",
    version,
    about = "Plain HTTP in, OAuth 2.0 bearer + mutual TLS out to Wise"
)]
struct Cli {
    /// Log format before the command (`wisegate --log-format json run`), as earlier
    /// versions took it; the commands that read a config take it too.
    #[arg(long, value_enum, hide = true)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`, for the commands that read a config (`csr` logs nothing).
#[derive(Args)]
struct LogArgs {
    /// Log format (overrides log.format in the config).
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: the app-facing listener and the admin listener.
    Run {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// The one-time OAuth step: get a code, exchange it, store the tokens.
    ///
    /// Changes: the token store (a lineage already there is replaced, after asking; a
    /// wisegate running this config is handed the new lineage through its admin listener).
    Authorize {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
        /// A code already obtained from Wise's redirect.
        #[arg(long)]
        code: Option<String>,
        /// Replace a lineage already in the token store without asking (required to
        /// replace one when stdin is not a terminal).
        #[arg(long)]
        force: bool,
    },
    /// Inspect or refresh the stored OAuth token.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Validate the config and every file it names; print a checklist; non-zero on failure.
    ///
    /// Changes nothing, also with --online: it never refreshes the token.
    Check {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
        /// Also talk to Wise, changing nothing: TLS with the legacy host, the client
        /// certificate on the mTLS host, the token endpoint by a client-credentials grant
        /// (the user's tokens are untouched) and Wise's test call. No refresh.
        #[arg(long)]
        online: bool,
    },
    /// Make the private key and the CSR that Wise's Developer Hub asks for.
    Csr {
        /// The organisation (subject O), e.g. "Your Company Ltd".
        #[arg(long, value_parser = wisegate::csr::parse_org)]
        org: String,
        /// The two-letter country code (subject C), e.g. GB.
        #[arg(long, value_name = "CC", value_parser = wisegate::csr::parse_country)]
        country: Option<String>,
        /// The key type (Wise accepts RSA 2048/3072/4096 and EC P-256/P-384).
        #[arg(long, value_enum, default_value = "rsa4096")]
        key_type: KeyTypeArg,
        /// Where to write the private key (PKCS#8 PEM, mode 0600).
        #[arg(long, value_name = "FILE")]
        key_out: PathBuf,
        /// Where to write the CSR (PEM).
        #[arg(long, value_name = "FILE")]
        csr_out: PathBuf,
        /// Replace existing files (the old key, and the certificate issued for it, are lost).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyTypeArg {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ec256,
    Ec384,
}

impl From<KeyTypeArg> for wisegate::csr::KeyType {
    fn from(arg: KeyTypeArg) -> Self {
        use wisegate::csr::KeyType;
        match arg {
            KeyTypeArg::Rsa2048 => KeyType::Rsa2048,
            KeyTypeArg::Rsa3072 => KeyType::Rsa3072,
            KeyTypeArg::Rsa4096 => KeyType::Rsa4096,
            KeyTypeArg::Ec256 => KeyType::EcP256,
            KeyTypeArg::Ec384 => KeyType::EcP384,
        }
    }
}

#[derive(Subcommand)]
enum TokenAction {
    /// Show the stored token's expiry (never the token).
    Status {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Refresh the stored token now.
    ///
    /// Changes: the access token (Wise invalidates the old one) and the token store. With
    /// a wisegate running this config (admin.address on this host), that process
    /// refreshes, so it keeps a valid token; otherwise this command refreshes itself.
    Refresh {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("wisegate: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(config_error) = error.downcast_ref::<ConfigError>() {
                eprintln!("wisegate: {config_error}");
                return ExitCode::from(EXIT_USAGE);
            }
            eprintln!("wisegate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &std::path::Path, log_format: Option<LogFormatArg>) -> anyhow::Result<Config> {
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

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config, log } => {
            // From here on SIGHUP means "reload", never the default "terminate", even
            // before the reload watcher listens.
            let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
            let config = load(&config, log.log_format.or(cli.log_format))?;
            let listeners = Listeners::bind(&config).await?;
            let shutdown = CancellationToken::new();
            tokio::spawn(stop_on_signal(shutdown.clone()));
            wisegate::run(config, listeners, shutdown).await?;
            Ok(())
        }
        Command::Authorize {
            config,
            log,
            code,
            force,
        } => {
            let config = load(&config, log.log_format.or(cli.log_format))?;
            confirm_replacing(&config, force).await?;
            let stdin = tokio::io::BufReader::new(tokio::io::stdin());
            let authorized =
                authorize::authorize(&config, code, stdin, |text| println!("{text}")).await?;
            println!(
                "Authorized. Tokens stored in {} (access token valid until {}).",
                config.oauth.token_store.display(),
                rfc3339(authorized.expires_at)
            );
            match authorized.profile_id {
                Some(profile) => println!("profileId: {profile}"),
                None => println!(
                    "profileId: not given with --code (see the redirect URL's profileId parameter)"
                ),
            }
            hand_over(&config).await;
            Ok(())
        }
        Command::Token {
            action: TokenAction::Status { config, log },
        } => {
            let config = load(&config, log.log_format.or(cli.log_format))?;
            let store = app::token_store(&config)?;
            match store.load().await? {
                None => println!(
                    "No tokens stored in {}: run `wisegate authorize`.",
                    store.describe()
                ),
                Some(lineage) => {
                    let tokens = lineage.tokens;
                    let now = SystemTime::now();
                    let state = if tokens.expires_at > now {
                        "valid"
                    } else {
                        "EXPIRED"
                    };
                    println!("store:          {}", store.describe());
                    if store.is_shared() {
                        println!("generation:     {}", lineage.generation);
                    }
                    println!(
                        "access token:   {state}, expires {}",
                        rfc3339(tokens.expires_at)
                    );
                    println!("obtained:       {}", rfc3339(tokens.obtained_at));
                    match tokens.refresh_token_expires_at {
                        Some(at) => println!("refresh token:  present, expires {}", rfc3339(at)),
                        None if tokens.refresh_token.is_some() => {
                            println!("refresh token:  present")
                        }
                        None => println!("refresh token:  none"),
                    }
                    if let Some(profile) = tokens.profile_id {
                        println!("profileId:      {profile}");
                    }
                }
            }
            // The last refresh result lives in the running process: ask it.
            let last = match wisegate::status::fetch_running(config.admin.address).await {
                Some(status) => match &status["token"]["last_refresh"] {
                    serde_json::Value::Null => "none since the running wisegate started".to_owned(),
                    last => match last["error"].as_str() {
                        None => format!("succeeded at {}", last["at"].as_str().unwrap_or("?")),
                        Some(error) => {
                            format!("FAILED at {}: {error}", last["at"].as_str().unwrap_or("?"))
                        }
                    },
                },
                None => format!(
                    "unknown: no running wisegate answered on {} (admin.address)",
                    config.admin.address
                ),
            };
            println!("last refresh:   {last}");
            Ok(())
        }
        Command::Token {
            action: TokenAction::Refresh { config, log },
        } => {
            let config = load(&config, log.log_format.or(cli.log_format))?;
            match admin_client::find(&config).await? {
                Lookup::Found(running) => {
                    let answer = running.refresh().await?;
                    println!(
                        "Refreshed by the running wisegate on {} (admin.address), which uses the new access token, valid until {}.",
                        running.address,
                        answer.expires_at.unwrap_or_default()
                    );
                    return Ok(());
                }
                Lookup::NotLoopback => eprintln!(
                    "note: admin.address {} is not on this host, so no running wisegate was asked: one running this config now holds an invalidated token (it refreshes on its next 401)",
                    config.admin.address
                ),
                Lookup::NotRunning => {}
            }
            let resolver = app::load_identity(&config)?;
            let tokens = app::token_manager(&config, &resolver).await?;
            tokens.refresh_now().await.context("refresh failed")?;
            let status = tokens.status();
            println!(
                "Refreshed. New access token valid until {}.",
                status.expires_at.map(rfc3339).unwrap_or_default()
            );
            Ok(())
        }
        Command::Check {
            config,
            log,
            online,
        } => {
            let config = load(&config, log.log_format.or(cli.log_format))?;
            let list = wisegate::check::check(&config, online).await;
            print!("{}", list.text);
            if list.failures > 0 {
                anyhow::bail!("{} check(s) failed", list.failures);
            }
            println!("All checks passed.");
            Ok(())
        }
        Command::Csr {
            org,
            country,
            key_type,
            key_out,
            csr_out,
            force,
        } => {
            let request = wisegate::csr::CsrRequest {
                org,
                country,
                key_type: key_type.into(),
                key_out,
                csr_out,
                force,
            };
            match wisegate::csr::create(&request) {
                Ok(()) => {
                    println!("{}", wisegate::csr::next_steps(&request));
                    Ok(())
                }
                Err(error) if error.is_usage() => {
                    eprintln!("wisegate: {error}");
                    std::process::exit(i32::from(EXIT_USAGE));
                }
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// Before `authorize` replaces a stored lineage: says so, and asks on a terminal; when
/// stdin is not one, only `--force` goes ahead (exit 64 otherwise).
async fn confirm_replacing(config: &Config, force: bool) -> anyhow::Result<()> {
    let store = app::token_store(config)?;
    // A store that cannot be read is reported by the authorization itself.
    let Ok(Some(lineage)) = store.load().await else {
        return Ok(());
    };
    println!(
        "The token store {} already holds a lineage (obtained {}, access token valid until {}). Authorizing again replaces it: its refresh token is no longer used, and a running wisegate switches to the new one.",
        store.describe(),
        rfc3339(lineage.tokens.obtained_at),
        rfc3339(lineage.tokens.expires_at)
    );
    if force {
        return Ok(());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!("wisegate: not replacing the stored lineage without --force (stdin is not a terminal): run `wisegate authorize --force` to replace it");
        std::process::exit(i32::from(EXIT_USAGE));
    }
    print!("Replace it? [y/N] ");
    std::io::Write::flush(&mut std::io::stdout())?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        anyhow::bail!("not authorized: the stored lineage is kept");
    }
    Ok(())
}

/// After `authorize` stored a lineage: a wisegate running this config takes it up now.
async fn hand_over(config: &Config) {
    match admin_client::find(config).await {
        Ok(Lookup::Found(running)) => match running.reload().await {
            Ok(answer) if answer.changed => println!(
                "The running wisegate on {} (admin.address) now uses the new tokens.",
                running.address
            ),
            Ok(_) => println!(
                "The running wisegate on {} (admin.address) already uses these tokens.",
                running.address
            ),
            Err(error) => eprintln!(
                "wisegate: the tokens are stored, but {error}; send the running wisegate SIGHUP to take them up"
            ),
        },
        Ok(Lookup::NotRunning) => {}
        Ok(Lookup::NotLoopback) => println!(
            "admin.address {} is not on this host: send a running wisegate SIGHUP to take up the new tokens.",
            config.admin.address
        ),
        Err(error) => eprintln!("wisegate: the tokens are stored, but {error}"),
    }
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

fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(seconds))
        .to_string()
}
