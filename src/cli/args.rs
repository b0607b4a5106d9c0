//! The command line's grammar (clap derive): the subcommands, their flags and their
//! `--help` text. Nothing here runs anything.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "wisegate",
    version,
    about = "Plain HTTP in, OAuth 2.0 bearer + mutual TLS out to Wise"
)]
pub struct Cli {
    /// Log format before the command (`wisegate --log-format json run`), as earlier
    /// versions took it; the commands that read a config take it too.
    #[arg(long, value_enum, hide = true)]
    pub log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`, for the commands that read a config (`csr` logs nothing).
#[derive(Args)]
pub struct LogArgs {
    /// Log format (overrides log.format in the config).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The account (`[[account]]` name) to act on; required when several are
        /// configured.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
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
    /// Helpers for several Wise accounts through one wisegate (`[[account]]`).
    Account {
        #[command(subcommand)]
        action: AccountAction,
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
    Csr(CsrArgs),
}

// What `wisegate csr` is asked for (the variant's doc comment is its --help).
#[derive(Args)]
pub struct CsrArgs {
    /// The organisation (subject O), e.g. "Your Company Ltd".
    #[arg(long, value_parser = wisegate::csr::parse_org)]
    pub org: String,
    /// The two-letter country code (subject C), e.g. GB.
    #[arg(long, value_name = "CC", value_parser = wisegate::csr::parse_country)]
    pub country: Option<String>,
    /// The key type (Wise accepts RSA 2048/3072/4096 and EC P-256/P-384).
    #[arg(long, value_enum, default_value = "rsa4096")]
    pub key_type: KeyTypeArg,
    /// Where to write the private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "FILE")]
    pub key_out: PathBuf,
    /// Where to write the CSR (PEM).
    #[arg(long, value_name = "FILE")]
    pub csr_out: PathBuf,
    /// Replace existing files (the old key, and the certificate issued for it, are lost).
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyTypeArg {
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
pub enum TokenAction {
    /// Show the stored token's expiry (never the token): every account's, or one's.
    Status {
        /// The config file (TOML; see config.example.toml). Relative paths in it are
        /// relative to its folder.
        #[arg(long, env = "WISEGATE_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
        /// Only this account (`[[account]]` name); all of them without it.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
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
        /// The account (`[[account]]` name) to act on; required when several are
        /// configured.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AccountAction {
    /// Print the SHA-256 of an app token for `app_token_sha256` in an `[[account]]`.
    ///
    /// Reads the token from stdin (one trailing newline is dropped) and prints its
    /// lower-case hex SHA-256; the token is never echoed. Example:
    /// `wisegate account hash-token < app-token.txt`.
    HashToken,
}
