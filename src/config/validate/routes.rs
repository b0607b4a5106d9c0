//! The `[[route]]` entries: name, path pattern, methods, mode and the migration-safety
//! switches (`shadow`, `fallback`, `fallback_cooldown`), into a [`RouteTable`].

use super::checker::Checker;
use crate::config::raw::RawRoute;
use crate::route::{Mode, Pattern, Route, RouteTable, DEFAULT_ROUTE};
use http::Method;
use std::time::Duration;

pub(super) fn routes(c: &mut Checker<'_>, raw: Vec<RawRoute>) -> RouteTable {
    let mut routes = Vec::with_capacity(raw.len());
    for (index, route) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("route[{index}].{field}");
        let name = c.required(
            &key("name"),
            route.name,
            "a short name used in logs and metrics",
        );
        if let Some(name) = &name {
            if name == DEFAULT_ROUTE {
                c.problem(
                    key("name"),
                    format!("`{name}` is the name of the built-in route for unmatched requests; choose another"),
                );
            } else if routes.iter().any(|r: &Route| &r.name == name) {
                c.problem(
                    key("name"),
                    format!("`{name}` is used by an earlier route; names must be unique"),
                );
            }
        }
        let pattern = c
            .required(
                &key("path"),
                route.path,
                "a path pattern such as \"/v3/profiles/*/subscriptions/**\"",
            )
            .and_then(|path| {
                Pattern::compile(&path)
                    .map_err(|error| c.problem(key("path"), error))
                    .ok()
            });
        let mut methods = Vec::new();
        for method in route.methods.unwrap_or_default() {
            match Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                Ok(parsed) => methods.push(parsed),
                Err(_) => c.problem(key("methods"), format!("`{method}` is not an HTTP method")),
            }
        }
        let mode = match route.mode.as_deref() {
            None => Some(Mode::OAuthMtls),
            Some(text) => Mode::parse(text).or_else(|| {
                c.problem(key("mode"), format!("`{text}` is not a mode: use \"oauth_mtls\", \"oauth_client\" or \"personal_token\""));
                None
            }),
        };
        if route.fallback && mode == Some(Mode::PersonalToken) {
            c.problem(key("fallback"), "applies to OAuth routes (oauth_mtls, oauth_client): a personal_token route has nowhere to fall back to");
        }
        if route.fallback_cooldown.is_some() && !route.fallback {
            c.problem(
                key("fallback_cooldown"),
                "needs fallback = true on the same route",
            );
        }
        let cooldown = c.duration(
            &key("fallback_cooldown"),
            route.fallback_cooldown.as_deref(),
            Duration::from_secs(30),
        );
        if let (Some(name), Some(pattern), Some(mode)) = (name, pattern, mode) {
            routes.push(Route {
                name,
                pattern,
                methods,
                mode,
                shadow: route.shadow,
                fallback: route.fallback.then_some(cooldown),
            });
        }
    }
    RouteTable::new(routes)
}
