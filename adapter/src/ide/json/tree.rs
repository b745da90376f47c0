//! A JSONC parser (JSON with comments and trailing commas, what mirrord's
//! config files and VS Code's `launch.json` are written in) that keeps the
//! byte range of every key and value, so a problem named by key path
//! (`feature.fs.local[2]`) can be marked at the exact place in the editor.

use mirrord_config::KeySegment;
use serde_json::{Map, Number, Value};

use super::lex::{Lexer, Tok, Token};

/// Nesting deeper than this is refused (no stack overflow on hostile input).
const MAX_DEPTH: usize = 128;

/// A value and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<Member>),
}

/// One `"key": value` of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_start: usize,
    pub key_end: usize,
    pub value: Node,
}

/// Why the text is not JSON, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub start: usize,
    pub end: usize,
    pub message: String,
}

/// Parses `text`; `Ok(None)` for a document with no value (only
/// whitespace or comments).
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut parser = Parser {
        tokens: Lexer::new(text),
        peeked: None,
        end: text.len(),
    };
    let Some(first) = parser.next()? else {
        return Ok(None);
    };
    let root = parser.value(first, 0)?;
    match parser.next()? {
        None => Ok(Some(root)),
        Some(extra) => Err(error(
            &extra,
            "unexpected text after the end of the document",
        )),
    }
}

