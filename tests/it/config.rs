//! Config validation, black-box: every problem reported at once with file, line and
//! key; the binary exits 64 on a bad config.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use wisegate::config::{Config, Environment, TokenStoreConfig};

const GOOD: &str = r#"
environment = "production"

[mtls]
cert_file = "tls/client.crt"
key_file = "tls/client.key"

[oauth]
client_id = "yourapp"
client_secret_file = "secrets/client_secret"
redirect_uri = "https://www.yourapp.com"
token_store = "state/tokens.json"

[personal_token]
token_file = "secrets/personal_token"

[[route]]
name = "profile-webhooks"
path = "/v3/profiles/*/subscriptions/**"
methods = ["GET", "post"]
mode = "personal_token"
"#;

#[test]
fn a_good_config_gets_presets_and_resolved_paths() {
    let config = Config::parse(Path::new("/etc/wisegate/wisegate.toml"), GOOD).unwrap();
    assert_eq!(config.environment, Environment::Production);
    assert_eq!(
        config.upstream.mtls_url.to_string(),
        "https://api-mtls.transferwise.com/"
    );
    assert_eq!(
        config.upstream.legacy_url.to_string(),
        "https://api.wise.com/"
    );
    assert_eq!(
        config.oauth.token_url.to_string(),
        "https://api-mtls.transferwise.com/oauth/token"
    );
    assert_eq!(
        config.oauth.authorize_url,
        "https://wise.com/oauth/authorize/"
    );
    assert_eq!(
        config.mtls.cert_file,
        Path::new("/etc/wisegate/tls/client.crt")
    );
    assert_eq!(
        config.accounts.single().unwrap().token_store.file(),
        Some(Path::new("/etc/wisegate/state/tokens.json"))
    );
    assert_eq!(config.listen.address.to_string(), "127.0.0.1:8080");
    assert_eq!(config.admin.address.to_string(), "127.0.0.1:9901");
    assert_eq!(config.routes.routes().len(), 1);
    assert_eq!(config.routes.routes()[0].methods.len(), 2);
}

#[test]
fn sandbox_is_the_default_environment() {
    let text = GOOD.replace("environment = \"production\"", "");
    let config = Config::parse(Path::new("c.toml"), &text).unwrap();
    assert_eq!(
        config.upstream.mtls_url.to_string(),
        "https://api-mtls.wise-sandbox.com/"
    );
    assert_eq!(
        config.upstream.legacy_url.to_string(),
        "https://api.wise-sandbox.com/"
    );
}

#[test]
fn every_problem_is_reported_with_line_and_key() {
    let text = GOOD
        .replace("environment = \"production\"", "environment = \"staging\"")
        .replace("mode = \"personal_token\"", "mode = \"personal\"")
        .replace("client_id = \"yourapp\"\n", "")
        .replace(
            "[personal_token]",
            "[listen]\naddress = \"0.0.0.0:8080\"\n\n[personal_token]",
        );
    let error = Config::parse(Path::new("/etc/w.toml"), &text).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.problems.len(), 4, "{message}");
    assert!(
        message.contains("/etc/w.toml:2: environment: `staging`"),
        "{message}"
    );
    assert!(
        message.contains("oauth.client_id: is required"),
        "{message}"
    );
    assert!(message.contains("listen.address: 0.0.0.0:8080 is not a loopback address; set listen.allow_non_loopback = true"), "{message}");
    let route_line = text.lines().position(|l| l.starts_with("mode = ")).unwrap() + 1;
    assert!(
        message.contains(&format!(
            "/etc/w.toml:{route_line}: route[0].mode: `personal` is not a mode"
        )),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let text = GOOD.replace("[oauth]\n", "[oauth]\nclient_idd = \"typo\"\n");
    let error = Config::parse(Path::new("w.toml"), &text).unwrap_err();
    let line = text
        .lines()
        .position(|l| l.starts_with("client_idd"))
        .unwrap()
        + 1;
    assert_eq!(error.problems[0].line, Some(line), "{error}");
    assert!(error.to_string().contains("client_idd"), "{error}");
}

