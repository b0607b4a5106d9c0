//! Turns a [`RawConfig`] into a [`Config`], collecting every problem instead of stopping
//! at the first. One file per section, each naming the keys it checks; `checker.rs` holds
//! the checks they share, `mod.rs` (the config module) adds the line numbers.

use super::account::{AccountConfig, Accounts, DEFAULT_ACCOUNT};
use super::model::{Config, Environment};
use super::problem::Problem;
use super::raw::RawConfig;
use checker::Checker;
use std::path::Path;

mod accounts;
mod checker;
mod limits;
mod listeners;
mod log;
mod oauth;
mod personal_token;
mod rollback;
mod routes;
mod slot_limits;
mod token_limits;
mod token_store;
mod upstream;

/// Validates `raw`, read from `file`; on failure every problem found (lines not yet set).
pub fn validate(file: &Path, raw: RawConfig) -> Result<Config, Vec<Problem>> {
    let mut c = Checker::new(file);
    let accounts_given = !raw.accounts.is_empty();
    let single_account_keys = single_account_keys(&raw);
    let environment = environment(&mut c, raw.environment.as_deref());
    let listen = listeners::listen(&mut c, &raw.listen);
    let admin = listeners::admin(&mut c, &raw.admin);
    let upstream = upstream::upstream(&mut c, &raw.upstream, environment);
    let mtls = upstream::mtls(&mut c, raw.mtls);
    let redis_keys = raw.oauth.as_ref().map(|oauth| {
        (
            oauth.redis_password_file.clone(),
            oauth.redis_key_prefix.clone(),
            oauth.redis_ca_file.clone(),
            oauth.redis_sentinel_password_file.clone(),
        )
    });
    let (oauth, single_account_store) = oauth::oauth(
        &mut c,
        raw.oauth,
        environment,
        &upstream.mtls_url,
        accounts_given,
    );
    let personal_token = personal_token::personal_token(&mut c, raw.personal_token);
    let limits = limits::limits(&mut c, &raw.limits, listen.is_gateway());
    let routes = routes::routes(&mut c, raw.routes);
    let (rollback_all, rollback_probe_interval) = rollback::rollback(&mut c, &raw.rollback);
    if !accounts_given {
        rollback::personal_token_needed(&mut c, personal_token.as_ref(), rollback_all, &routes);
    }
    let (password_file, key_prefix, ca_file, sentinel_password_file) =
        redis_keys.unwrap_or_default();
    let context = accounts::Context {
        redis: token_store::RedisKeys {
            password_file: password_file.as_deref(),
            key_prefix: key_prefix.as_deref(),
            ca_file: ca_file.as_deref(),
            sentinel_password_file: sentinel_password_file.as_deref(),
        },
        client_id: &oauth.client_id,
        single_account_keys,
        rollback_all,
        routes: &routes,
    };
    let account_tables = accounts::accounts(&mut c, raw.accounts, &context);
    let log = log::log(&mut c, raw.log);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    let accounts = match single_account_store {
        Some(store) => Accounts::Single(Box::new(AccountConfig {
            name: DEFAULT_ACCOUNT.to_owned(),
            app_token_sha256: Vec::new(),
            token_store: store.token_store,
            refresh_token_file: store.refresh_token_file,
            personal_token,
            rollback: false,
        })),
        None => Accounts::Tables(account_tables),
    };
    Ok(Config {
        file: file.to_owned(),
        sha256: String::new(),
        environment,
        listen,
        admin,
        upstream,
        mtls,
        oauth,
        limits,
        rollback_all,
        rollback_probe_interval,
        routes,
        log,
        accounts,
    })
}

/// The single-account keys set in `raw` (each conflicts with `[[account]]` tables).
fn single_account_keys(raw: &RawConfig) -> Vec<&'static str> {
    let mut keys = Vec::new();
    if let Some(oauth) = &raw.oauth {
        if oauth.token_store.is_some() {
            keys.push("oauth.token_store");
        }
        if oauth.refresh_token_file.is_some() {
            keys.push("oauth.refresh_token_file");
        }
    }
    if raw.personal_token.is_some() {
        keys.push("personal_token");
    }
    keys
}

/// The top-level `environment` key: which of Wise's environments the defaults name.
fn environment(c: &mut Checker<'_>, raw: Option<&str>) -> Environment {
    match raw {
        None | Some("sandbox") => Environment::Sandbox,
        Some("production") => Environment::Production,
        Some(other) => {
            c.problem(
                "environment",
                format!("`{other}` is not an environment: use \"sandbox\" or \"production\""),
            );
            Environment::Sandbox
        }
    }
}
