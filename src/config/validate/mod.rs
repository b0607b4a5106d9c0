//! Turns a [`RawConfig`] into a [`Config`], collecting every problem instead of stopping
//! at the first. One file per section, each naming the keys it checks; `checker.rs` holds
//! the checks they share, `mod.rs` (the config module) adds the line numbers.

use super::raw::RawConfig;
use super::{Config, Environment, Problem};
use checker::Checker;
use std::path::Path;

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
    let environment = environment(&mut c, raw.environment.as_deref());
    let listen = listeners::listen(&mut c, &raw.listen);
    let admin = listeners::admin(&mut c, &raw.admin);
    let upstream = upstream::upstream(&mut c, &raw.upstream, environment);
    let mtls = upstream::mtls(&mut c, raw.mtls);
    let oauth = oauth::oauth(&mut c, raw.oauth, environment, &upstream.mtls_url);
    let personal_token = personal_token::personal_token(&mut c, raw.personal_token);
    let limits = limits::limits(&mut c, &raw.limits, listen.is_gateway());
    let routes = routes::routes(&mut c, raw.routes);
    let (rollback_all, rollback_probe_interval) = rollback::rollback(&mut c, &raw.rollback);
    rollback::personal_token_needed(&mut c, personal_token.as_ref(), rollback_all, &routes);
    let log = log::log(&mut c, raw.log);

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        file: file.to_owned(),
        sha256: String::new(),
        environment,
        listen,
        admin,
        upstream,
        mtls,
        oauth,
        personal_token,
        limits,
        rollback_all,
        rollback_probe_interval,
        routes,
        log,
    })
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
