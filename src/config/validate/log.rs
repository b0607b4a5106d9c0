//! The `[log]` section: the format (`text` or `json`) and the `tracing` filter.

use super::checker::Checker;
use crate::config::raw::RawLog;
use crate::config::{Log, LogFormat};

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
        level: raw.level.unwrap_or_else(|| "info".to_owned()),
    }
}