/// The 1-based line of the first line of `text` that starts with `start`.
fn line_of(text: &str, start: &str) -> usize {
    text.lines().position(|l| l.starts_with(start)).unwrap() + 1
}

#[test]
fn every_unknown_key_is_reported_with_its_section_and_line_beside_the_value_problems() {
    let text = GOOD
        .replace("[oauth]\n", "[oauth]\nclinet_id = \"typo\"\n")
        .replace("[mtls]\n", "[mtls]\nclient_id = \"misplaced\"\n")
        .replace(
            "name = \"profile-webhooks\"\n",
            "name = \"profile-webhooks\"\nnmae = \"x\"\n",
        )
        .replace("mode = \"personal_token\"", "mode = \"personal\"")
        + "\n[logg]\nlevel = \"debug\"\n";
    let error = Config::parse(Path::new("w.toml"), &text).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.problems.len(), 5, "{message}");
    for expected in [
        format!(
            "w.toml:{}: oauth.clinet_id: is not a config key: did you mean `client_id`?",
            line_of(&text, "clinet_id")
        ),
        format!(
            "w.toml:{}: mtls.client_id: is not a key here: did you mean `oauth.client_id`?",
            line_of(&text, "client_id = \"misplaced")
        ),
        format!(
            "w.toml:{}: route[0].nmae: is not a config key: did you mean `name`?",
            line_of(&text, "nmae")
        ),
        format!(
            "w.toml:{}: route[0].mode: `personal` is not a mode",
            line_of(&text, "mode = ")
        ),
        format!(
            "w.toml:{}: logg: is not a config key: did you mean `log`?",
            line_of(&text, "[logg]")
        ),
    ] {
        assert!(
            message.contains(&expected),
            "missing {expected:?} in\n{message}"
        );
    }
    // Reported in file order.
    let lines: Vec<_> = error.problems.iter().map(|p| p.line.unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{message}");
    // Without a close key, the keys of the section are listed.
    let text = GOOD.to_owned() + "\n[limits]\ncolour = \"blue\"\n";
    let message = refusal(&text);
    assert!(
        message
            .contains("limits.colour: is not a config key; the keys here are: max_header_bytes,"),
        "{message}"
    );
}

#[test]
fn an_unknown_key_is_reported_beside_a_wrong_type() {
    let text = GOOD.replace("[oauth]\n", "[oauth]\nclinet_id = \"typo\"\n")
        + "\n[listen]\nthreads = \"two\"\n";
    let error = Config::parse(Path::new("w.toml"), &text).unwrap_err();
    assert_eq!(error.problems.len(), 2, "{error}");
    assert!(error.to_string().contains("oauth.clinet_id"), "{error}");
}

#[test]
fn an_empty_or_blank_client_id_is_refused() {
    for blank in ["\"\"", "\"  \""] {
        let text = GOOD.replace("client_id = \"yourapp\"", &format!("client_id = {blank}"));
        let message = refusal(&text);
        assert!(
            message.contains(&format!(
                "w.toml:{}: oauth.client_id: must not be empty",
                line_of(&text, "client_id")
            )),
            "{blank}: {message}"
        );
    }
}

#[test]
fn personal_token_routes_need_a_personal_token() {
    let text = GOOD.replace(
        "[personal_token]\ntoken_file = \"secrets/personal_token\"\n",
        "",
    );
    let error = refusal(&text);
    assert!(
        error.contains("route[0].mode: sends requests the personal-token way"),
        "{error}"
    );
}

/// Why `text` (as `w.toml`) is refused.
fn refusal(text: &str) -> String {
    Config::parse(Path::new("w.toml"), text)
        .unwrap_err()
        .to_string()
}

