//! Small text helpers for the line-oriented formats (TOML, YAML) whose
//! half-written documents the cursor context is read from line by line.

/// The byte range of the line holding `offset` (without its `\n`).
pub fn line_at(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    (start, end)
}

/// A character a bare key is written with (TOML bare keys, the YAML keys
/// of mirrord's config).
pub fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The key-like word around `offset` (touching it on either side): its
/// byte range and text.
pub fn word_around(text: &str, offset: usize) -> Option<(usize, usize, String)> {
    let offset = offset.min(text.len());
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_key_char(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !is_key_char(*c))
        .map_or(text.len(), |(i, _)| offset + i);
    (start < end).then(|| (start, end, text[start..end].to_owned()))
}

/// A key as written, without its quotes.
pub fn unquote(key: &str) -> String {
    let key = key.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = key.strip_prefix(quote).and_then(|k| k.strip_suffix(quote)) {
            return inner.to_owned();
        }
    }
    key.to_owned()
}

/// The range of a value written from `from` to `end` on one line, without
/// surrounding blanks and a trailing `#` comment; `None` when empty.
pub fn value_span(text: &str, from: usize, end: usize) -> Option<(usize, usize)> {
    let raw = &text[from..end];
    let mut in_quote = None;
    let mut cut = raw.len();
    for (i, c) in raw.char_indices() {
        match (in_quote, c) {
            (None, '"' | '\'') => in_quote = Some(c),
            (Some(q), _) if c == q => in_quote = None,
            (None, '#') if i == 0 || raw[..i].ends_with([' ', '\t']) => {
                cut = i;
                break;
            }
            _ => {}
        }
    }
    let value = &raw[..cut];
    let start = from + (value.len() - value.trim_start().len());
    let stop = from + value.trim_end().len();
    (start < stop).then_some((start, stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lines_and_values() {
        let text = "a = 1\nfs.mo = \"read\" # c\n";
        assert_eq!(line_at(text, 8), (6, 24));
        assert_eq!(word_around(text, 11), Some((9, 11, "mo".into())));
        assert_eq!(word_around(text, 2), None);
        assert_eq!(value_span(text, 13, 24), Some((14, 20)));
        assert_eq!(value_span(text, 13, 14), None);
        assert_eq!(unquote(" 'a b' "), "a b");
    }
}
