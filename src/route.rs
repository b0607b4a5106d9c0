//! Route patterns and the route table: method + path -> the route that handles it.
//!
//! A pattern is a path whose segments are literals, `*` (exactly one segment) or a final
//! `**` (the rest: zero or more segments). The first route that matches wins; a request
//! no configured route matches takes the default route (`oauth_mtls`), the table's last.
//! What a route does now, under `rollback.all`, is [`Route::effective`]: the proxy,
//! `/status`, the reload audit and readiness all ask it. Wise is introducing
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

    /// The pattern of the default route: every path, shown as "(anything else)".
    pub fn anything() -> Pattern {
        Pattern {
            source: "(anything else)".to_owned(),
            segments: vec![Segment::Rest],
        }
    }

    /// The pattern as written in the config (for the default route: "(anything else)").
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
    /// OAuth routes: go to the legacy host when the mTLS host cannot be used; the
    /// cool-down after repeated failures (`fallback = true`, `fallback_cooldown`).
    pub fallback: Option<std::time::Duration>,
}

/// What a route does now: its mode, shadow copy and fallback once `rollback.all` is
/// applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    pub mode: Mode,
    /// GET/HEAD copies go the other way too.
    pub shadow: bool,
    /// The cool-down when the route falls back to the personal token.
    pub fallback: Option<std::time::Duration>,
}

impl Route {
    /// The route no `[[route]]` matched: every method and path, `oauth_mtls`.
    pub fn default_route() -> Route {
        Route {
            name: DEFAULT_ROUTE.to_owned(),
            pattern: Pattern::anything(),
            methods: Vec::new(),
            mode: Mode::OAuthMtls,
            shadow: false,
            fallback: None,
        }
    }

    pub fn matches(&self, method: &Method, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.contains(method)) && self.pattern.matches(path)
    }

    /// The rollback rule: with `rollback.all` every route goes to the legacy host, so
    /// none has an mTLS host to fall back from; a shadow copy still goes to the other host.
    pub fn effective(&self, rollback_all: bool) -> Effective {
        Effective {
            mode: if rollback_all {
                Mode::PersonalToken
            } else {
                self.mode
            },
            shadow: self.shadow,
            fallback: self.fallback.filter(|_| !rollback_all),
        }
    }
}

/// The name the default route (no `[[route]]` matched) carries in logs and metrics.
pub const DEFAULT_ROUTE: &str = "default";

/// The ordered routes of one config snapshot: the configured ones, then the default
/// route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl Default for RouteTable {
    fn default() -> RouteTable {
        RouteTable::new(Vec::new())
    }
}

impl RouteTable {
    /// The table of the `configured` routes, with the default route added last.
    pub fn new(configured: Vec<Route>) -> RouteTable {
        let mut routes = configured;
        routes.push(Route::default_route());
        RouteTable { routes }
    }

    /// The configured routes, in order (the default route not among them).
    pub fn routes(&self) -> &[Route] {
        &self.routes[..self.routes.len() - 1]
    }

    /// Every route a request can take: the configured ones, then the default route.
    pub fn all(&self) -> &[Route] {
        &self.routes
    }

    /// The route a request takes and its index in [`RouteTable::all`]: the first
    /// configured route that matches, else the default route (also for a target that is
    /// not a path, such as `*`).
    pub fn find(&self, method: &Method, path: &str) -> (usize, &Route) {
        let index = self
            .routes()
            .iter()
            .position(|route| route.matches(method, path))
            .unwrap_or(self.routes.len() - 1);
        (index, &self.routes[index])
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
        let select = |method: &Method, path: &str| {
            let (_, route) = table.find(method, path);
            (route.name.clone(), route.mode)
        };
        assert_eq!(
            select(&Method::GET, path),
            ("hooks-read".to_owned(), Mode::PersonalToken)
        );
        assert_eq!(
            select(&Method::POST, path),
            ("apps".to_owned(), Mode::OAuthClient)
        );
        assert_eq!(
            select(&Method::GET, "/v1/me"),
            (DEFAULT_ROUTE.to_owned(), Mode::OAuthMtls)
        );
        assert_eq!(table.find(&Method::GET, "/v1/me").0, 2);
        assert_eq!(table.routes().len(), 2);
        assert_eq!(table.all().last(), Some(&Route::default_route()));
    }

    #[test]
    fn the_rollback_sends_every_route_the_personal_token_way_without_fallback() {
        let route = Route {
            name: "transfers".into(),
            pattern: pattern("/v1/transfers/**"),
            methods: vec![],
            mode: Mode::OAuthMtls,
            shadow: true,
            fallback: Some(std::time::Duration::from_secs(30)),
        };
        let now = route.effective(false);
        assert_eq!(
            (now.mode, now.shadow, now.fallback),
            (Mode::OAuthMtls, true, route.fallback)
        );
        let rolled_back = route.effective(true);
        assert_eq!(
            (rolled_back.mode, rolled_back.shadow, rolled_back.fallback),
            (Mode::PersonalToken, true, None)
        );
        let default = Route::default_route().effective(true);
        assert_eq!(default.mode, Mode::PersonalToken);
    }
}
