//! Turns a [`RawConfig`] into a [`Config`], collecting every problem instead of stopping
//! at the first. Each check names the key it is about; `mod.rs` adds the line numbers.

use super::raw::{RawConfig, RawRoute};
use super::{
    Admin, Config, Environment, Limits, Listen, Log, LogFormat, Mtls, OAuth, PersonalTokenConfig,
    Problem, SecretSource, TokenStoreConfig, Upstream,
};
use crate::route::{Mode, Pattern, Route, RouteTable};
use http::{Method, Uri};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use token_limits::min_refresh_interval_on_401;
use token_store::{token_store, RedisKeys};

mod slot_limits;
mod token_limits;
mod token_store;

/// Collects problems while values are checked one by one.
struct Checker<'a> {
    base: &'a Path,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }

    fn required<T>(&mut self, key: &str, value: Option<T>, hint: &str) -> Option<T> {
        if value.is_none() {
            self.problem(key, format!("is required: {hint}"));
        }
        value
    }

    /// A required text: absent, empty or only spaces is a problem.
    fn text(&mut self, key: &str, value: Option<String>, hint: &str) -> Option<String> {
        let value = self.required(key, value, hint)?;
        if value.trim().is_empty() {
            self.problem(key, format!("must not be empty: {hint}"));
            return None;
        }
        Some(value)
    }

    fn path(&mut self, key: &str, value: Option<&str>) -> Option<PathBuf> {
        let value = value?;
        if value.trim().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(self.base.join(value))
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(text) {
            Ok(duration) if duration.is_zero() => {
                self.problem(key, "must be longer than zero");
                default
            }
            Ok(duration) if duration > MAX_DURATION => {
                self.problem(
                    key,
                    format!("`{text}` is longer than a year: write a shorter duration"),
                );
                default
            }
            Ok(duration) => duration,
            Err(error) => {
                self.problem(
                    key,
                    format!("`{text}` is not a duration ({error}); write e.g. \"30s\", \"5m\" or \"6h\""),
                );
                default
            }
        }
    }

    fn address(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: &str,
        allow_remote: bool,
    ) -> SocketAddr {
        let text = value.unwrap_or(default);
        match text.parse::<SocketAddr>() {
            Ok(address) if address.ip().is_loopback() || allow_remote => address,
            Ok(address) => {
                let table = key.rsplit_once('.').map_or(key, |(table, _)| table);
                self.problem(
                    key,
                    format!("{address} is not a loopback address; set {table}.allow_non_loopback = true if other hosts should reach it"),
                );
                address
            }
            Err(_) => {
                self.problem(
                    key,
                    format!("`{text}` is not an IP address and port such as \"127.0.0.1:8080\""),
                );
                default.parse().expect("default addresses are valid")
            }
        }
    }

    fn https_url(&mut self, key: &str, value: Option<&str>, default: &str) -> Uri {
        let text = value.unwrap_or(default).trim_end_matches('/');
        match text.parse::<Uri>() {
            Ok(uri)
                if uri.scheme_str() == Some("https")
                    && uri.host().is_some()
                    && uri.path() == "/"
                    && uri.query().is_none() =>
            {
                uri
            }
            Ok(_) | Err(_) => {
                self.problem(key, format!("`{text}` must be an https URL with a host and no path, such as \"{default}\""));
                default.parse().expect("default URLs are valid")
            }
        }
    }

    fn positive(&mut self, key: &str, value: Option<u64>, default: u64) -> u64 {
        match value {
            Some(0) => {
                self.problem(key, "must be greater than zero");
                default
            }
            Some(value) => value,
            None => default,
        }
    }
}

/// The most serving lanes `listen.threads` may ask for.
const MAX_THREADS: u64 = 256;

