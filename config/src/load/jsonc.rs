//! JSON with comments (`//`, `/* */`) and trailing commas, as VS Code
//! writes it, turned into strict JSON for `serde_json` by blanking every
//! comment byte and every trailing comma with a space. Newlines stay, so
//! every byte keeps its offset, line and column: the strict parser's errors
//! point into the text the user wrote.

use std::borrow::Cow;

/// A comment that never ends; the only thing this pass itself refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnclosedComment {
    /// Byte offset of the comment's `/*`.
    pub offset: usize,
}

/// `text` with comments and trailing commas blanked; borrowed when there
/// were none.
pub(crate) fn to_strict(text: &str) -> Result<Cow<'_, str>, UnclosedComment> {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'/' | b',')) {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = bytes.to_vec();
    let mut changed = false;
    // The comma last seen outside strings and comments, until the next
    // significant byte tells whether it trails a list.
    let mut pending_comma: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                pending_comma = None;
                i = string_end(bytes, i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| i + n);
                blank(&mut out, i, end);
                changed = true;
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map(|n| i + 2 + n + 2)
                    .ok_or(UnclosedComment { offset: i })?;
                blank(&mut out, i, end);
                changed = true;
                i = end;
            }
            b',' => {
                pending_comma = Some(i);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    out[comma] = b' ';
                    changed = true;
                }
                i += 1;
            }
            b if b.is_ascii_whitespace() => i += 1,
            _ => {
                pending_comma = None;
                i += 1;
            }
        }
    }
    if !changed {
        return Ok(Cow::Borrowed(text));
    }
    // Only ASCII bytes were replaced, and only whole comments (which
    // start and end on ASCII bytes) or commas: still UTF-8.
    Ok(Cow::Owned(String::from_utf8(out).unwrap_or_else(|e| {
        String::from_utf8_lossy(e.as_bytes()).into()
    })))
}

/// The offset just past the string starting at `start` (its opening
/// quote), or the end of the text for an unterminated string (the strict
/// parser then reports it).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Spaces over `out[start..end]`, keeping line breaks.
fn blank(out: &mut [u8], start: usize, end: usize) {
    for b in &mut out[start..end] {
        if !matches!(*b, b'\n' | b'\r') {
            *b = b' ';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(text: &str) -> String {
        to_strict(text)
            .map(Cow::into_owned)
            .unwrap_or_else(|e| format!("unclosed at {}", e.offset))
    }

    #[test]
    fn comments_and_trailing_commas_become_spaces() {
        assert_eq!(
            strict("{\"a\": 1, // one\n}"),
            format!("{{\"a\": 1{}\n}}", " ".repeat(8))
        );
        assert_eq!(strict("[1, /* x\ny */ 2,]"), "[1,     \n     2 ]");
        assert_eq!(
            strict("{\"a\": [1,\n// end\n],\n}"),
            "{\"a\": [1 \n      \n] \n}"
        );
    }

    #[test]
    fn strings_are_left_alone() {
        for text in [
            r#"{"url": "http://x/*y*/", "b": "a,]"}"#,
            r#"{"q": "say \"//hi\",}"}"#,
            "{\"a\": 1}",
        ] {
            assert!(matches!(to_strict(text), Ok(Cow::Borrowed(_))), "{text}");
        }
    }

    #[test]
    fn offsets_and_non_ascii_survive() {
        let text = "{\n  // é ü\n  \"ä\": 1, /* ö */\n}";
        let out = strict(text);
        assert_eq!(out.len(), text.len());
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(out.contains("\"ä\": 1 "), "{out:?}");
    }

    #[test]
    fn an_unclosed_comment_is_refused_at_its_start() {
        assert_eq!(strict("{\"a\": 1 /* never"), "unclosed at 8");
        // A comma before a value is not trailing; nor a lone `/`.
        assert_eq!(strict("[1, 2]"), "[1, 2]");
        assert_eq!(strict("[1 / 2]"), "[1 / 2]");
    }
}
