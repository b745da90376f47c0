//! The tokens of JSON and JSONC (JSON with `//` and `/* */` comments), each
//! with its byte range in the text, for the span-keeping parser and the
//! cursor-context scanner.

use serde_json::Number;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    Comma,
    /// A string, decoded; `closed` is false when the line or text ended first.
    Str {
        value: String,
        closed: bool,
    },
    Num(Number),
    True,
    False,
    Null,
    Comment,
    /// Something that is not JSON, with what is wrong.
    Bad(String),
}

/// A token and its byte range `start..end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

/// Splits a text into tokens, skipping whitespace.
pub struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn token(&mut self, start: usize, end: usize, tok: Tok) -> Token {
        self.pos = end;
        Token { tok, start, end }
    }

    fn string(&mut self, start: usize) -> Token {
        let mut value = String::new();
        let mut chars = self.text[start + 1..].char_indices();
        let at = |i: usize| start + 1 + i;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    return self.token(
                        start,
                        at(i) + 1,
                        Tok::Str {
                            value,
                            closed: true,
                        },
                    )
                }
                '\n' => {
                    return self.token(
                        start,
                        at(i),
                        Tok::Str {
                            value,
                            closed: false,
                        },
                    )
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, 't')) => value.push('\t'),
                    Some((_, 'r')) => value.push('\r'),
                    Some((_, 'b')) => value.push('\u{8}'),
                    Some((_, 'f')) => value.push('\u{c}'),
                    Some((_, '/')) => value.push('/'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((j, 'u')) => match self.text.get(at(j) + 1..at(j) + 5) {
                        Some(hex) if hex.chars().all(|h| h.is_ascii_hexdigit()) => {
                            let code = u32::from_str_radix(hex, 16).unwrap_or(0xfffd);
                            value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                            for _ in 0..4 {
                                chars.next();
                            }
                        }
                        _ => {
                            return self.token(
                                at(j) - 1,
                                (at(j) + 1).min(self.text.len()),
                                Tok::Bad("\\u must be followed by four hex digits".into()),
                            )
                        }
                    },
                    Some((j, other)) => {
                        return self.token(
                            at(j) - 1,
                            at(j) + other.len_utf8(),
                            Tok::Bad(format!("invalid escape \\{other} in a string")),
                        )
                    }
                    None => break,
                },
                c => value.push(c),
            }
        }
        let end = self.text.len();
        self.token(
            start,
            end,
            Tok::Str {
                value,
                closed: false,
            },
        )
    }

    fn word(&mut self, start: usize) -> Token {
        let len = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '+' | '-' | '.' | '_')))
            .unwrap_or(self.rest().len());
        let word = &self.rest()[..len];
        let tok = match word {
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            w if w.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                match valid_number(w).then(|| w.parse::<Number>().ok()).flatten() {
                    Some(n) => Tok::Num(n),
                    None => Tok::Bad(format!("\"{w}\" is not a valid number")),
                }
            }
            w => Tok::Bad(format!(
                "unexpected \"{w}\": strings need double quotes; the other words are true, false and null"
            )),
        };
        self.token(start, start + len, tok)
    }

    fn comment(&mut self, start: usize) -> Token {
        let rest = self.rest();
        if rest.starts_with("//") {
            let len = rest.find('\n').unwrap_or(rest.len());
            return self.token(start, start + len, Tok::Comment);
        }
        match rest[2..].find("*/") {
            Some(end) => self.token(start, start + 2 + end + 2, Tok::Comment),
            None => self.token(
                start,
                self.text.len(),
                Tok::Bad("unterminated /* comment".into()),
            ),
        }
    }
}

/// JSON's number grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`.
fn valid_number(w: &str) -> bool {
    let digits = |s: &str| s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let s = w.strip_prefix('-').unwrap_or(w);
    let int = digits(s);
    if int == 0 || (int > 1 && s.starts_with('0')) {
        return false;
    }
    let mut s = &s[int..];
    if let Some(frac) = s.strip_prefix('.') {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        s = &frac[n..];
    }
    if let Some(exp) = s.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        s = &exp[n..];
    }
    s.is_empty()
}

impl Iterator for Lexer<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let skipped = self.rest().len() - self.rest().trim_start().len();
        self.pos += skipped;
        let start = self.pos;
        let c = self.rest().chars().next()?;
        let simple = |tok| Some((tok, 1));
        let punct = match c {
            '{' => simple(Tok::LBrace),
            '}' => simple(Tok::RBrace),
            '[' => simple(Tok::LBracket),
            ']' => simple(Tok::RBracket),
            ':' => simple(Tok::Colon),
            ',' => simple(Tok::Comma),
            _ => None,
        };
        Some(match punct {
            Some((tok, len)) => self.token(start, start + len, tok),
            None if c == '"' => self.string(start),
            None if self.rest().starts_with("//") || self.rest().starts_with("/*") => {
                self.comment(start)
            }
            None if c.is_alphanumeric() || c == '-' => self.word(start),
            None => self.token(
                start,
                start + c.len_utf8(),
                Tok::Bad(format!("unexpected character {c:?}")),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<(Tok, usize, usize)> {
        Lexer::new(text).map(|t| (t.tok, t.start, t.end)).collect()
    }

    #[test]
    fn tokens_carry_byte_ranges() {
        let s = |v: &str| Tok::Str {
            value: v.into(),
            closed: true,
        };
        assert_eq!(
            toks(r#"{"a": [1, true]} // x"#),
            vec![
                (Tok::LBrace, 0, 1),
                (s("a"), 1, 4),
                (Tok::Colon, 4, 5),
                (Tok::LBracket, 6, 7),
                (Tok::Num(1.into()), 7, 8),
                (Tok::Comma, 8, 9),
                (Tok::True, 10, 14),
                (Tok::RBracket, 14, 15),
                (Tok::RBrace, 15, 16),
                (Tok::Comment, 17, 21),
            ]
        );
        assert_eq!(toks(r#""a\"\u00e9""#), vec![(s("a\"é"), 0, 11)]);
    }

    #[test]
    fn bad_input_becomes_bad_tokens() {
        let bad = |text: &str| {
            toks(text)
                .into_iter()
                .find(|(t, _, _)| matches!(t, Tok::Bad(_)))
                .map(|(_, s, e)| (s, e))
        };
        assert_eq!(bad("01"), Some((0, 2)));
        assert_eq!(bad("1."), Some((0, 2)));
        assert_eq!(bad(" yes"), Some((1, 4)));
        assert_eq!(bad(r#""a\q""#), Some((2, 4)));
        assert_eq!(bad("/* x"), Some((0, 4)));
        assert_eq!(bad("-1.5e+3"), None);
        assert_eq!(
            toks("\"ab\n"),
            vec![(
                Tok::Str {
                    value: "ab".into(),
                    closed: false
                },
                0,
                3
            )]
        );
    }
}
