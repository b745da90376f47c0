//! One pass over a message body that both checks it is one valid JSON
//! object (RFC 8259: strings, escapes, numbers, literals, nesting, nothing
//! after the object) and picks out the top-level fields the proxy routes
//! by, without building any value: most messages are forwarded as they
//! came, so a full parse of them would be wasted.

use super::message::Envelope;

/// Nesting deeper than this is refused, as `serde_json` (which parses the
/// messages the proxy rewrites) refuses it.
const MAX_DEPTH: usize = 128;

/// Why a body is not one JSON object, with the byte offset.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub what: &'static str,
    pub at: usize,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// The routing fields found at the top level, as byte spans of their
/// values.
#[derive(Default)]
struct Spans {
    seq: Option<(usize, usize)>,
    kind: Option<(usize, usize)>,
    command: Option<(usize, usize)>,
    event: Option<(usize, usize)>,
    request_seq: Option<(usize, usize)>,
    /// A routing field appeared twice: the message is passed on without
    /// routing, as one whose fields have unexpected types.
    duplicate: bool,
}

/// Checks `body` and reads its routing fields: `Ok(None)` for a valid
/// object whose routing fields have unexpected types (or repeat).
pub fn envelope(body: &[u8]) -> Result<Option<Envelope>, Invalid> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(Invalid {
            what: "invalid UTF-8",
            at: e.valid_up_to(),
        });
    }
    let mut scanner = Scanner { b: body, i: 0 };
    scanner.ws();
    if scanner.peek() != Some(b'{') {
        return Err(scanner.invalid("expected an object"));
    }
    let spans = scanner.top_object()?;
    scanner.ws();
    if scanner.i != body.len() {
        return Err(scanner.invalid("trailing characters after the object"));
    }
    if spans.duplicate {
        return Ok(None);
    }
    Ok(build(body, &spans))
}

fn build(body: &[u8], spans: &Spans) -> Option<Envelope> {
    Some(Envelope {
        seq: int_field(body, spans.seq)?,
        kind: string_field(body, spans.kind)?,
        command: string_field(body, spans.command)?,
        event: string_field(body, spans.event)?,
        request_seq: int_field(body, spans.request_seq)?,
    })
}

/// An absent or `null` field is `Some(None)`; an integer that fits `i64`
/// is `Some(Some(n))`; anything else is `None` (unexpected type).
fn int_field(body: &[u8], span: Option<(usize, usize)>) -> Option<Option<i64>> {
    let Some((start, end)) = span else {
        return Some(None);
    };
    let raw = body.get(start..end)?;
    if raw == b"null" {
        return Some(None);
    }
    // The scan checked the number's grammar; a fraction or an exponent
    // makes it a float, which is not a sequence number.
    let text = std::str::from_utf8(raw).ok()?;
    text.parse::<i64>().ok().map(Some)
}

/// As [`int_field`], for strings (escapes decoded).
fn string_field(body: &[u8], span: Option<(usize, usize)>) -> Option<Option<String>> {
    let Some((start, end)) = span else {
        return Some(None);
    };
    let raw = body.get(start..end)?;
    if raw == b"null" {
        return Some(None);
    }
    if raw.first() != Some(&b'"') || raw.len() < 2 {
        return None;
    }
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(|s| Some(s.to_owned()));
    }
    serde_json::from_slice::<String>(raw).ok().map(Some)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn invalid(&self, what: &'static str) -> Invalid {
        Invalid { what, at: self.i }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Invalid> {
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.invalid(what))
        }
    }

    /// The top-level object, noting where the routing fields' values are.
    fn top_object(&mut self) -> Result<Spans, Invalid> {
        let mut spans = Spans::default();
        self.sequence(b'}', "expected `,` or `}` in an object", |scanner| {
            let (key, span) = scanner.member(1)?;
            let slot = match routing_key(key) {
                Some(Field::Seq) => &mut spans.seq,
                Some(Field::Kind) => &mut spans.kind,
                Some(Field::Command) => &mut spans.command,
                Some(Field::Event) => &mut spans.event,
                Some(Field::RequestSeq) => &mut spans.request_seq,
                None => return Ok(()),
            };
            spans.duplicate |= slot.replace(span).is_some();
            Ok(())
        })?;
        Ok(spans)
    }

    fn value(&mut self, depth: usize) -> Result<(), Invalid> {
        match self.peek() {
            Some(b'"') => self.string(),
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.invalid("expected a value")),
            None => Err(self.invalid("the body ends inside a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Invalid> {
        if depth > MAX_DEPTH {
            return Err(self.invalid("nested too deep"));
        }
        self.sequence(b'}', "expected `,` or `}` in an object", |scanner| {
            scanner.member(depth).map(drop)
        })
    }

    fn array(&mut self, depth: usize) -> Result<(), Invalid> {
        if depth > MAX_DEPTH {
            return Err(self.invalid("nested too deep"));
        }
        self.sequence(b']', "expected `,` or `]` in an array", |scanner| {
            scanner.value(depth)
        })
    }

    /// The items of an object or array from its opening bracket through
    /// `close`, each read by `item`, separated by commas.
    fn sequence(
        &mut self,
        close: u8,
        what: &'static str,
        mut item: impl FnMut(&mut Self) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        self.i += 1; // the opening bracket
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(());
        }
        loop {
            item(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.invalid(what)),
            }
        }
    }

    /// One `"key": value` member of an object: the key's raw bytes (quotes
    /// included) and the value's span.
    fn member(&mut self, depth: usize) -> Result<(&'a [u8], (usize, usize)), Invalid> {
        let key_start = self.i;
        self.string()?;
        let key = &self.b[key_start..self.i];
        self.ws();
        self.expect(b':', "expected `:` after an object key")?;
        self.ws();
        let value_start = self.i;
        self.value(depth)?;
        Ok((key, (value_start, self.i)))
    }

    /// A string: no raw control characters, only JSON's escapes. (The
    /// whole body was checked as UTF-8 before.)
    fn string(&mut self) -> Result<(), Invalid> {
        self.expect(b'"', "expected a string")?;
        loop {
            // The common run of plain characters, in one tight loop.
            let rest = &self.b[self.i..];
            let plain = rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(Invalid {
                    what: "the body ends inside a string",
                    at: self.b.len(),
                })?;
            self.i += plain;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.invalid("`\\u` needs four hex digits"));
                            }
                            self.i += 5;
                        }
                        _ => return Err(self.invalid("unknown escape in a string")),
                    }
                }
                _ => return Err(self.invalid("control character in a string")),
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Invalid> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.invalid("expected `true`, `false` or `null`"))
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Invalid> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.invalid("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.invalid("expected a digit after `.`"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.invalid("expected a digit in the exponent"));
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }
}

