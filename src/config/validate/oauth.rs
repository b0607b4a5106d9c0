//! The `[oauth]` section: the client Wise registered (id, secret, redirect URL), where the
//! single account's tokens are kept (`token_store.rs`) and the token and authorization
//! endpoints.

use super::checker::Checker;
use super::token_store::{token_store, RedisKeys};
use crate::config::raw::RawOAuth;
use crate::config::{Environment, OAuth, SecretSource, TokenStoreConfig};
use http::Uri;
use std::path::PathBuf;
use std::time::Duration;

/// The default of `oauth.refresh_before`.
const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(6 * 3600);

/// The single-account keys of `[oauth]`: where the one account's lineage is kept.
pub(super) struct SingleAccountStore {
    pub(super) token_store: TokenStoreConfig,
    pub(super) refresh_token_file: Option<PathBuf>,
}

/// `[oauth]`, and its single-account keys unless `accounts_given` (`[[account]]` tables,
/// each naming its own store, which accounts.rs checks).
pub(super) fn oauth(
    c: &mut Checker<'_>,
    raw: Option<RawOAuth>,
    environment: Environment,
    mtls_url: &Uri,
    accounts_given: bool,
) -> (OAuth, Option<SingleAccountStore>) {
    let default_token_url = format!("{}/oauth/token", mtls_url.to_string().trim_end_matches('/'));
    let Some(raw) = c.required(
        "oauth",
        raw,
        "add an [oauth] section with client_id, client_secret_file, redirect_uri and token_store",
    ) else {
        let oauth = OAuth {
            client_id: String::new(),
            client_secret: SecretSource::Env(String::new()),
            redirect_uri: String::new(),
            token_url: default_token_url
                .parse()
                .expect("URL built from a valid URL"),
            authorize_url: environment.authorize_url().to_owned(),
            refresh_before: DEFAULT_REFRESH_BEFORE,
        };
        // Never reaches a Config: the missing section is a problem.
        let store = (!accounts_given).then(|| SingleAccountStore {
            token_store: TokenStoreConfig::File(PathBuf::new()),
            refresh_token_file: None,
        });
        return (oauth, store);
    };
    let client_id = c
        .text(
            "oauth.client_id",
            raw.client_id,
            "the client id Wise gave you",
        )
        .unwrap_or_default();
    let client_secret = client_secret(c, raw.client_secret_file, raw.client_secret_env);
    let redirect_uri = redirect_uri(c, raw.redirect_uri);
    let token_store = if accounts_given {
        None
    } else {
        let redis = RedisKeys {
            password_file: raw.redis_password_file.as_deref(),
            key_prefix: raw.redis_key_prefix.as_deref(),
            ca_file: raw.redis_ca_file.as_deref(),
            sentinel_password_file: raw.redis_sentinel_password_file.as_deref(),
        };
        Some(single_account_store(
            c,
            raw.token_store.as_deref(),
            redis,
            &client_id,
        ))
    };
    let token_url = token_url(c, raw.token_url, &default_token_url);
    let authorize_url = authorize_url(c, raw.authorize_url, environment);
    let refresh_token_file = c.path(
        "oauth.refresh_token_file",
        raw.refresh_token_file.as_deref(),
    );
    let oauth = OAuth {
        client_id,
        client_secret,
        redirect_uri,
        token_url,
        authorize_url,
        refresh_before: c.duration(
            "oauth.refresh_before",
            raw.refresh_before.as_deref(),
            DEFAULT_REFRESH_BEFORE,
        ),
    };
    let store = token_store.map(|token_store| SingleAccountStore {
        token_store,
        refresh_token_file,
    });
    (oauth, store)
}

/// `oauth.client_secret_file` or `oauth.client_secret_env`: exactly one of them.
fn client_secret(c: &mut Checker<'_>, file: Option<String>, env: Option<String>) -> SecretSource {
    match (file, env) {
        (Some(file), None) => SecretSource::File(
            c.path("oauth.client_secret_file", Some(&file))
                .unwrap_or_default(),
        ),
        (None, Some(var)) if !var.trim().is_empty() => SecretSource::Env(var),
        (Some(_), Some(_)) => {
            c.problem(
                "oauth.client_secret_env",
                "set either client_secret_file or client_secret_env, not both",
            );
            SecretSource::Env(String::new())
        }
        _ => {
            c.problem("oauth.client_secret_file", "is required: the file holding your client secret (or name an environment variable in client_secret_env)");
            SecretSource::Env(String::new())
        }
    }
}

/// `oauth.redirect_uri`: required, an absolute URL.
fn redirect_uri(c: &mut Checker<'_>, raw: Option<String>) -> String {
    let redirect_uri = c
        .text(
            "oauth.redirect_uri",
            raw,
            "the redirect URL registered with Wise, exactly as registered",
        )
        .unwrap_or_default();
    if !redirect_uri.is_empty()
        && redirect_uri
            .parse::<Uri>()
            .map_or(true, |uri| uri.scheme().is_none())
    {
        c.problem(
            "oauth.redirect_uri",
            format!("`{redirect_uri}` is not an absolute URL"),
        );
    }
    redirect_uri
}

/// `oauth.token_store` (required without `[[account]]` tables) with the `oauth.redis_*`
/// keys.
fn single_account_store(
    c: &mut Checker<'_>,
    store: Option<&str>,
    redis: RedisKeys<'_>,
    client_id: &str,
) -> TokenStoreConfig {
    let store = c.required(
        "oauth.token_store",
        store,
        "a file where wisegate keeps the tokens, e.g. \"state/tokens.json\", or a redis:// URL shared by replicas",
    );
    token_store(c, "oauth.token_store", store, redis, client_id)
}

/// `oauth.token_url`: an https URL; by default the mTLS host's `/oauth/token`.
fn token_url(c: &mut Checker<'_>, raw: Option<String>, default_token_url: &str) -> Uri {
    let default = || {
        default_token_url
            .parse()
            .expect("URL built from a valid URL")
    };
    let Some(text) = raw else {
        return default();
    };
    match text.parse::<Uri>() {
        Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => uri,
        _ => {
            c.problem(
                "oauth.token_url",
                format!("`{text}` must be an https URL such as \"{default_token_url}\""),
            );
            default()
        }
    }
}

/// `oauth.authorize_url`: an absolute URL; by default the environment's.
fn authorize_url(c: &mut Checker<'_>, raw: Option<String>, environment: Environment) -> String {
    let authorize_url = raw.unwrap_or_else(|| environment.authorize_url().to_owned());
    if authorize_url
        .parse::<Uri>()
        .map_or(true, |uri| uri.host().is_none())
    {
        c.problem(
            "oauth.authorize_url",
            format!("`{authorize_url}` is not an absolute URL"),
        );
    }
    authorize_url
}