/// Validates `raw`, read from `file`; on failure every problem found (lines not yet set).
pub fn validate(file: &Path, raw: RawConfig) -> Result<Config, Vec<Problem>> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut c = Checker {
        base,
        problems: Vec::new(),
    };

    let environment = match raw.environment.as_deref() {
        None | Some("sandbox") => Environment::Sandbox,
        Some("production") => Environment::Production,
        Some(other) => {
            c.problem(
                "environment",
                format!("`{other}` is not an environment: use \"sandbox\" or \"production\""),
            );
            Environment::Sandbox
        }
    };

    let listen = Listen {
        address: c.address(
            "listen.address",
            raw.listen.address.as_deref(),
            "127.0.0.1:8080",
            raw.listen.allow_non_loopback,
        ),
        shutdown_grace: c.duration(
            "listen.shutdown_grace",
            raw.listen.shutdown_grace.as_deref(),
            Duration::from_secs(30),
        ),
        threads: raw.listen.threads.map(|threads| {
            if threads > MAX_THREADS {
                c.problem(
                    "listen.threads",
                    format!("{threads} is more than {MAX_THREADS}: leave it out for one per core"),
                );
            }
            c.positive("listen.threads", Some(threads.min(MAX_THREADS)), 1) as usize
        }),
    };
    let admin = Admin {
        address: c.address(
            "admin.address",
            raw.admin.address.as_deref(),
            "127.0.0.1:9901",
            raw.admin.allow_non_loopback,
        ),
    };

    let mtls_url = c.https_url(
        "upstream.mtls_url",
        raw.upstream.mtls_url.as_deref(),
        environment.mtls_url(),
    );
    let upstream = Upstream {
        legacy_url: c.https_url(
            "upstream.legacy_url",
            raw.upstream.legacy_url.as_deref(),
            environment.legacy_url(),
        ),
        ca_file: c.path("upstream.ca_file", raw.upstream.ca_file.as_deref()),
        mtls_url,
    };

    let mtls = match c.required(
        "mtls",
        raw.mtls,
        "add an [mtls] section with cert_file and key_file",
    ) {
        Some(raw_mtls) => {
            let cert = c.required(
                "mtls.cert_file",
                raw_mtls.cert_file,
                "the PEM certificate chain Wise issued for your CSR",
            );
            let key = c.required(
                "mtls.key_file",
                raw_mtls.key_file,
                "the PEM private key you made the CSR with",
            );
            Mtls {
                cert_file: c
                    .path("mtls.cert_file", cert.as_deref())
                    .unwrap_or_default(),
                key_file: c.path("mtls.key_file", key.as_deref()).unwrap_or_default(),
            }
        }
        None => Mtls {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
        },
    };

    let oauth = oauth(&mut c, raw.oauth, environment, &upstream.mtls_url);

    let personal_token = raw.personal_token.and_then(|section| {
        let file = c.required(
            "personal_token.token_file",
            section.token_file,
            "the file holding your personal API token",
        );
        let sca_key_file = c.path(
            "personal_token.sca_key_file",
            section.sca_key_file.as_deref(),
        );
        c.path("personal_token.token_file", file.as_deref())
            .map(|token_file| PersonalTokenConfig {
                token_file,
                sca_key_file,
            })
    });

    let defaults = Limits::default();
    let upstream_timeout = c.duration(
        "limits.upstream_timeout",
        raw.limits.upstream_timeout.as_deref(),
        defaults.upstream_timeout,
    );
    let mut limits = Limits {
        request_body_timeout: request_body_timeout(
            &mut c,
            raw.limits.request_body_timeout.as_deref(),
            upstream_timeout,
        ),
        upstream_timeout,
        max_header_bytes: c.positive(
            "limits.max_header_bytes",
            raw.limits.max_header_bytes,
            defaults.max_header_bytes as u64,
        ) as usize,
        max_body_bytes: c.positive(
            "limits.max_body_bytes",
            raw.limits.max_body_bytes,
            defaults.max_body_bytes,
        ),
        response_write_timeout: c.duration(
            "limits.response_write_timeout",
            raw.limits.response_write_timeout.as_deref(),
            defaults.response_write_timeout,
        ),
        header_read_timeout: c.duration(
            "limits.header_read_timeout",
            raw.limits.header_read_timeout.as_deref(),
            defaults.header_read_timeout,
        ),
        upstream_connect_timeout: c.duration(
            "limits.upstream_connect_timeout",
            raw.limits.upstream_connect_timeout.as_deref(),
            defaults.upstream_connect_timeout,
        ),
        idle_timeout: c.duration(
            "limits.idle_timeout",
            raw.limits.idle_timeout.as_deref(),
            defaults.idle_timeout,
        ),
        max_connections: c.positive(
            "limits.max_connections",
            raw.limits.max_connections,
            defaults.max_connections as u64,
        ) as usize,
        max_upstream_requests: c.positive(
            "limits.max_upstream_requests",
            raw.limits.max_upstream_requests,
            defaults.max_upstream_requests as u64,
        ) as usize,
        min_refresh_interval_on_401: min_refresh_interval_on_401(
            &mut c,
            raw.limits.min_refresh_interval_on_401.as_deref(),
        ),
        ..defaults
    };
    slot_limits::slot_limits(&mut c, &raw.limits, listen.is_gateway(), &mut limits);

    let routes = routes(&mut c, raw.routes);
    let rollback_all = raw.rollback.all;
    let rollback_probe_interval = match raw.rollback.probe_interval.as_deref() {
        Some("off") => None,
        other => Some(c.duration("rollback.probe_interval", other, Duration::from_secs(600))),
    };
    let personal_route = routes
        .routes()
        .iter()
        .position(|r| r.mode == Mode::PersonalToken);
    // Shadow copies of OAuth routes and fallbacks go the personal-token way too.
    let legacy_use = routes
        .routes()
        .iter()
        .position(|r| r.fallback.is_some() || (r.shadow && r.mode != Mode::PersonalToken));
    if personal_token.is_none() {
        let key = match (rollback_all, personal_route, legacy_use) {
            (true, _, _) => Some("rollback.all".to_owned()),
            (false, Some(index), _) => Some(format!("route[{index}].mode")),
            (false, None, Some(index)) => Some(format!(
                "route[{index}].{}",
                if routes.routes()[index].fallback.is_some() {
                    "fallback"
                } else {
                    "shadow"
                }
            )),
            (false, None, None) => None,
        };
        if let Some(key) = key {
            c.problem(
                key,
                "sends requests the personal-token way, but there is no [personal_token] section with token_file: add one, or remove this setting",
            );
        }
    }

    let log = Log {
        format: match raw.log.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                c.problem(
                    "log.format",
                    format!("`{other}` is not a log format: use \"text\" or \"json\""),
                );
                LogFormat::Text
            }
        },
        level: raw.log.level.unwrap_or_else(|| "info".to_owned()),
    };

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