enum Field {
    Seq,
    Kind,
    Command,
    Event,
    RequestSeq,
}

/// Which routing field the quoted key `raw` names (escapes decoded).
fn routing_key(raw: &[u8]) -> Option<Field> {
    let inner = &raw[1..raw.len() - 1];
    let decoded;
    let name: &[u8] = if inner.contains(&b'\\') {
        decoded = serde_json::from_slice::<String>(raw).ok()?;
        decoded.as_bytes()
    } else {
        inner
    };
    match name {
        b"seq" => Some(Field::Seq),
        b"type" => Some(Field::Kind),
        b"command" => Some(Field::Command),
        b"event" => Some(Field::Event),
        b"request_seq" => Some(Field::RequestSeq),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_routing_fields_of_valid_objects() {
        let e = envelope(
            br#" {"seq":3,"type":"response","request_seq":-2,"command":"la\u0075nch","body":{"seq":9,"s":"\"}"},"x":[1.5e-3,true,null,{}]} "#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                e.seq,
                e.request_seq,
                e.kind.as_deref(),
                e.command.as_deref()
            ),
            (Some(3), Some(-2), Some("response"), Some("launch"))
        );
        let e = envelope(br#"{"se\u0071":4,"event":null}"#)
            .unwrap()
            .unwrap();
        assert_eq!((e.seq, e.event), (Some(4), None));
        let e = envelope(b"{}").unwrap().unwrap();
        assert!(e.seq.is_none() && e.kind.is_none());
    }

    #[test]
    fn routing_fields_of_other_types_leave_the_message_unrouted() {
        for body in [
            &br#"{"seq":"1"}"#[..],
            br#"{"seq":1.0}"#,
            br#"{"seq":1e2}"#,
            br#"{"seq":99999999999999999999}"#,
            br#"{"type":7}"#,
            br#"{"command":["x"]}"#,
            br#"{"seq":1,"seq":2}"#,
            br#"{"event":"\ud800"}"#,
        ] {
            assert!(
                envelope(body).unwrap().is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn agrees_with_serde_json_on_what_is_valid() {
        let cases: &[&[u8]] = &[
            b"{}",
            b" { } ",
            br#"{"a":[]}"#,
            br#"{"a":[1,2,]}"#,
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{"a":01}"#,
            br#"{"a":-0}"#,
            br#"{"a":-}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":1e}"#,
            br#"{"a":1E+9}"#,
            br#"{"a":tru}"#,
            br#"{"a":nul}"#,
            br#"{"a":"\x"}"#,
            br#"{"a":"\u12"}"#,
            br#"{"a":"\u12G4"}"#,
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":\"\xc3\xa9\"}",
            b"{\"a\":\"\xff\"}",
            br#"{"a":"unterminated}"#,
            br#"{"a":{"b":[{"c":null}]}}"#,
            br#"{"a":1}}"#,
            br#"{"a":1} x"#,
            br#"{1:2}"#,
            br#"{"a":+1}"#,
            br#"{"a":[}"#,
            b"[]",
            b"\"x\"",
            b"",
            b"{",
        ];
        for case in cases {
            let ours = envelope(case).is_ok();
            let theirs =
                serde_json::from_slice::<serde_json::Value>(case).is_ok_and(|v| v.is_object());
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(case));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(envelope(deep.as_bytes()).is_err());
        let fine = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(envelope(fine.as_bytes()).is_ok());
    }
}
