//! Answers by status class per route, for `/status`: one [`RouteCounts`] per route of a
//! snapshot's table (the default route last), carried over to the next snapshot for the
//! routes that keep their name.

use crate::route::RouteTable;
use std::sync::atomic::{AtomicU64, Ordering};

/// Answers per status class (1xx..5xx) of one route.
#[derive(Debug, Default)]
pub struct RouteCounts([AtomicU64; 5]);

impl RouteCounts {
    /// One counter per route of `table`, in the order of [`RouteTable::all`].
    pub fn for_table(table: &RouteTable) -> Vec<RouteCounts> {
        table.all().iter().map(|_| RouteCounts::default()).collect()
    }

    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Carries the counts of a route over into a new snapshot.
    pub fn add_from(&self, other: &RouteCounts) {
        for (mine, theirs) in self.0.iter().zip(&other.0) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The answers so far: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub fn by_class(&self) -> [u64; 5] {
        self.0.each_ref().map(|count| count.load(Ordering::Relaxed))
    }
}

/// Carries `old`'s counts into `new` for the routes (of `old_table` and `new_table`)
/// that kept their name.
pub fn carry_over(
    old_table: &RouteTable,
    old: &[RouteCounts],
    new_table: &RouteTable,
    new: &[RouteCounts],
) {
    for (index, route) in new_table.all().iter().enumerate() {
        if let Some(previous) = old_table.all().iter().position(|r| r.name == route.name) {
            new[index].add_from(&old[previous]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{Mode, Pattern, Route};

    fn table(names: &[&str]) -> RouteTable {
        RouteTable::new(
            names
                .iter()
                .map(|name| Route {
                    name: (*name).to_owned(),
                    pattern: Pattern::compile("/v1/**").expect("compiles"),
                    methods: vec![],
                    mode: Mode::OAuthMtls,
                    shadow: false,
                    fallback: None,
                })
                .collect(),
        )
    }

    #[test]
    fn counts_follow_the_route_name_into_the_next_snapshot() {
        let (old_table, new_table) = (table(&["a", "b"]), table(&["b", "c"]));
        let old = RouteCounts::for_table(&old_table);
        old[1].record(200);
        old[1].record(503);
        old[2].record(404);
        old[0].record(201);
        let new = RouteCounts::for_table(&new_table);
        carry_over(&old_table, &old, &new_table, &new);
        assert_eq!(new[0].by_class(), [0, 1, 0, 0, 1], "b kept its counts");
        assert_eq!(new[1].by_class(), [0; 5], "c is new");
        assert_eq!(
            new[2].by_class(),
            [0, 0, 0, 1, 0],
            "the default route kept its counts"
        );
    }
}
