//! Route patterns and the route table: compiling never panics; matching never panics; a
//! pattern made of the path's own literal segments always matches that path; and
//! `RouteTable::find`, as the proxy calls it, takes the first configured route that
//! matches, else the default route (the table's last).
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use wisegate::route::{Mode, Pattern, Route, RouteTable, DEFAULT_ROUTE};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The last line is the request path; the lines before it are patterns.
    let (patterns, path) = text.rsplit_once('\n').unwrap_or((text, "/"));
    let mut routes = Vec::new();
    for (index, pattern) in patterns.split('\n').enumerate() {
        if let Ok(compiled) = Pattern::compile(pattern) {
            let _ = compiled.matches(path);
            routes.push(Route {
                name: format!("r{index}"),
                pattern: compiled,
                methods: if index % 2 == 0 { vec![] } else { vec![Method::GET] },
                mode: Mode::ALL[index % Mode::ALL.len()],
                shadow: false,
                fallback: None,
            });
        }
    }
    let table = RouteTable::new(routes);
    for method in [Method::GET, Method::POST] {
        let (index, route) = table.find(&method, path);
        let first = table.routes().iter().position(|r| r.matches(&method, path));
        match first {
            Some(first) => assert_eq!(index, first, "{path}: not the first match"),
            None => {
                assert_eq!(index, table.all().len() - 1, "{path}: not the default route");
                assert_eq!(route.name, DEFAULT_ROUTE);
            }
        }
        assert_eq!(route.effective(true).mode, Mode::PersonalToken);
    }
    if path.starts_with('/') && !path.contains(['*', '?', '#']) {
        let literal = Pattern::compile(path).expect("a literal path is a valid pattern");
        assert!(literal.matches(path), "{path} does not match itself");
    }
});
