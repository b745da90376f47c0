//! Reading and replacing single integer fields of a JSON message in place,
//! so renumbering `seq` does not re-serialise (and so alter) the rest of a
//! message the proxy otherwise passes through untouched.
//!
//! The input has already been validated as JSON by the framing; still,
//! nothing here indexes out of bounds or panics on any input.

/// The byte range of the value of `path` (keys of nested objects, from the
/// top level), if every key exists and each parent is an object.
pub fn value_span(json: &[u8], path: &[&str]) -> Option<(usize, usize)> {
    let mut start = skip_ws(json, 0);
    let mut end = value_end(json, start)?;
    for key in path {
        (start, end) = member_span(json, start, end, key)?;
    }
    Some((start, end))
}

/// The integer at `path`, if it is one.
pub fn get_int(json: &[u8], path: &[&str]) -> Option<i64> {
    let (start, end) = value_span(json, path)?;
    std::str::from_utf8(json.get(start..end)?)
        .ok()?
        .parse()
        .ok()
}

/// `json` with the integer at `path` replaced by `value`; `None` when the
/// field is absent or not an integer.
pub fn set_int(json: &[u8], path: &[&str], value: i64) -> Option<Vec<u8>> {
    let (start, end) = value_span(json, path)?;
    std::str::from_utf8(json.get(start..end)?)
        .ok()?
        .parse::<i64>()
        .ok()?;
    let text = value.to_string();
    let mut out = Vec::with_capacity(json.len() + text.len());
    out.extend_from_slice(&json[..start]);
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&json[end..]);
    Some(out)
}

/// The value span of `key` inside the object spanning `start..end`.
fn member_span(json: &[u8], start: usize, end: usize, key: &str) -> Option<(usize, usize)> {
    if json.get(start) != Some(&b'{') {
        return None;
    }
    let mut at = skip_ws(json, start + 1);
    while at < end {
        if json.get(at) == Some(&b'}') {
            return None;
        }
        let key_end = string_end(json, at)?;
        let name = json.get(at..key_end)?;
        at = skip_ws(json, key_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(json, at + 1);
        let value_end = value_end(json, value_start)?;
        if key_matches(name, key) {
            return Some((value_start, value_end));
        }
        at = skip_ws(json, value_end);
        match json.get(at) {
            Some(b',') => at = skip_ws(json, at + 1),
            _ => return None,
        }
    }
    None
}

/// Whether the quoted JSON string `raw` (quotes included) is `key`.
fn key_matches(raw: &[u8], key: &str) -> bool {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains(&b'\\') {
        return inner == key.as_bytes();
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|decoded| decoded == key)
}

fn skip_ws(json: &[u8], mut at: usize) -> usize {
    while json.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// One past the closing quote of the string starting at `at`.
fn string_end(json: &[u8], at: usize) -> Option<usize> {
    if json.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// One past the end of the value starting at `at`.
fn value_end(json: &[u8], at: usize) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        br#" { "type" : "event", "body": {"s": "a\"}seq", "requestId": 7, "x": [1, {"seq": 9}]},
        "se\u0071": 42 , "tail": "\u00e9" } "#;

    #[test]
    fn finds_and_replaces_only_the_named_field() {
        assert_eq!(get_int(MSG, &["seq"]), Some(42));
        assert_eq!(get_int(MSG, &["body", "requestId"]), Some(7));
        assert_eq!(get_int(MSG, &["type"]), None);
        assert_eq!(get_int(MSG, &["missing"]), None);
        assert_eq!(get_int(MSG, &["body", "x", "seq"]), None);

        let out = set_int(MSG, &["seq"], 1234).unwrap();
        let expected = String::from_utf8_lossy(MSG).replace("42", "1234");
        assert_eq!(String::from_utf8_lossy(&out), expected);
        let out = set_int(&out, &["body", "requestId"], 3).unwrap();
        assert_eq!(get_int(&out, &["body", "requestId"]), Some(3));
        assert_eq!(get_int(&out, &["seq"]), Some(1234));
        assert!(set_int(MSG, &["type"], 1).is_none());
    }

    #[test]
    fn never_panics_on_bad_input() {
        let inputs: &[&[u8]] = &[
            b"",
            b"{",
            b"{\"",
            b"{\"seq\"",
            b"{\"seq\":",
            b"{\"seq\":}",
            b"\"",
            b"[",
            b"{]",
            b"{\"a\":\"\\",
            b"}",
            b"{\"seq\":1,",
            b"{\"seq\" 1}",
        ];
        for input in inputs {
            let _ = get_int(input, &["seq"]);
            let _ = set_int(input, &["seq"], 5);
            let _ = value_span(input, &["a", "b"]);
        }
    }
}