#[test]
fn listen_threads_must_be_between_one_and_256() {
    let with = |threads: &str| {
        GOOD.replace(
            "[oauth]\n",
            &format!("[listen]\nthreads = {threads}\n\n[oauth]\n"),
        )
    };
    let config = Config::parse(Path::new("w.toml"), &with("3")).unwrap();
    assert_eq!(config.listen.threads, Some(3));
    assert_eq!(
        Config::parse(Path::new("w.toml"), GOOD)
            .unwrap()
            .listen
            .threads,
        None
    );
    for (bad, says) in [
        ("0", "listen.threads: must be greater than zero"),
        ("1000", "listen.threads: 1000 is more than 256"),
    ] {
        let error = refusal(&with(bad));
        assert!(error.contains(says), "{error}");
    }
}

#[test]
fn the_body_pause_limit_stays_below_the_upstream_timeout() {
    let with = |limits: &str| format!("{GOOD}\n[limits]\n{limits}\n");
    let limits = |text: &str| {
        Config::parse(Path::new("w.toml"), &with(text))
            .unwrap()
            .limits
    };
    assert_eq!(limits("").request_body_timeout, Duration::from_secs(30));
    assert_eq!(
        limits("upstream_timeout = \"20s\"").request_body_timeout,
        Duration::from_secs(10),
        "by default half of a shorter upstream_timeout"
    );
    assert_eq!(
        limits("upstream_timeout = \"1ns\"").request_body_timeout,
        Duration::from_millis(1),
        "never zero, and not refused when not written"
    );
    assert_eq!(
        limits("request_body_timeout = \"2m\"\nupstream_timeout = \"5m\"").request_body_timeout,
        Duration::from_secs(120)
    );
    let error = refusal(&with("request_body_timeout = \"90s\""));
    assert!(
        error.contains(
            "limits.request_body_timeout: must be shorter than limits.upstream_timeout (1m)"
        ),
        "{error}"
    );
    let error = refusal(&with("idle_timeout = \"400000000000y\""));
    assert!(
        error.contains("limits.idle_timeout: `400000000000y` is longer than a year"),
        "{error}"
    );
}

#[test]
fn a_route_cannot_take_the_built_in_default_name() {
    let text = format!(
        "{GOOD}\n[[route]]\nname = \"default\"\npath = \"/v1/**\"\nmode = \"personal_token\"\n"
    );
    let error = refusal(&text);
    assert!(
        error.contains(".name: `default` is the name of the built-in route"),
        "{error}"
    );
}

#[test]
fn the_binary_exits_64_naming_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisegate.toml");
    std::fs::write(
        &file,
        GOOD.replace("mode = \"personal_token\"", "mode = \"nope\""),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = GOOD.lines().position(|l| l.starts_with("mode = ")).unwrap() + 1;
    assert!(
        stderr.contains(&format!("{}:{line}: route[0].mode", file.display())),
        "{stderr}"
    );
}

/// `tracing` reads a bare word that is not a level as a target to trace, which turns
/// every other log line off: `log.level` and `WISEGATE_LOG` refuse it instead.
#[test]
fn a_log_level_that_is_not_a_level_is_refused_where_it_is_written() {
    let with = |level: &str| format!("{GOOD}\n[log]\nlevel = \"{level}\"\n");
    for good in ["debug", "wisegate=debug,hyper=warn"] {
        assert_eq!(
            Config::parse(Path::new("w.toml"), &with(good))
                .unwrap()
                .log
                .level,
            good
        );
    }
    for (bad, says) in [
        ("warning", "log.level: `warning` is not a level: use off, error, warn, info, debug or trace, or TARGET=LEVEL"),
        ("wisegate=loud", "log.level: is not a log filter"),
    ] {
        let error = refusal(&with(bad));
        assert!(error.contains(says), "{error}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wisegate.toml");
    std::fs::write(&file, GOOD).unwrap();
    // `wisegate run` with WISEGATE_LOG set to `value`: its exit code and stderr.
    let run = |value: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_wisegate"))
            .args(["run", "--config"])
            .arg(&file)
            .env("WISEGATE_LOG", value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.code(), stderr)
    };
    let (code, stderr) = run("verbose");
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("the WISEGATE_LOG variable: `verbose` is not a level"),
        "{stderr}"
    );
    // Set but empty (a manifest's placeholder): log.level applies.
    let (_, stderr) = run("");
    assert!(!stderr.contains("WISEGATE_LOG"), "{stderr}");
    assert!(
        stderr.contains("mtls.cert_file"),
        "it went on to the files: {stderr}"
    );
}

