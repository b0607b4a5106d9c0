//! Route patterns: compiling never panics; matching never panics; a pattern made of the
//! path's own literal segments always matches that path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wisegate::route::Pattern;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, path) = text.split_once('\n').unwrap_or((text, "/"));
    if let Ok(compiled) = Pattern::compile(pattern) {
        let _ = compiled.matches(path);
    }
    if path.starts_with('/') && !path.contains(['*', '?', '#']) {
        let literal = Pattern::compile(path).expect("a literal path is a valid pattern");
        assert!(literal.matches(path), "{path} does not match itself");
    }
});
