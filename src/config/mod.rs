//! Configuration: the TOML file read into [`raw::RawConfig`] (serde), then validated
//! into a typed [`Config`]. Every problem is reported at once, unknown keys
//! (`unknown.rs`) beside wrong values, each with the file, line and key, so a broken
//! config is fixed in one go. Relative paths are resolved against the config file's
//! folder. The keys a reload cannot apply are listed once, in `restart.rs`.

//!
//! # Layout
//!
//! `model.rs` (the typed [`Config`] and its sections), `limits.rs`, `account.rs` and
//! `store.rs` define what a config is; `problem.rs` what is wrong with one. `validate/`
//! builds the model from `raw.rs`, one file per section; this file reads the text,
//! adds unknown keys and line numbers, and is the only one that calls `validate`.

pub mod account;
mod limits;
mod locate;
mod model;
mod problem;
pub mod raw;
pub mod restart;
mod sentinel_url;
mod store;
mod unknown;
mod validate;

use std::path::Path;

pub use account::{AccountConfig, Accounts, PersonalTokenConfig, DEFAULT_ACCOUNT};
pub use limits::{Limits, DEFAULT_MIN_REFRESH_INTERVAL_ON_401, DEFAULT_TOKEN_STORE_WAIT};
pub use model::{
    Admin, Config, Environment, Listen, Log, LogFormat, Mtls, OAuth, SecretSource, Upstream,
};
pub use problem::{ConfigError, Problem};
pub use sentinel_url::{is_sentinel_url, SentinelUrl, SENTINEL_EXAMPLE};
pub use store::{RedisStoreConfig, RedisUrl, TokenStoreConfig};
pub use validate::validate;

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_owned(),
            problems: vec![Problem {
                key: String::new(),
                line: None,
                message: format!("cannot read the config file: {error}"),
            }],
        })?;
        Config::parse(file, &text)
    }

    /// Validates config text as if it had been read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let mut problems = unknown::unknown_keys(text);
        let refused = |mut problems: Vec<Problem>| {
            problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
            ConfigError {
                file: file.to_owned(),
                problems,
            }
        };
        let raw: raw::RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(error) => {
                problems.push(Problem {
                    key: String::new(),
                    line: error.span().map(|span| locate::line_of(text, span.start)),
                    message: error.message().to_owned(),
                });
                return Err(refused(problems));
            }
        };
        match validate(file, raw) {
            Ok(mut config) if problems.is_empty() => {
                config.sha256 = sha256_hex(text.as_bytes());
                Ok(config)
            }
            Ok(_) => Err(refused(problems)),
            Err(invalid) => {
                problems.extend(invalid.into_iter().map(|problem| Problem {
                    line: locate::line_of_key(text, &problem.key),
                    ..problem
                }));
                Err(refused(problems))
            }
        }
    }
}
