//! Finds the line a config key sits on, so that every error can say `file:line: key`.
//! Keys are dotted paths as users write them: `oauth.client_id`, `route[2].mode`. A key
//! that is absent is reported at its table's header, or without a line.

use toml_edit::{Document, Item};

/// 1-based line of the byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line of `key` in `text`, or of the nearest table that encloses it.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let document = Document::parse(text).ok()?;
    let mut item: &Item = document.as_item();
    let mut best = None;
    for part in key.split('.') {
        let (name, index) = split_index(part);
        let Some((found_key, found)) = item.as_table_like().and_then(|t| t.get_key_value(name))
        else {
            break;
        };
        best = found_key.span().or(best);
        item = found;
        if let Some(index) = index {
            return match item {
                Item::ArrayOfTables(array) => {
                    let table = array.get(index)?;
                    best = table.span().or(best);
                    locate_in_table(text, table, key, part, best)
                }
                Item::Value(value) => {
                    let element = value.as_array()?.get(index)?;
                    element
                        .span()
                        .or(best)
                        .map(|span| line_of(text, span.start))
                }
                _ => best.map(|span| line_of(text, span.start)),
            };
        }
    }
    best.map(|span| line_of(text, span.start))
}

/// Continues `line_of_key` inside one `[[array]]` element for the parts after `part`.
fn locate_in_table(
    text: &str,
    table: &toml_edit::Table,
    key: &str,
    part: &str,
    mut best: Option<std::ops::Range<usize>>,
) -> Option<usize> {
    let rest = key.split_once(&format!("{part}.")).map(|(_, rest)| rest);
    if let Some(field) = rest {
        if let Some((found_key, _)) = table.get_key_value(field) {
            best = found_key.span().or(best);
        }
    }
    best.map(|span| line_of(text, span.start))
}

/// `route[2]` -> (`route`, Some(2)); `mode` -> (`mode`, None).
fn split_index(part: &str) -> (&str, Option<usize>) {
    match part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        Some((name, index)) => (name, index.parse().ok()),
        None => (part, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "environment = \"sandbox\"\n\n[oauth]\nclient_id = \"x\"\n\n[[route]]\nname = \"a\"\n\n[[route]]\nname = \"b\"\nmode = \"bad\"\nmethods = [\"GET\", \"BREW\"]\n";

    #[test]
    fn finds_plain_keys_and_tables() {
        assert_eq!(line_of_key(TEXT, "environment"), Some(1));
        assert_eq!(line_of_key(TEXT, "oauth.client_id"), Some(4));
        assert_eq!(line_of_key(TEXT, "oauth.missing"), Some(3));
    }

    #[test]
    fn finds_keys_inside_arrays_of_tables() {
        assert_eq!(line_of_key(TEXT, "route[1].mode"), Some(11));
        assert_eq!(line_of_key(TEXT, "route[1].methods"), Some(12));
        assert_eq!(line_of_key(TEXT, "route[0].mode"), Some(6));
    }
}
