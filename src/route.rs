//! Route patterns and the route table: method + path -> the route that handles it.
//!
//! A pattern is a path whose segments are literals, `*` (exactly one segment) or a final
//! `**` (the rest: zero or more segments). The first route that matches wins; a request
//! no route matches takes the default route (`oauth_mtls`). Wise is introducing
//! quarterly-versioned paths (`/2026Q3/...`), so a pattern written without such a prefix
//! also matches the same path behind one. Matching allocates nothing.

use http::Method;
use std::fmt;

/// How a request is authenticated and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The user's OAuth access token, to the mTLS host with the client certificate.
    OAuthMtls,
    /// A client-credentials token, to the mTLS host with the client certificate.
    OAuthClient,
    /// The personal API token, to the legacy host.
    PersonalToken,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::OAuthMtls, Mode::OAuthClient, Mode::PersonalToken];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::OAuthMtls => "oauth_mtls",
            Mode::OAuthClient => "oauth_client",
            Mode::PersonalToken => "personal_token",
        }
    }

    pub fn parse(text: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Compiles a pattern; the error says what is wrong in words a config author can act on.
    pub fn compile(source: &str) -> Result<Pattern, String> {
        let Some(rest) = source.strip_prefix('/') else {
            return Err(format!("`{source}` must start with '/'"));
        };
        if source.contains(['?', '#']) {
            return Err(format!(
                "`{source}` must be a path only: no query string or fragment"
            ));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let segment = match *part {
                "**" if index + 1 == parts.len() => Segment::Rest,
                "**" => return Err(format!("`{source}`: '**' may only be the last segment")),
                "*" => Segment::One,
                literal if literal.contains('*') => {
                    return Err(format!(
                        "`{source}`: '*' must be a whole segment ('/*/' or a final '/**')"
                    ))
                }
                literal => Segment::Literal(literal.to_owned()),
            };
            segments.push(segment);
        }
        Ok(Pattern {
            source: source.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `path` (no query string) matches, with or without a quarterly version prefix.
    pub fn matches(&self, path: &str) -> bool {
        if self.matches_exactly(path) {
            return true;
        }
        match strip_version_prefix(path) {
            Some(unversioned) => self.matches_exactly(unversioned),
            None => false,
        }
    }

    fn matches_exactly(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix('/') else {
            return false;
        };
        let mut parts = rest.split('/');
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if parts.next().is_none_or(str::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if parts.next() != Some(literal.as_str()) {
                        return false;
                    }
                }
            }
        }
        parts.next().is_none()
    }
}

/// `/2026Q3/v1/x` -> `Some("/v1/x")`; anything else -> `None`.
fn strip_version_prefix(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let end = rest.find('/')?;
    let segment = &rest.as_bytes()[..end];
    let is_quarter = segment.len() == 6
        && segment[..4].iter().all(u8::is_ascii_digit)
        && segment[4] == b'Q'
        && (b'1'..=b'4').contains(&segment[5]);
    is_quarter.then(|| &rest[end..])
}

/// One `[[route]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub pattern: Pattern,
    /// Empty: every method.
    pub methods: Vec<Method>,
    pub mode: Mode,
    /// GET/HEAD: also send a copy the other way and compare (`shadow = true`).
    pub shadow: bool,
    /// OAuth routes: go the personal-token way when the mTLS side cannot be used; the
    /// cool-down after repeated failures (`fallback = true`, `fallback_cooldown`).
    pub fallback: Option<std::time::Duration>,
}

impl Route {
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method)) && self.pattern.matches(path)
    }
}

/// The name the default route (no `[[route]]` matched) carries in logs and metrics.
pub const DEFAULT_ROUTE: &str = "default";

/// The ordered routes of one config snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> RouteTable {
        RouteTable { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route name and configured mode for a request: the first match, else the default.
    /// The first route that matches, if any.
    pub fn find(&self, method: &Method, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.matches(method, path))
    }

    pub fn select(&self, method: &Method, path: &str) -> (&str, Mode) {
        self.routes
            .iter()
            .find(|route| route.matches(method, path))
            .map_or((DEFAULT_ROUTE, Mode::OAuthMtls), |route| {
                (route.name.as_str(), route.mode)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(source: &str) -> Pattern {
        Pattern::compile(source).expect("pattern compiles")
    }

    #[test]
    fn literal_patterns_match_exactly() {
        let p = pattern("/v1/profiles");
        assert!(p.matches("/v1/profiles"));
        assert!(!p.matches("/v1/profiles/"));
        assert!(!p.matches("/v1/profiles/1"));
        assert!(!p.matches("/v1"));
        assert!(!p.matches("v1/profiles"));
    }

    #[test]
    fn star_matches_one_non_empty_segment() {
        let p = pattern("/v3/profiles/*/subscriptions");
        assert!(p.matches("/v3/profiles/42/subscriptions"));
        assert!(!p.matches("/v3/profiles//subscriptions"));
        assert!(!p.matches("/v3/profiles/1/2/subscriptions"));
        assert!(!p.matches("/v3/profiles/subscriptions"));
    }

    #[test]
    fn double_star_matches_the_rest_including_nothing() {
        let p = pattern("/v3/profiles/*/subscriptions/**");
        assert!(p.matches("/v3/profiles/42/subscriptions"));
        assert!(p.matches("/v3/profiles/42/subscriptions/"));
        assert!(p.matches("/v3/profiles/42/subscriptions/abc/def"));
        assert!(!p.matches("/v3/profiles/42/subscription"));
        assert!(pattern("/**").matches("/"));
        assert!(pattern("/**").matches("/anything/at/all"));
    }

    #[test]
    fn quarterly_prefix_is_optional() {
        let p = pattern("/v1/transfers/**");
        assert!(p.matches("/2026Q3/v1/transfers/1"));
        assert!(p.matches("/v1/transfers/1"));
        assert!(!p.matches("/2026Q5/v1/transfers/1"));
        assert!(!p.matches("/2026/v1/transfers/1"));
        let versioned = pattern("/2026Q3/oauth/token");
        assert!(versioned.matches("/2026Q3/oauth/token"));
        assert!(!versioned.matches("/oauth/token"));
    }

    #[test]
    fn bad_patterns_are_explained() {
        assert!(Pattern::compile("v1/x")
            .unwrap_err()
            .contains("start with '/'"));
        assert!(Pattern::compile("/a/**/b")
            .unwrap_err()
            .contains("last segment"));
        assert!(Pattern::compile("/a*/b")
            .unwrap_err()
            .contains("whole segment"));
        assert!(Pattern::compile("/a?b=1").unwrap_err().contains("query"));
    }

    #[test]
    fn first_match_wins_and_methods_filter() {
        let table = RouteTable::new(vec![
            Route {
                name: "hooks-read".into(),
                pattern: pattern("/v3/profiles/*/subscriptions/**"),
                methods: vec![Method::GET],
                mode: Mode::PersonalToken,
                shadow: false,
                fallback: None,
            },
            Route {
                name: "apps".into(),
                pattern: pattern("/v3/**"),
                methods: vec![],
                mode: Mode::OAuthClient,
                shadow: false,
                fallback: None,
            },
        ]);
        let path = "/v3/profiles/7/subscriptions";
        assert_eq!(
            table.select(&Method::GET, path),
            ("hooks-read", Mode::PersonalToken)
        );
        assert_eq!(
            table.select(&Method::POST, path),
            ("apps", Mode::OAuthClient)
        );
        assert_eq!(
            table.select(&Method::GET, "/v1/me"),
            (DEFAULT_ROUTE, Mode::OAuthMtls)
        );
    }
}