impl Node {
    /// The plain value, as serde_json would have read it.
    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::String(s) => Value::String(s.clone()),
            Kind::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Kind::Object(members) => {
                let mut map = Map::new();
                for m in members {
                    map.insert(m.key.clone(), m.value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The member `key` of an object (the last one, as serde_json keeps).
    pub fn member(&self, key: &str) -> Option<&Member> {
        match &self.kind {
            Kind::Object(members) => members.iter().rev().find(|m| m.key == key),
            _ => None,
        }
    }

    /// The node at `path`, or the deepest one on the way when the path
    /// leaves the tree, with how many steps were followed.
    pub fn find(&self, path: &[KeySegment]) -> (&Node, usize) {
        let mut node = self;
        for (depth, step) in path.iter().enumerate() {
            let next = match (step, &node.kind) {
                (KeySegment::Key(key), Kind::Object(_)) => node.member(key).map(|m| &m.value),
                (KeySegment::Index(i), Kind::Array(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => return (node, depth),
            }
        }
        (node, path.len())
    }
}

fn error(token: &Token, message: &str) -> SyntaxError {
    SyntaxError {
        start: token.start,
        end: token.end,
        message: message.to_owned(),
    }
}

fn describe(tok: &Tok) -> &'static str {
    match tok {
        Tok::LBrace => "\"{\"",
        Tok::RBrace => "\"}\"",
        Tok::LBracket => "\"[\"",
        Tok::RBracket => "\"]\"",
        Tok::Colon => "\":\"",
        Tok::Comma => "\",\"",
        Tok::Str { .. } => "a string",
        Tok::Num(_) => "a number",
        Tok::True | Tok::False => "a boolean",
        Tok::Null => "null",
        Tok::Comment => "a comment",
        Tok::Bad(_) => "invalid text",
    }
}

struct Parser<'a> {
    tokens: Lexer<'a>,
    peeked: Option<Token>,
    end: usize,
}

impl Parser<'_> {
    /// The next meaningful token; comments are skipped.
    fn next(&mut self) -> Result<Option<Token>, SyntaxError> {
        if let Some(t) = self.peeked.take() {
            return Ok(Some(t));
        }
        loop {
            let Some(token) = self.tokens.next() else {
                return Ok(None);
            };
            match &token.tok {
                Tok::Comment => continue,
                Tok::Bad(message) => return Err(error(&token, message)),
                Tok::Str { closed: false, .. } => {
                    return Err(error(&token, "this string has no closing quote"))
                }
                _ => return Ok(Some(token)),
            }
        }
    }

    fn expect_more(&mut self, what: &str) -> Result<Token, SyntaxError> {
        self.next()?.ok_or_else(|| SyntaxError {
            start: self.end,
            end: self.end,
            message: format!("the document ends where {what} was expected"),
        })
    }

    fn value(&mut self, token: Token, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(error(&token, "nested too deeply"));
        }
        let leaf = |kind| {
            Ok(Node {
                start: token.start,
                end: token.end,
                kind,
            })
        };
        match token.tok {
            Tok::Null => leaf(Kind::Null),
            Tok::True => leaf(Kind::Bool(true)),
            Tok::False => leaf(Kind::Bool(false)),
            Tok::Num(ref n) => leaf(Kind::Number(n.clone())),
            Tok::Str { ref value, .. } => leaf(Kind::String(value.clone())),
            Tok::LBrace => self.object(token.start, depth),
            Tok::LBracket => self.array(token.start, depth),
            ref other => Err(error(
                &token,
                &format!("expected a value, found {}", describe(other)),
            )),
        }
    }

    fn object(&mut self, start: usize, depth: usize) -> Result<Node, SyntaxError> {
        let mut members = Vec::new();
        loop {
            let token = self.expect_more("a key or \"}\"")?;
            let (key, key_start, key_end) = match token.tok {
                Tok::RBrace => {
                    return Ok(Node {
                        start,
                        end: token.end,
                        kind: Kind::Object(members),
                    })
                }
                Tok::Str { value, .. } => (value, token.start, token.end),
                ref other => {
                    return Err(error(
                        &token,
                        &format!("expected a key in double quotes, found {}", describe(other)),
                    ))
                }
            };
            let colon = self.expect_more("\":\"")?;
            if colon.tok != Tok::Colon {
                return Err(error(
                    &colon,
                    &format!("expected \":\" after the key \"{key}\""),
                ));
            }
            let first = self.expect_more("a value")?;
            let value = self.value(first, depth + 1)?;
            members.push(Member {
                key,
                key_start,
                key_end,
                value,
            });
            if let Some(end) = self.comma_or(Tok::RBrace, "\"}\"")? {
                return Ok(Node {
                    start,
                    end,
                    kind: Kind::Object(members),
                });
            }
        }
    }

    /// After an item: `,` (`None`: another item follows) or `close`
    /// (`Some(end)`: the container ends there).
    fn comma_or(&mut self, close: Tok, name: &str) -> Result<Option<usize>, SyntaxError> {
        let after = self.expect_more(&format!("\",\" or {name}"))?;
        match after.tok {
            Tok::Comma => Ok(None),
            ref tok if *tok == close => Ok(Some(after.end)),
            ref other => Err(error(
                &after,
                &format!("expected \",\" or {name}, found {}", describe(other)),
            )),
        }
    }

    fn array(&mut self, start: usize, depth: usize) -> Result<Node, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let token = self.expect_more("a value or \"]\"")?;
            match token.tok {
                Tok::RBracket => {
                    return Ok(Node {
                        start,
                        end: token.end,
                        kind: Kind::Array(items),
                    })
                }
                _ => items.push(self.value(token, depth + 1)?),
            }
            if let Some(end) = self.comma_or(Tok::RBracket, "\"]\"")? {
                return Ok(Node {
                    start,
                    end,
                    kind: Kind::Array(items),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mirrord_config::split_key_path;

    use super::*;

    #[test]
    fn keeps_ranges_and_reads_like_serde_json() {
        let text = r#"{"feature": {"fs": {"local": ["^/a", "("]}}, "n": -1.5}"#;
        let root = parse(text).unwrap().unwrap();
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(root.to_value(), expected);
        let (node, depth) = root.find(&split_key_path("feature.fs.local[1]"));
        assert_eq!((depth, &text[node.start..node.end]), (4, "\"(\""));
        let (node, depth) = root.find(&split_key_path("feature.fs.remote[0]"));
        assert_eq!(depth, 2);
        assert!(text[node.start..node.end].starts_with("{\"local\""));
        let member = root.member("n").unwrap();
        assert_eq!(&text[member.key_start..member.key_end], "\"n\"");
    }

    #[test]
    fn errors_point_at_the_offending_token() {
        let rows: &[(&str, (usize, usize), &str)] = &[
            ("{\"a\" 1}", (5, 6), "expected \":\""),
            ("{\"a\": }", (6, 7), "expected a value"),
            ("{\"a\": 1", (7, 7), "the document ends"),
            ("{\"a\": 1} x", (9, 10), "unexpected"),
            ("{\"a\": 'x'}", (6, 7), "unexpected character"),
        ];
        for (text, range, message) in rows {
            let e = parse(text).unwrap_err();
            assert_eq!((e.start, e.end), *range, "{text}: {e:?}");
            assert!(e.message.contains(message), "{text}: {e:?}");
        }
    }

    #[test]
    fn jsonc_allows_comments_and_trailing_commas() {
        let text = "// top\n{\"a\": [1, 2,], /* x */ \"b\": {},}";
        let root = parse(text).unwrap().unwrap();
        assert_eq!(root.to_value(), serde_json::json!({"a": [1, 2], "b": {}}));
        assert_eq!(parse("  // nothing\n"), Ok(None));
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(parse(&text).is_err());
    }
}
