//! Where a cursor is in a JSON document that may be half written: the key
//! path around it and whether a key or a value goes there, for completion
//! and hover. It reads tokens up to the cursor and never fails.

use mirrord_config::KeySegment;

use super::lex::{Lexer, Tok};

/// What the cursor is on.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    /// A key of the object at `path`: `token` is the string under the
    /// cursor (its range and text), if any.
    Key {
        token: Option<(usize, usize, String)>,
    },
    /// The value at `path`: `token` is the range of the value under the
    /// cursor, if any.
    Value { token: Option<(usize, usize)> },
    /// Nowhere completion can help (between a value and its comma, outside
    /// the document).
    Nothing,
}

/// The cursor's surroundings.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// For a key: the object's path; for a value: the value's path.
    pub path: Vec<KeySegment>,
    pub place: Place,
    /// The keys already written in the object (for a key place).
    pub siblings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Key,
    Colon,
    Value,
    Comma,
}

#[derive(Debug)]
enum Frame {
    Object {
        key: Option<String>,
        keys: Vec<String>,
        state: Expect,
    },
    Array {
        index: usize,
        state: Expect,
    },
}

impl Frame {
    fn state_mut(&mut self) -> &mut Expect {
        match self {
            Frame::Object { state, .. } | Frame::Array { state, .. } => state,
        }
    }
}

/// The context at byte `offset` of `text`.
pub fn at(text: &str, offset: usize) -> Context {
    let mut stack: Vec<Frame> = Vec::new();
    for token in Lexer::new(text) {
        if token.start >= offset {
            break;
        }
        let open_ended = matches!(token.tok, Tok::Str { closed: false, .. } | Tok::Bad(_));
        let under_cursor = offset < token.end || (offset == token.end && open_ended);
        if under_cursor {
            return describe(&stack, Some((token.tok, token.start, token.end)));
        }
        match token.tok {
            Tok::LBrace | Tok::LBracket => {
                if let Some(parent) = stack.last_mut() {
                    *parent.state_mut() = Expect::Comma;
                }
                stack.push(if token.tok == Tok::LBrace {
                    Frame::Object {
                        key: None,
                        keys: Vec::new(),
                        state: Expect::Key,
                    }
                } else {
                    Frame::Array {
                        index: 0,
                        state: Expect::Value,
                    }
                });
            }
            Tok::RBrace | Tok::RBracket => {
                stack.pop();
            }
            Tok::Colon => {
                if let Some(Frame::Object { state, .. }) = stack.last_mut() {
                    *state = Expect::Value;
                }
            }
            Tok::Comma => match stack.last_mut() {
                Some(Frame::Object { key, state, .. }) => {
                    *key = None;
                    *state = Expect::Key;
                }
                Some(Frame::Array { index, state }) => {
                    *index += 1;
                    *state = Expect::Value;
                }
                None => {}
            },
            Tok::Str { value, .. } => match stack.last_mut() {
                Some(Frame::Object {
                    key, keys, state, ..
                }) if *state == Expect::Key => {
                    keys.push(value.clone());
                    *key = Some(value);
                    *state = Expect::Colon;
                }
                Some(frame) => *frame.state_mut() = Expect::Comma,
                None => {}
            },
            Tok::Comment => {}
            _ => {
                if let Some(frame) = stack.last_mut() {
                    *frame.state_mut() = Expect::Comma;
                }
            }
        }
    }
    describe(&stack, None)
}

/// The path of the innermost frame's parent chain (each frame's current
/// key or index), without the innermost frame's own step.
fn parents(stack: &[Frame]) -> Vec<KeySegment> {
    let Some((_, outer)) = stack.split_last() else {
        return Vec::new();
    };
    outer.iter().filter_map(step).collect()
}

fn step(frame: &Frame) -> Option<KeySegment> {
    match frame {
        Frame::Object { key, .. } => key.clone().map(KeySegment::Key),
        Frame::Array { index, .. } => Some(KeySegment::Index(*index)),
    }
}

fn siblings(stack: &[Frame]) -> Vec<String> {
    match stack.last() {
        Some(Frame::Object { keys, .. }) => keys.clone(),
        _ => Vec::new(),
    }
}

/// The context given the frames so far and the token under the cursor
/// (`None`: the cursor is between tokens).
fn describe(stack: &[Frame], token: Option<(Tok, usize, usize)>) -> Context {
    let Some(top) = stack.last() else {
        return nothing();
    };
    let mut path = parents(stack);
    let (expect, is_object) = match top {
        Frame::Object { state, .. } => (*state, true),
        Frame::Array { state, .. } => (*state, false),
    };
    let place = match (expect, token) {
        (Expect::Key, None) if is_object => Place::Key { token: None },
        (Expect::Key, Some((Tok::Str { value, .. }, start, end))) if is_object => Place::Key {
            token: Some((start, end, value)),
        },
        (Expect::Value, None) => Place::Value { token: None },
        (
            Expect::Value,
            Some((
                Tok::Str { .. } | Tok::Num(_) | Tok::True | Tok::False | Tok::Null | Tok::Bad(_),
                start,
                end,
            )),
        ) => Place::Value {
            token: Some((start, end)),
        },
        _ => return nothing(),
    };
    let siblings = match place {
        Place::Key { .. } => siblings(stack),
        _ => {
            path.extend(step(top));
            Vec::new()
        }
    };
    Context {
        path,
        place,
        siblings,
    }
}

fn nothing() -> Context {
    Context {
        path: Vec::new(),
        place: Place::Nothing,
        siblings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use mirrord_config::split_key_path;

    use super::*;

    /// `|` marks the cursor.
    fn check(marked: &str, path: &str, place: Place) {
        let offset = marked.find('|').unwrap();
        let text = marked.replace('|', "");
        let context = at(&text, offset);
        assert_eq!(
            (context.path, context.place),
            (split_key_path(path), place),
            "{marked}"
        );
    }

    #[test]
    fn keys_values_and_paths() {
        check("{|}", "", Place::Key { token: None });
        check(
            r#"{"feature": {"fs": {"mode": |}}}"#,
            "feature.fs.mode",
            Place::Value { token: None },
        );
        check(
            r#"{"feature": {"fs": {"mo|"#,
            "feature.fs",
            Place::Key {
                token: Some((20, 23, "mo".into())),
            },
        );
        check(
            r#"{"feature": {"fs": {"mode": "re|"}}}"#,
            "feature.fs.mode",
            Place::Value {
                token: Some((28, 32)),
            },
        );
        check(
            r#"{"a": [1, {"b": 2}, |"#,
            "a[2]",
            Place::Value { token: None },
        );
        check(
            r#"{"a": [1, {"b": 2}, {|"#,
            "a[2]",
            Place::Key { token: None },
        );
        check(r#"{"a": 1 |}"#, "", Place::Nothing);
        check("// c\n{\"x\": 1, |", "", Place::Key { token: None });
        check(r#"|{}"#, "", Place::Nothing);
    }

    #[test]
    fn siblings_are_the_keys_already_written() {
        let text = r#"{"target": "pid/1", "agent": {}, "#;
        let context = at(text, text.len());
        assert_eq!(context.siblings, vec!["target", "agent"]);
    }
}
