//! `limits.min_refresh_interval_on_401`: how long after a token was obtained a 401 from
//! Wise does not refresh it again (see `crate::token::rejection`). Bounded above: a
//! token Wise really rejected stays unreplaced (but for the scheduled refresh) for as
//! long as this lasts. `limits.token_store_wait`: how long a request whose token Wise
//! rejected waits for the shared store (see `crate::token::group`); bounded above, since
//! the app waits that long.

use super::checker::Checker;
use crate::config::Limits;
use std::time::Duration;

/// The longest interval accepted.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

pub(super) fn min_refresh_interval_on_401(c: &mut Checker<'_>, text: Option<&str>) -> Duration {
    let key = "limits.min_refresh_interval_on_401";
    let default = Limits::default().min_refresh_interval_on_401;
    let interval = c.duration(key, text, default);
    if interval > MAX_INTERVAL {
        c.problem(
            key,
            "must be at most 1h: a token Wise rejects would go unreplaced that long; write e.g. \"30s\"",
        );
        return default;
    }
    interval
}

/// The longest `limits.token_store_wait` accepted.
const MAX_STORE_WAIT: Duration = Duration::from_secs(60);

pub(super) fn token_store_wait(c: &mut Checker<'_>, text: Option<&str>) -> Duration {
    let key = "limits.token_store_wait";
    let default = Limits::default().token_store_wait;
    let wait = c.duration(key, text, default);
    if wait > MAX_STORE_WAIT {
        c.problem(
            key,
            "must be at most 60s: the app's request waits that long; write e.g. \"5s\"",
        );
        return default;
    }
    wait
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    fn parse(limits: &str) -> Result<Config, String> {
        let text = format!(
            "[mtls]\ncert_file = \"c\"\nkey_file = \"k\"\n[oauth]\nclient_id = \"a\"\nclient_secret_file = \"s\"\nredirect_uri = \"https://a.example\"\ntoken_store = \"t.json\"\n[limits]\n{limits}\n"
        );
        Config::parse(Path::new("/w/wisegate.toml"), &text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_interval_defaults_to_30_s_and_refuses_zero_and_over_an_hour() {
        let config = parse("").unwrap();
        assert_eq!(
            config.limits.min_refresh_interval_on_401,
            Duration::from_secs(30)
        );
        let config = parse("min_refresh_interval_on_401 = \"2m\"").unwrap();
        assert_eq!(
            config.limits.min_refresh_interval_on_401,
            Duration::from_secs(120)
        );
        for (value, expected) in [("0s", "longer than zero"), ("2h", "at most 1h")] {
            let error = parse(&format!("min_refresh_interval_on_401 = \"{value}\"")).unwrap_err();
            assert!(
                error.contains("limits.min_refresh_interval_on_401") && error.contains(expected),
                "{error}"
            );
        }
    }

    #[test]
    fn the_store_wait_defaults_to_5_s_and_refuses_zero_and_over_a_minute() {
        let config = parse("").unwrap();
        assert_eq!(config.limits.token_store_wait, Duration::from_secs(5));
        let config = parse("token_store_wait = \"1500ms\"").unwrap();
        assert_eq!(config.limits.token_store_wait, Duration::from_millis(1500));
        for (value, expected) in [("0s", "longer than zero"), ("2m", "at most 60s")] {
            let error = parse(&format!("token_store_wait = \"{value}\"")).unwrap_err();
            assert!(
                error.contains("limits.token_store_wait") && error.contains(expected),
                "{error}"
            );
        }
    }
}
