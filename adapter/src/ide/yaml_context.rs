//! Where a cursor is in a YAML config that may be half written: the key
//! path from the indentation of the block mappings and sequences above,
//! and whether a key or a value goes there. Reads lines, never fails; the
//! same [`Context`] the JSON scanner gives. Flow collections (`{a: 1}`)
//! get no completion.

use mirrord_config::KeySegment;

use super::json::context::{Context, Place};
use super::line_scan::{line_at, unquote, value_span, word_around};

/// One non-blank, non-comment line: where its `- ` markers and its
/// content start, and its key when it is `key:` or `key: value`.
struct Line {
    /// Columns of the `- ` markers before the content.
    dashes: Vec<usize>,
    content: usize,
    key: Option<String>,
    /// Something follows the key's `:` on the line.
    inline_value: bool,
}

fn read_line(line: &str) -> Option<Line> {
    let mut dashes = Vec::new();
    let mut at = line.len() - line.trim_start_matches(' ').len();
    loop {
        let rest = &line[at..];
        if rest == "-" || rest.starts_with("- ") {
            dashes.push(at);
            at += 1 + rest[1..].len() - rest[1..].trim_start_matches(' ').len();
        } else {
            break;
        }
    }
    let rest = line[at..].trim_end();
    if rest.is_empty() && dashes.is_empty() || rest.starts_with('#') {
        return None;
    }
    let colon = key_colon(rest);
    Some(Line {
        dashes,
        content: at,
        key: colon.map(|c| unquote(&rest[..c])),
        inline_value: colon.is_some_and(|c| value_span(rest, c + 1, rest.len()).is_some()),
    })
}

/// The offset of the `:` that ends a key (followed by a blank or the end).
fn key_colon(rest: &str) -> Option<usize> {
    if rest.starts_with(['{', '[']) {
        return None;
    }
    rest.char_indices()
        .find(|&(i, c)| c == ':' && rest[i + 1..].chars().next().is_none_or(|n| n == ' '))
        .map(|(i, _)| i)
}

/// The context at byte `offset` of `text`.
pub fn at(text: &str, offset: usize) -> Context {
    let offset = offset.min(text.len());
    let (line_start, line_end) = line_at(text, offset);
    let before = &text[line_start..offset];
    let cursor = read_line(before).unwrap_or(Line {
        dashes: Vec::new(),
        content: before.len(),
        key: None,
        inline_value: false,
    });
    let above: Vec<Line> = text[..line_start].lines().filter_map(read_line).collect();
    let mut path = parent_path(&above, cursor.content, cursor.dashes.last().copied());
    match &cursor.key {
        Some(key) => {
            path.push(KeySegment::Key(key.clone()));
            let colon = before[cursor.content..].find(':').unwrap_or(0);
            let value_from = line_start + cursor.content + colon + 1;
            Context {
                path,
                place: Place::Value {
                    token: value_span(text, value_from, line_end),
                },
                siblings: Vec::new(),
            }
        }
        None => {
            let below: Vec<Line> = text[line_end..].lines().filter_map(read_line).collect();
            Context {
                path,
                place: Place::Key {
                    token: word_around(text, offset),
                },
                siblings: siblings(&above, &below, cursor.content),
            }
        }
    }
}

/// The path of the mapping whose keys start at column `column`, inside a
/// sequence item whose `- ` is at `dash` when there is one, read upward.
fn parent_path(above: &[Line], column: usize, dash: Option<usize>) -> Vec<KeySegment> {
    let mut reversed = Vec::new();
    let mut want = column;
    // Inside a sequence item: its dash column and the items above it.
    let mut item: Option<(usize, usize)> = dash.map(|d| (d, 0));
    for line in above.iter().rev() {
        if let Some((d, count)) = item {
            if line.dashes.contains(&d) {
                item = Some((d, count + 1));
                continue;
            }
            if line.content > d {
                continue;
            }
            // The sequence's parent: a key at or left of the dashes.
            reversed.push(KeySegment::Index(count));
            item = None;
            want = d + 1;
        }
        if line.content >= want {
            // A sibling that opens this sequence item, or something deeper.
            if line.content == want {
                item = line.dashes.last().map(|&d| (d, 0));
            }
            continue;
        }
        match &line.key {
            Some(key) if !line.inline_value => {
                reversed.push(KeySegment::Key(key.clone()));
                want = line.content;
                item = line.dashes.last().map(|&d| (d, 0));
            }
            _ => break,
        }
    }
    if let Some((_, count)) = item {
        reversed.push(KeySegment::Index(count));
    }
    reversed.reverse();
    reversed
}

/// The keys written at `column` in the cursor's mapping, above and below.
fn siblings(above: &[Line], below: &[Line], column: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for line in above.iter().rev() {
        if line.content < column {
            break;
        }
        if line.content == column {
            keys.extend(line.key.clone());
            if !line.dashes.is_empty() {
                break;
            }
        }
    }
    for line in below {
        if line.content < column || (line.content == column && !line.dashes.is_empty()) {
            break;
        }
        if line.content == column {
            keys.extend(line.key.clone());
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{keys, unmark};
    use super::*;

    fn context(marked: &str) -> Context {
        let (text, offset) = unmark(marked);
        at(&text, offset)
    }

    #[test]
    fn nested_mappings_by_indentation() {
        let c = context(
            "target: x\nfeature:\n  fs:\n    mode: read\n    lo|\n  env: true\nagent: {}\n",
        );
        assert_eq!(c.path, keys(&["feature", "fs"]));
        assert_eq!(c.siblings, vec!["mode"]);
        assert!(matches!(c.place, Place::Key { token: Some((_, _, ref t)) } if t == "lo"));

        let c = context("feature:\n  fs:\n    mode: re| # c\n");
        assert_eq!(c.path, keys(&["feature", "fs", "mode"]));
        assert_eq!(
            c.place,
            Place::Value {
                token: Some((25, 27))
            }
        );

        let c = context("feature:\n  fs: |\n");
        assert_eq!(c.path, keys(&["feature", "fs"]));
        assert_eq!(c.place, Place::Value { token: None });

        let c = context("feature:\n  fs:\n    mode: read\n  |");
        assert_eq!(c.path, keys(&["feature"]));
        assert_eq!(c.siblings, vec!["fs"]);

        let c = context("agent:\n  startup_timeout: 3\n|\n");
        assert!(c.path.is_empty());
        assert_eq!(c.siblings, vec!["agent"]);
    }

    #[test]
    fn sequence_items_are_indexes() {
        let c = context("a:\n  - x: 1\n  - x: 2\n    |\n");
        assert_eq!(
            c.path,
            vec![KeySegment::Key("a".into()), KeySegment::Index(1)]
        );
        assert_eq!(c.siblings, vec!["x"]);
        let c = context("a:\n- x: 1\n- |");
        assert_eq!(
            c.path,
            vec![KeySegment::Key("a".into()), KeySegment::Index(1)]
        );
    }
}