fn oauth(
    c: &mut Checker<'_>,
    raw: Option<super::raw::RawOAuth>,
    environment: Environment,
    mtls_url: &Uri,
) -> OAuth {
    let default_token_url = format!("{}/oauth/token", mtls_url.to_string().trim_end_matches('/'));
    let Some(raw) = c.required(
        "oauth",
        raw,
        "add an [oauth] section with client_id, client_secret_file, redirect_uri and token_store",
    ) else {
        return OAuth {
            client_id: String::new(),
            client_secret: SecretSource::Env(String::new()),
            redirect_uri: String::new(),
            token_store: TokenStoreConfig::File(PathBuf::new()),
            refresh_token_file: None,
            token_url: default_token_url
                .parse()
                .expect("URL built from a valid URL"),
            authorize_url: environment.authorize_url().to_owned(),
            refresh_before: Duration::from_secs(6 * 3600),
        };
    };
    let client_id = c
        .text(
            "oauth.client_id",
            raw.client_id,
            "the client id Wise gave you",
        )
        .unwrap_or_default();
    let client_secret = match (raw.client_secret_file, raw.client_secret_env) {
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
    };
    let redirect_uri = c
        .text(
            "oauth.redirect_uri",
            raw.redirect_uri,
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
    let store = c.required(
        "oauth.token_store",
        raw.token_store,
        "a file where wisegate keeps the tokens, e.g. \"state/tokens.json\", or a redis:// URL shared by replicas",
    );
    let token_store = token_store(
        c,
        store.as_deref(),
        RedisKeys {
            password_file: raw.redis_password_file.as_deref(),
            key_prefix: raw.redis_key_prefix.as_deref(),
            ca_file: raw.redis_ca_file.as_deref(),
        },
        &client_id,
    );
    let token_url = match raw.token_url {
        None => default_token_url
            .parse()
            .expect("URL built from a valid URL"),
        Some(text) => match text.parse::<Uri>() {
            Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => uri,
            _ => {
                c.problem(
                    "oauth.token_url",
                    format!("`{text}` must be an https URL such as \"{default_token_url}\""),
                );
                default_token_url
                    .parse()
                    .expect("URL built from a valid URL")
            }
        },
    };
    let authorize_url = raw
        .authorize_url
        .unwrap_or_else(|| environment.authorize_url().to_owned());
    if authorize_url
        .parse::<Uri>()
        .map_or(true, |uri| uri.host().is_none())
    {
        c.problem(
            "oauth.authorize_url",
            format!("`{authorize_url}` is not an absolute URL"),
        );
    }
    OAuth {
        client_id,
        client_secret,
        redirect_uri,
        token_store,
        refresh_token_file: c.path(
            "oauth.refresh_token_file",
            raw.refresh_token_file.as_deref(),
        ),
        token_url,
        authorize_url,
        refresh_before: c.duration(
            "oauth.refresh_before",
            raw.refresh_before.as_deref(),
            Duration::from_secs(6 * 3600),
        ),
    }
}

fn routes(c: &mut Checker<'_>, raw: Vec<RawRoute>) -> RouteTable {
    let mut routes = Vec::with_capacity(raw.len());
    for (index, route) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("route[{index}].{field}");
        let name = c.required(
            &key("name"),
            route.name,
            "a short name used in logs and metrics",
        );
        if let Some(name) = &name {
            if name == crate::route::DEFAULT_ROUTE {
                c.problem(
                    key("name"),
                    format!("`{name}` is the name of the built-in route for unmatched requests; choose another"),
                );
            } else if routes.iter().any(|r: &Route| &r.name == name) {
                c.problem(
                    key("name"),
                    format!("`{name}` is used by an earlier route; names must be unique"),
                );
            }
        }
        let pattern = c
            .required(
                &key("path"),
                route.path,
                "a path pattern such as \"/v3/profiles/*/subscriptions/**\"",
            )
            .and_then(|path| {
                Pattern::compile(&path)
                    .map_err(|error| c.problem(key("path"), error))
                    .ok()
            });
        let mut methods = Vec::new();
        for method in route.methods.unwrap_or_default() {
            match Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                Ok(parsed) => methods.push(parsed),
                Err(_) => c.problem(key("methods"), format!("`{method}` is not an HTTP method")),
            }
        }
        let mode = match route.mode.as_deref() {
            None => Some(Mode::OAuthMtls),
            Some(text) => Mode::parse(text).or_else(|| {
                c.problem(key("mode"), format!("`{text}` is not a mode: use \"oauth_mtls\", \"oauth_client\" or \"personal_token\""));
                None
            }),
        };
        if route.fallback && mode == Some(Mode::PersonalToken) {
            c.problem(key("fallback"), "applies to OAuth routes (oauth_mtls, oauth_client): a personal_token route has nowhere to fall back to");
        }
        if route.fallback_cooldown.is_some() && !route.fallback {
            c.problem(
                key("fallback_cooldown"),
                "needs fallback = true on the same route",
            );
        }
        let cooldown = c.duration(
            &key("fallback_cooldown"),
            route.fallback_cooldown.as_deref(),
            Duration::from_secs(30),
        );
        if let (Some(name), Some(pattern), Some(mode)) = (name, pattern, mode) {
            routes.push(Route {
                name,
                pattern,
                methods,
                mode,
                shadow: route.shadow,
                fallback: route.fallback.then_some(cooldown),
            });
        }
    }
    RouteTable::new(routes)
}

/// The longest duration any key takes: deadlines are computed by adding it to the clock.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// `limits.request_body_timeout`: shorter than `upstream_timeout` (a body stalled longer
/// would be reported as Wise's timeout); by default 30 s, or half of a shorter
/// `upstream_timeout`.
fn request_body_timeout(
    c: &mut Checker,
    text: Option<&str>,
    upstream_timeout: Duration,
) -> Duration {
    let key = "limits.request_body_timeout";
    let default = Limits::default()
        .request_body_timeout
        .min(upstream_timeout / 2)
        .max(Duration::from_millis(1));
    let limit = c.duration(key, text, default);
    if text.is_some() && limit >= upstream_timeout {
        c.problem(
            key,
            format!(
                "must be shorter than limits.upstream_timeout ({}): a body stalled longer would be reported as Wise's timeout; shorten it or raise limits.upstream_timeout",
                humantime::format_duration(upstream_timeout)
            ),
        );
        return default;
    }
    limit
}
