//! The checks every section shares: a required value, a non-empty text, a path (relative
//! to the config file's folder), a duration, an address, an https URL, a positive number.
//! Each records a problem under the key it is given and returns a usable default, so
//! checking goes on and every problem is reported at once.

use crate::config::Problem;
use http::Uri;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Collects problems while values are checked one by one.
pub(super) struct Checker<'a> {
    base: &'a Path,
    pub(super) problems: Vec<Problem>,
}

impl Checker<'_> {
    /// A checker for a config file in `file`'s folder (relative paths start there).
    pub(super) fn new(file: &Path) -> Checker<'_> {
        Checker {
            base: file.parent().unwrap_or(Path::new(".")),
            problems: Vec::new(),
        }
    }

    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }

    pub(super) fn required<T>(&mut self, key: &str, value: Option<T>, hint: &str) -> Option<T> {
        if value.is_none() {
            self.problem(key, format!("is required: {hint}"));
        }
        value
    }

    /// A required text: absent, empty or only spaces is a problem.
    pub(super) fn text(&mut self, key: &str, value: Option<String>, hint: &str) -> Option<String> {
        let value = self.required(key, value, hint)?;
        if value.trim().is_empty() {
            self.problem(key, format!("must not be empty: {hint}"));
            return None;
        }
        Some(value)
    }

    pub(super) fn path(&mut self, key: &str, value: Option<&str>) -> Option<PathBuf> {
        let value = value?;
        if value.trim().is_empty() {
            self.problem(key, "must not be empty");
            return None;
        }
        Some(self.base.join(value))
    }

    pub(super) fn duration(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
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

    pub(super) fn address(
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

    pub(super) fn https_url(&mut self, key: &str, value: Option<&str>, default: &str) -> Uri {
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

    pub(super) fn positive(&mut self, key: &str, value: Option<u64>, default: u64) -> u64 {
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

/// The longest duration any key takes: deadlines are computed by adding it to the clock.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