/// A copy of config.example.toml is what a new user starts from: it must send every
/// request the OAuth way and need no personal token, its routes being examples only.
#[test]
fn the_example_config_is_valid_has_no_routes_and_needs_no_personal_token() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let config = Config::load(&path).unwrap_or_else(|error| panic!("{error}"));
    assert!(config.routes.routes().is_empty(), "example routes are live");
    assert!(
        config.accounts.single().unwrap().personal_token.is_none(),
        "[personal_token] is live"
    );
    assert!(!config.rollback_all);
}

/// The commented-out examples stay correct: uncommented, they parse.
/// `text` with the commented lines of `section` (from its `# [header]` line up to the
/// next uncommented section) uncommented where they start with one of `keys`; every other
/// line as it is.
fn uncomment(text: &str, keys: &[&str], in_section: impl Fn(&str) -> bool) -> String {
    let mut inside = false;
    text.lines()
        .map(|line| {
            if let Some(header) = line.strip_prefix("# [") {
                inside = in_section(header);
            } else if line.starts_with('[') {
                inside = false;
            }
            match line.strip_prefix("# ") {
                Some(rest) if inside && keys.iter().any(|key| rest.starts_with(key)) => rest,
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_configs_commented_routes_are_valid_when_uncommented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let keys = [
        "[[route]]",
        "[personal_token]",
        "token_file =",
        "name =",
        "path =",
        "methods =",
        "mode =",
    ];
    // The [[account]] example is the other way to say [personal_token]: not this one.
    let uncommented = uncomment(&text, &keys, |header| !header.starts_with("[account]]"));
    let config = Config::parse(&path, &uncommented).unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<_> = config
        .routes
        .routes()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["profile-webhooks", "application-webhooks"]);
    assert!(config.accounts.single().unwrap().personal_token.is_some());
}

#[test]
fn the_example_configs_account_is_valid_when_uncommented_instead_of_the_single_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let keys = [
        "[[account]]",
        "name =",
        "app_token_sha256 =",
        "token_store =",
        "personal_token_file =",
    ];
    let uncommented = uncomment(&text, &keys, |header| header.starts_with("[account]]")).replacen(
        "\ntoken_store = ",
        "\n# token_store = ",
        1,
    );
    let config = Config::parse(&path, &uncommented).unwrap_or_else(|error| panic!("{error}"));
    let accounts = config.accounts();
    let names: Vec<_> = accounts.iter().map(|a| &*a.name).collect();
    assert_eq!(names, ["uk-ltd"]);
    assert_eq!(accounts[0].app_token_sha256.len(), 1);
}

#[test]
fn a_redis_token_store_is_parsed_with_a_default_key_prefix() {
    let text = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"redis://wisegate:s3cret-pw@redis.example.svc:6379/2\"",
    );
    let config = Config::parse(Path::new("/etc/w.toml"), &text).unwrap();
    let TokenStoreConfig::Redis(redis) = &config.accounts.single().unwrap().token_store else {
        panic!("a Redis store");
    };
    assert_eq!(redis.key_prefix, "wisegate:yourapp:");
    assert_eq!(
        wisegate::assembly::token_store(&config).unwrap().describe(),
        "redis://wisegate:redacted@redis.example.svc:6379/2"
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret-pw"), "{debug}");
}

#[test]
fn redis_keys_are_checked_and_named() {
    let redis = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"rediss://:in-url-pw@redis.example.svc:6380/0\"\nredis_password_file = \"secrets/redis\"\nredis_key_prefix = \"has space\"",
    );
    let message = Config::parse(Path::new("w.toml"), &redis)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "oauth.redis_password_file: the Redis URL in oauth.token_store already has a password"
        ),
        "{message}"
    );
    assert!(
        message.contains("oauth.redis_key_prefix: must be non-empty"),
        "{message}"
    );
    assert!(!message.contains("in-url-pw"), "{message}");

    let file = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"state/tokens.json\"\nredis_key_prefix = \"x:\"",
    );
    let message = Config::parse(Path::new("w.toml"), &file)
        .unwrap_err()
        .to_string();
    assert!(
        message
            .contains("oauth.redis_key_prefix: only applies when oauth.token_store is a redis://"),
        "{message}"
    );

    let plain = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"redis://redis.example.svc\"\nredis_ca_file = \"ca.pem\"",
    );
    let message = Config::parse(Path::new("w.toml"), &plain)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("oauth.redis_ca_file: only applies to a rediss://"),
        "{message}"
    );

    let direct = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"redis://redis.example.svc\"\nredis_sentinel_password_file = \"s\"",
    );
    let message = Config::parse(Path::new("w.toml"), &direct)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("oauth.redis_sentinel_password_file: only applies to a redis+sentinel://"),
        "{message}"
    );
    let sentinel = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"redis+sentinel://s1:26379/mymaster\"\nredis_sentinel_password_file = \"s\"",
    );
    let config = Config::parse(Path::new("w.toml"), &sentinel).expect("a Sentinel store");
    match &config.accounts.single().unwrap().token_store {
        TokenStoreConfig::Redis(redis) => assert_eq!(
            redis.sentinel_password_file.as_deref(),
            Some(Path::new("s"))
        ),
        other => panic!("not a Redis store: {other:?}"),
    }

    for bad in [
        "redis://:pw@/0",
        "redis://host:6379/notadb",
        "memcached://host",
    ] {
        let text = GOOD.replace("state/tokens.json", bad);
        let message = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(message.contains("oauth.token_store: "), "{bad}: {message}");
        assert!(!message.contains(":pw@"), "{message}");
    }
}

