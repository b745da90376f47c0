//! A YAML document as the positioned tree the JSON parser builds
//! ([`Node`]), from `saphyr-parser`'s event spans: every key and value keeps
//! its byte range, so a problem named by key path is marked where it is
//! written. Only positions come from here: what a document *means* is
//! always `mirrord_config::parse_document`'s reading (serde_yaml).

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Number;

use super::json::tree::{Kind, Member, Node};

/// An open collection while its events arrive.
enum Open {
    Map {
        start: usize,
        members: Vec<Member>,
        /// A key read, waiting for its value: text and byte range.
        key: Option<(String, usize, usize)>,
    },
    Seq {
        start: usize,
        items: Vec<Node>,
    },
}

/// The positioned tree of the first document of `text` (`None` when it has
/// none); a syntax error's byte range and message.
pub fn parse(text: &str) -> Result<Option<Node>, (Range<usize>, String)> {
    // The parser counts characters; the editor's ranges are built from bytes.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let byte = |index: usize| bytes.get(index).copied().unwrap_or(text.len());
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let at = byte(e.marker().index());
            (at..at, e.info().to_owned())
        })?;
        let Span { start, end } = span;
        let (start, end) = (byte(start.index()), byte(end.index()));
        let done = match event {
            Event::MappingStart(..) => {
                stack.push(Open::Map {
                    start,
                    members: Vec::new(),
                    key: None,
                });
                continue;
            }
            Event::SequenceStart(..) => {
                stack.push(Open::Seq {
                    start,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(open) => close(open, end),
                None => continue,
            },
            Event::Scalar(value, style, ..) => Node {
                start,
                end,
                kind: scalar(&value, style),
            },
            Event::Alias(_) => Node {
                start,
                end,
                kind: Kind::Null,
            },
            Event::DocumentEnd if root.is_some() => break,
            _ => continue,
        };
        match stack.last_mut() {
            Some(Open::Map { key, members, .. }) => match key.take() {
                Some((key, key_start, key_end)) => members.push(Member {
                    key,
                    key_start,
                    key_end,
                    value: done,
                }),
                None => {
                    // A key that is not a string (`8080:`) is named as JSON writes it.
                    let name = match &done.kind {
                        Kind::String(s) => s.clone(),
                        _ => done.to_value().to_string(),
                    };
                    *key = Some((name, done.start, done.end));
                }
            },
            Some(Open::Seq { items, .. }) => items.push(done),
            None => root = Some(done),
        }
    }
    Ok(root)
}

/// A finished collection; its end is its last child's where the parser's
/// end event sits further on (a block ends at the next line's start).
fn close(open: Open, end: usize) -> Node {
    match open {
        Open::Map { start, members, .. } => {
            let end = members.last().map_or(end, |m| m.value.end.max(start));
            Node {
                start,
                end,
                kind: Kind::Object(members),
            }
        }
        Open::Seq { start, items } => {
            let end = items.last().map_or(end, |n| n.end.max(start));
            Node {
                start,
                end,
                kind: Kind::Array(items),
            }
        }
    }
}

/// A scalar as YAML 1.2's core schema reads it (what serde_yaml does):
/// plain `null`/`~`/empty, booleans and numbers; everything else a string.
fn scalar(value: &str, style: ScalarStyle) -> Kind {
    if style != ScalarStyle::Plain {
        return Kind::String(value.to_owned());
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        _ => {
            if let Ok(i) = value.parse::<i64>() {
                Kind::Number(Number::from(i))
            } else if let Some(n) = value
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && value.contains(['.', 'e', 'E']))
                .and_then(Number::from_f64)
            {
                Kind::Number(n)
            } else {
                Kind::String(value.to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::text_at as at;
    use super::*;

    #[test]
    fn keys_and_values_keep_their_ranges() {
        let text = "# é\ntarget: \"pid/1\"\nfeature:\n  fs:\n    mode: read\n    local:\n      - ^/a\n      - '('\n  network: {dns: false}\nagent:\n  startup_timeout: 5\n";
        let root = parse(text).unwrap().unwrap();
        assert_eq!(at(text, &root, "target"), "\"pid/1\"");
        assert_eq!(at(text, &root, "feature.fs.mode"), "read");
        assert_eq!(at(text, &root, "feature.fs.local[1]"), "'('");
        assert_eq!(at(text, &root, "feature.network.dns"), "false");
        let agent = root.member("agent").unwrap();
        assert_eq!(&text[agent.key_start..agent.key_end], "agent");
        let expected = mirrord_config::parse_document(
            text,
            mirrord_config::Format::Yaml,
            std::path::Path::new("m"),
        )
        .unwrap();
        assert_eq!(root.to_value(), expected);
    }

    #[test]
    fn empty_documents_and_syntax_errors() {
        assert_eq!(parse("# nothing\n"), Ok(None));
        let (range, message) = parse("agent:\n  - a\n  b: c\n").unwrap_err();
        assert_eq!(range.start, 15, "{message}");
    }
}
