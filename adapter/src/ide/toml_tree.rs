//! A TOML document as the positioned tree the JSON parser builds
//! ([`Node`]), from `toml_edit`'s spans: every key and value keeps its byte
//! range, so a problem named by key path is marked where it is written.
//! Only positions come from here: what a document *means* is always
//! `mirrord_config::parse_document`'s reading.

use std::ops::Range;

use serde_json::Number;
use toml_edit::{ImDocument, InlineTable, Item, Table, Value};

use super::json::tree::{Kind, Member, Node};

/// The positioned tree of `text`; a syntax error's byte range and message.
pub fn parse(text: &str) -> Result<Node, (Range<usize>, String)> {
    let document = ImDocument::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        (span, e.message().to_owned())
    })?;
    Ok(table(document.as_table(), 0..text.len()))
}

fn node(span: Option<Range<usize>>, fallback: &Range<usize>, kind: Kind) -> Node {
    let span = span.unwrap_or_else(|| fallback.clone());
    Node {
        start: span.start,
        end: span.end,
        kind,
    }
}

/// A table; one with no span of its own (implicit, dotted, the root) is
/// placed at `fallback`, the range of the key that names it.
fn table(table: &Table, fallback: Range<usize>) -> Node {
    let members = table
        .iter()
        .filter_map(|(name, _)| table.get_key_value(name))
        .map(|(key, item)| member(key, item, &fallback))
        .collect();
    node(table.span(), &fallback, Kind::Object(members))
}

fn inline_table(table: &InlineTable, fallback: &Range<usize>) -> Node {
    let members = table
        .iter()
        .filter_map(|(name, _)| table.get_key_value(name))
        .map(|(key, item)| member(key, item, fallback))
        .collect();
    node(table.span(), fallback, Kind::Object(members))
}

fn member(key: &toml_edit::Key, item: &Item, fallback: &Range<usize>) -> Member {
    let key_span = key.span().unwrap_or_else(|| fallback.clone());
    Member {
        key: key.get().to_owned(),
        key_start: key_span.start,
        key_end: key_span.end,
        value: item_node(item, key_span),
    }
}

fn item_node(item: &Item, fallback: Range<usize>) -> Node {
    match item {
        Item::None => node(None, &fallback, Kind::Null),
        Item::Value(value) => value_node(value, &fallback),
        Item::Table(t) => table(t, fallback),
        Item::ArrayOfTables(tables) => {
            let items = tables.iter().map(|t| table(t, fallback.clone())).collect();
            node(tables.span(), &fallback, Kind::Array(items))
        }
    }
}

fn value_node(value: &Value, fallback: &Range<usize>) -> Node {
    let kind = match value {
        Value::String(s) => Kind::String(s.value().clone()),
        Value::Integer(i) => Kind::Number(Number::from(*i.value())),
        Value::Float(f) => Number::from_f64(*f.value()).map_or(Kind::Null, Kind::Number),
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(d) => Kind::String(d.value().to_string()),
        Value::Array(items) => {
            let at = items.span().unwrap_or_else(|| fallback.clone());
            Kind::Array(items.iter().map(|v| value_node(v, &at)).collect())
        }
        Value::InlineTable(t) => return inline_table(t, fallback),
    };
    node(value.span(), fallback, kind)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::text_at as at;
    use super::*;

    #[test]
    fn keys_and_values_keep_their_ranges() {
        let text = "target = \"pid/1\"\n[feature]\nenv.enabled = true\nnetwork = { dns = false }\n\n[feature.fs]\nmode = \"read\"\nlocal = [\"^/a\", \"(\"]\n";
        let root = parse(text).unwrap();
        assert_eq!(at(text, &root, "target"), "\"pid/1\"");
        assert_eq!(at(text, &root, "feature.fs.mode"), "\"read\"");
        assert_eq!(at(text, &root, "feature.network.dns"), "false");
        assert_eq!(at(text, &root, "feature.env.enabled"), "true");
        assert_eq!(at(text, &root, "feature.fs.local[1]"), "\"(\"");
        let feature = &root.member("feature").unwrap().value;
        let network = feature.member("network").unwrap();
        assert_eq!(&text[network.key_start..network.key_end], "network");
        let expected = mirrord_config::parse_document(
            text,
            mirrord_config::Format::Toml,
            std::path::Path::new("m"),
        )
        .unwrap();
        assert_eq!(root.to_value(), expected);
    }

    #[test]
    fn a_syntax_error_has_its_range() {
        let (range, message) = parse("[feature]\nfs = \n").unwrap_err();
        assert_eq!(range, 15..16, "{message}");
        assert!(message.contains("string"), "{message}");
    }
}