#[test]
fn a_sentinel_token_store_is_parsed_and_a_malformed_one_says_what_to_write() {
    use wisegate::config::TokenStoreConfig;
    let sentinel = GOOD.replace(
        "token_store = \"state/tokens.json\"",
        "token_store = \"rediss+sentinel://app:s3cret-pw@s0.redis:26380,s1.redis/mymaster/2\"\nredis_ca_file = \"ca.pem\"",
    );
    let config = Config::parse(Path::new("w.toml"), &sentinel).unwrap();
    let TokenStoreConfig::Redis(redis) = &config.accounts.single().unwrap().token_store else {
        panic!("a Redis store");
    };
    assert_eq!(
        redis.url.redacted(),
        "rediss+sentinel://app:redacted@s0.redis:26380,s1.redis:26379/mymaster/2"
    );
    assert!(redis.url.is_tls() && redis.url.has_password());
    assert!(!format!("{config:?}").contains("s3cret-pw"));

    for (bad, says) in [
        (
            "redis+sentinel://:s3cret-pw@s0.redis:26379",
            "the master's name is missing",
        ),
        (
            "redis+sentinel://s0.redis:port/mymaster",
            "host or host:port",
        ),
        ("redis+sentinel://s0.redis/mymaster/db", "must be a number"),
    ] {
        let text = GOOD.replace("state/tokens.json", bad);
        let message = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(message.contains("oauth.token_store: "), "{bad}: {message}");
        assert!(message.contains(says), "{bad}: {message}");
        assert!(
            message.contains("write e.g. \"redis+sentinel://"),
            "{message}"
        );
        assert!(!message.contains("s3cret-pw"), "{message}");
    }
}
