//! Unknown keys: every key of the file that wisegate does not read, each reported with
//! its full dotted path (`oauth.clinet_id`, `route[1].nmae`), its line and, when one
//! known key is close, "did you mean". serde's `deny_unknown_fields` stopped at the
//! first typo and named only the field, without its section, so the file is walked
//! here instead (through toml_edit, which keeps the spans), beside the value checks.
//!
//! The known keys come from the serde types in [`super::raw`] themselves (the field
//! list serde's derive hands to `deserialize_struct`), so they cannot drift from what
//! is actually read.

use super::locate::line_of;
use super::problem::Problem;
use super::raw::{
    RawAccount, RawAdmin, RawConfig, RawLimits, RawListen, RawLog, RawMtls, RawOAuth,
    RawPersonalToken, RawRollback, RawRoute, RawUpstream,
};
use serde::Deserialize;
use std::cell::Cell;
use toml_edit::{Document, Item, TableLike, Value};

/// The arrays of tables among the sections (`[[route]]`, `[[account]]`).
const ROUTE: &str = "route";
const ACCOUNT: &str = "account";

/// Every unknown key in `text`, in file order; none when `text` is not TOML (the
/// parser reports that).
pub fn unknown_keys(text: &str) -> Vec<Problem> {
    let Ok(document) = Document::parse(text) else {
        return Vec::new();
    };
    let schema = Schema::new();
    let mut problems = Vec::new();
    let top = document.as_table();
    for (name, item) in top.iter() {
        let Some(fields) = schema.section(name) else {
            if !schema.top.contains(&name) {
                problems.push(schema.unknown(text, top, name, name, None));
            }
            continue;
        };
        if let Some(table) = item.as_table_like() {
            check_table(text, &schema, name, table, fields, &mut problems);
            continue;
        }
        // [[route]], [[account]] or route = [{ ... }]; any other shape is serde's to refuse.
        let elements: Vec<&dyn TableLike> = match item {
            Item::ArrayOfTables(array) => array.iter().map(|t| t as &dyn TableLike).collect(),
            Item::Value(Value::Array(array)) => array
                .iter()
                .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
                .collect(),
            _ => Vec::new(),
        };
        for (index, table) in elements.into_iter().enumerate() {
            let prefix = format!("{name}[{index}]");
            check_table(text, &schema, &prefix, table, fields, &mut problems);
        }
    }
    problems.sort_by_key(|problem| problem.line);
    problems
}

fn check_table(
    text: &str,
    schema: &Schema,
    prefix: &str,
    table: &dyn TableLike,
    fields: &[&str],
    problems: &mut Vec<Problem>,
) {
    for (name, _) in table.iter() {
        if !fields.contains(&name) {
            let key = format!("{prefix}.{name}");
            problems.push(schema.unknown(text, table, name, &key, Some(fields)));
        }
    }
}

/// The keys wisegate reads: the top level's, and each section's.
struct Schema {
    top: &'static [&'static str],
    sections: [(&'static str, &'static [&'static str]); 11],
}

impl Schema {
    fn new() -> Schema {
        Schema {
            top: fields_of::<RawConfig>(),
            sections: [
                ("listen", fields_of::<RawListen>()),
                ("admin", fields_of::<RawAdmin>()),
                ("upstream", fields_of::<RawUpstream>()),
                ("mtls", fields_of::<RawMtls>()),
                ("oauth", fields_of::<RawOAuth>()),
                ("personal_token", fields_of::<RawPersonalToken>()),
                ("limits", fields_of::<RawLimits>()),
                ("rollback", fields_of::<RawRollback>()),
                ("log", fields_of::<RawLog>()),
                (ROUTE, fields_of::<RawRoute>()),
                (ACCOUNT, fields_of::<RawAccount>()),
            ],
        }
    }

    fn section(&self, name: &str) -> Option<&'static [&'static str]> {
        self.sections
            .iter()
            .find(|(section, _)| *section == name)
            .map(|(_, fields)| *fields)
    }

    /// The problem for `name` (full path `key`), unknown in `table`, whose keys are
    /// `fields` (`None`: the top level).
    fn unknown(
        &self,
        text: &str,
        table: &dyn TableLike,
        name: &str,
        key: &str,
        fields: Option<&[&str]>,
    ) -> Problem {
        let line = table
            .get_key_value(name)
            .and_then(|(found, _)| found.span())
            .map(|span| line_of(text, span.start));
        let known = fields.unwrap_or(self.top);
        let message = match (closest(name, known), self.elsewhere(name, fields)) {
            (Some(close), _) => format!("is not a config key: did you mean `{close}`?"),
            (None, Some(section)) => format!(
                "is not a key here: did you mean `{section}.{name}`? (it belongs in [{section}])"
            ),
            (None, None) => match fields {
                Some(fields) => format!(
                    "is not a config key; the keys here are: {}",
                    fields.join(", ")
                ),
                None => format!(
                    "is not a config key or section; the top level has: {}",
                    known.join(", ")
                ),
            },
        };
        Problem {
            key: key.to_owned(),
            line,
            message,
        }
    }

    /// The section where `name` is a key, when it is not the one it was found in.
    fn elsewhere(&self, name: &str, found_in: Option<&[&str]>) -> Option<&'static str> {
        self.sections
            .iter()
            .find(|(_, fields)| fields.contains(&name) && Some(*fields) != found_in)
            .map(|(section, _)| *section)
    }
}

/// The one known key close to `name` (a typo or two away), if exactly one is.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let mut best: Vec<(usize, &str)> = known
        .iter()
        .map(|key| (strsim::damerau_levenshtein(name, key), *key))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    best.sort();
    match best.as_slice() {
        [(distance, key), rest @ ..] if rest.first().is_none_or(|(d, _)| d > distance) => Some(key),
        _ => None,
    }
}

/// The field names serde's derive reads for `T` (renames applied).
fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let fields = Cell::new(None);
    let _ = T::deserialize(FieldNames { fields: &fields });
    fields.get().unwrap_or(&[])
}

/// A deserializer that only records the field list it is asked for, then gives up.
struct FieldNames<'a> {
    fields: &'a Cell<Option<&'static [&'static str]>>,
}

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.fields.set(Some(fields));
        Err(serde::de::Error::custom("field names recorded"))
    }

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("only structs have field names"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table-valued key of [`RawConfig`] has its section here: a section added to
    /// raw.rs without one would have all of its keys reported unknown.
    #[test]
    fn every_section_of_the_raw_config_is_known() {
        let schema = Schema::new();
        for field in schema.top.iter().filter(|f| **f != "environment") {
            assert!(schema.section(field).is_some(), "no schema for [{field}]");
        }
        assert!(schema.section("oauth").unwrap().contains(&"client_id"));
        assert!(schema
            .section(ROUTE)
            .unwrap()
            .contains(&"fallback_cooldown"));
    }

    #[test]
    fn a_close_key_is_suggested_only_when_it_is_the_only_one() {
        let known = [
            "client_id",
            "client_secret_file",
            "token_url",
            "token_store",
        ];
        assert_eq!(closest("clinet_id", &known), Some("client_id"));
        assert_eq!(closest("token_stor", &known), Some("token_store"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(closest("token_", &["token_a", "token_b"]), None);
    }
}
