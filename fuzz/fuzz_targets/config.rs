//! Config parsing and validation never panic, whatever the text; errors carry a line
//! within the text when they carry one at all.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(error) = wisegate::config::Config::parse(Path::new("/fuzz/wisegate.toml"), text) {
        let lines = text.lines().count().max(1) + 1;
        for problem in &error.problems {
            if let Some(line) = problem.line {
                assert!(line >= 1 && line <= lines, "line {line} outside a {lines}-line text");
            }
        }
        let _ = error.to_string();
    }
});
