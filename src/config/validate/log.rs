//! The `[log]` section: the format (`text` or `json`) and the `tracing` filter
//! ([`crate::log_filter`]).

use super::checker::Checker;
use crate::config::raw::RawLog;
use crate::config::{Log, LogFormat};
use crate::log_filter;

pub(super) fn log(c: &mut Checker<'_>, raw: RawLog) -> Log {
    Log {
        format: match raw.format.as_deref() {
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
        level: match raw.level {
            Some(level) => {
                if let Err(problem) = log_filter::parse(&level) {
                    c.problem("log.level", problem);
                }
                level
            }
            None => "info".to_owned(),
        },
    }
}
