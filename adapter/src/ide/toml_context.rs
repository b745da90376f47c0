//! Where a cursor is in a TOML config that may be half written: the table
//! (from the last `[header]` or `[[header]]` above), the dotted key on the
//! cursor's line, and whether a key or a value goes there. Reads lines,
//! never fails; the same [`Context`] the JSON scanner gives.

use mirrord_config::KeySegment;

use super::json::context::{Context, Place};
use super::line_scan::{line_at, unquote, value_span, word_around};

/// The context at byte `offset` of `text`.
pub fn at(text: &str, offset: usize) -> Context {
    let offset = offset.min(text.len());
    let (line_start, line_end) = line_at(text, offset);
    let before = &text[line_start..offset];
    let lead = before.len() - before.trim_start().len();
    let written = before.trim_start();
    let token = word_around(text, offset);
    if let Some(header) = written.strip_prefix('[') {
        // A header being written: keys of the tables above the last part.
        let mut path = dotted(header.trim_start_matches('['));
        path.pop();
        return Context {
            path,
            place: Place::Key { token },
            siblings: Vec::new(),
        };
    }
    let (mut path, section) = table_above(&text[..line_start]);
    if let Some(eq) = written.find('=') {
        path.extend(dotted(&written[..eq]));
        let value_from = line_start + lead + eq + 1;
        return Context {
            path,
            place: Place::Value {
                token: value_span(text, value_from, line_end),
            },
            siblings: Vec::new(),
        };
    }
    let mut keys = dotted(written);
    keys.pop();
    let siblings = if keys.is_empty() {
        section_keys(&text[section..], line_start - section)
    } else {
        Vec::new()
    };
    path.extend(keys);
    Context {
        path,
        place: Place::Key { token },
        siblings,
    }
}

/// `a.b."c d"` as keys (the last part may be half written or empty).
fn dotted(keys: &str) -> Vec<KeySegment> {
    keys.split('.')
        .map(|k| KeySegment::Key(unquote(k.trim().trim_end_matches(']'))))
        .collect()
}

/// The path of the table the text ends in, and the offset where its
/// section starts (after its header).
fn table_above(text: &str) -> (Vec<KeySegment>, usize) {
    let mut path = Vec::new();
    let mut section = 0;
    let mut arrays: Vec<(Vec<KeySegment>, usize)> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        at += line.len();
        if let Some(header) = trimmed.strip_prefix("[[") {
            let name = header.split("]]").next().unwrap_or("");
            let keys = dotted(name);
            let count = match arrays.iter_mut().find(|(k, _)| *k == keys) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    arrays.push((keys.clone(), 0));
                    0
                }
            };
            path = keys;
            path.push(KeySegment::Index(count));
            section = at;
        } else if let Some(header) = trimmed.strip_prefix('[') {
            path = dotted(header.split(']').next().unwrap_or(""));
            section = at;
        }
    }
    (path, section)
}

/// The first keys of the `key = value` lines of a section, except the
/// line at `skip` (the cursor's), up to the next header.
fn section_keys(section: &str, skip: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut at = 0;
    for line in section.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            break;
        }
        if start == skip {
            continue;
        }
        if let Some((key, _)) = trimmed.split_once('=') {
            if let Some(KeySegment::Key(first)) = dotted(key).into_iter().next() {
                keys.push(first);
            }
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
    fn keys_values_and_headers() {
        let c = context("target = \"x\"\n[feature.fs]\nmode = \"read\"\nlo|\n[agent]\n");
        assert_eq!(c.path, keys(&["feature", "fs"]));
        assert_eq!(c.siblings, vec!["mode"]);
        assert!(matches!(c.place, Place::Key { token: Some((_, _, ref t)) } if t == "lo"));

        let c = context("[feature]\nfs.mode = \"re|\"\n");
        assert_eq!(c.path, keys(&["feature", "fs", "mode"]));
        assert_eq!(
            c.place,
            Place::Value {
                token: Some((20, 24))
            }
        );

        let c = context("[feature]\nnetwork.|\n");
        assert_eq!(c.path, keys(&["feature", "network"]));
        assert_eq!(c.place, Place::Key { token: None });

        let c = context("[feature.n|]\n");
        assert_eq!(c.path, keys(&["feature"]));

        let c = context("[[a]]\nx = 1\n[[a]]\n|");
        assert_eq!(
            c.path,
            vec![KeySegment::Key("a".into()), KeySegment::Index(1)]
        );
        let c = context("|");
        assert!(c.path.is_empty());
    }
}
