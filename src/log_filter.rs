//! The log filter, as `log.level` and the `WISEGATE_LOG` variable spell it: `tracing`
//! directives (`info`, `wisegate=debug,hyper=warn`). A bare word is taken as a level
//! only: `tracing` itself would read `warning` or `inf` as the name of a target to trace,
//! and turn every other log line off without a word.

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

/// The levels a directive may name, for the messages.
const LEVELS: &str = "off, error, warn, info, debug or trace";

/// `text` as a filter, or what is wrong with it (the caller names where it came from).
pub fn parse(text: &str) -> Result<EnvFilter, String> {
    // Spaces after the commas are how people write lists; `tracing` would not read them.
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        // `tracing` reads no directive as "log nothing at all".
        return Err(format!("is empty: use {LEVELS}, or TARGET=LEVEL"));
    }
    for directive in &directives {
        if directive.contains(char::is_whitespace) {
            return Err(format!(
                "`{directive}` has a space in it: write TARGET=LEVEL without spaces"
            ));
        }
        let bare = !directive.contains(['=', '[', '{']);
        if bare && directive.parse::<LevelFilter>().is_err() {
            return Err(format!(
                "`{directive}` is not a level: use {LEVELS}, or TARGET=LEVEL \
                 (e.g. \"wisegate=debug\")"
            ));
        }
    }
    EnvFilter::builder()
        .parse(directives.join(","))
        .map_err(|err| format!("is not a log filter ({err}): use {LEVELS}, or TARGET=LEVEL"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn levels_and_target_directives_are_filters() {
        for good in [
            "info",
            "WARN",
            "off",
            "wisegate=debug",
            "info,hyper=warn",
            "trace, h2=info",
        ] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_bare_word_that_is_not_a_level_is_refused_with_the_levels() {
        for bad in ["warning", "inf", "info,verbose"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("is not a level"), "{bad}: {err}");
            assert!(
                err.contains("off, error, warn, info, debug or trace"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_empty_filter_or_a_space_inside_a_directive_is_refused() {
        for (bad, says) in [
            ("", "is empty"),
            (" , ", "is empty"),
            ("wisegate =debug", "has a space in it"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_directive_with_a_bad_level_is_refused() {
        let err = parse("wisegate=loud").unwrap_err();
        assert!(err.contains("is not a log filter"), "{err}");
    }
}
