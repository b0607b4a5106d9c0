//! Property tests: route matching agrees with a deliberately naive reference
//! implementation on generated patterns and paths.

use proptest::prelude::*;
use wisegate::route::Pattern;

/// The reference: recursive over segments, no cleverness.
fn reference(pattern: &str, path: &str) -> bool {
    fn go(pattern: &[&str], path: &[&str]) -> bool {
        match pattern.split_first() {
            None => path.is_empty(),
            Some((&"**", _)) => true,
            Some((&"*", rest)) => {
                path.first().is_some_and(|s| !s.is_empty()) && go(rest, &path[1..])
            }
            Some((literal, rest)) => path.first() == Some(literal) && go(rest, &path[1..]),
        }
    }
    fn exact(pattern: &str, path: &str) -> bool {
        let Some(path) = path.strip_prefix('/') else {
            return false;
        };
        let pattern: Vec<&str> = pattern[1..].split('/').collect();
        let path: Vec<&str> = path.split('/').collect();
        go(&pattern, &path)
    }
    fn is_quarter(segment: &str) -> bool {
        let b = segment.as_bytes();
        b.len() == 6
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'Q'
            && (b'1'..=b'4').contains(&b[5])
    }
    if exact(pattern, path) {
        return true;
    }
    let mut parts = path.splitn(3, '/');
    let (_, first, rest) = (parts.next(), parts.next(), parts.next());
    match (first, rest) {
        (Some(first), Some(rest)) if is_quarter(first) => exact(pattern, &format!("/{rest}")),
        _ => false,
    }
}

fn pattern() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec!["a", "b", "v1", "*", "2026Q3"]);
    (prop::collection::vec(segment, 0..5), any::<bool>()).prop_map(|(segments, rest)| {
        let mut pattern = format!("/{}", segments.join("/"));
        if rest {
            pattern = if segments.is_empty() {
                "/**".to_owned()
            } else {
                format!("{pattern}/**")
            };
        }
        pattern
    })
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec!["a", "b", "v1", "", "c", "2026Q3", "2026Q9"]);
    prop::collection::vec(segment, 0..6).prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5_000))]

    #[test]
    fn matching_agrees_with_the_reference(pattern in pattern(), path in path()) {
        let compiled = Pattern::compile(&pattern).unwrap();
        prop_assert_eq!(compiled.matches(&path), reference(&pattern, &path), "pattern {} path {}", pattern, path);
    }

    #[test]
    fn compile_never_panics(source in "\\PC{0,40}") {
        let _ = Pattern::compile(&source);
    }
}
