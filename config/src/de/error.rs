//! A structured serde error, so messages can name the bad value and the
//! allowed ones in our own words instead of serde's backtick-quoted text.

use std::fmt;

use serde::de::{Expected, Unexpected};

/// An error raised while deserializing a config tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeError {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    InvalidType {
        found: String,
        expected: String,
    },
    InvalidValue {
        found: String,
        expected: String,
    },
    MissingField(&'static str),
    Custom(String),
}

impl DeError {
    /// The message for this error at `parent`, the key path of the map that
    /// holds the offending key (only unknown keys need it).
    pub(crate) fn message(&self, parent: &str) -> String {
        match self {
            DeError::UnknownField { field, expected } => {
                let place = if parent.is_empty() {
                    " at the top level"
                } else {
                    ""
                };
                format!(
                    "unknown key \"{field}\"{place}; known keys: {}{}",
                    expected.join(", "),
                    suggestion(field, expected)
                )
            }
            DeError::UnknownVariant { variant, expected } => format!(
                "unknown variant \"{variant}\", expected one of {}{}",
                expected.join(", "),
                suggestion(variant, expected)
            ),
            DeError::InvalidType { found, expected } => {
                format!("invalid type: found {found}, expected {expected}")
            }
            DeError::InvalidValue { found, expected } => {
                format!("invalid value: found {found}, expected {expected}")
            }
            DeError::MissingField(field) => format!("missing key \"{field}\""),
            DeError::Custom(message) => message.clone(),
        }
    }

    /// Whether the error is about a key rather than the value under it.
    pub(crate) fn is_unknown_key(&self) -> bool {
        matches!(self, DeError::UnknownField { .. })
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("?"))
    }
}

impl std::error::Error for DeError {}

impl serde::de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Custom(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::InvalidType {
            found: describe(&unexp),
            expected: expected(exp),
        }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::InvalidValue {
            found: describe(&unexp),
            expected: expected(exp),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::UnknownField {
            field: field.to_owned(),
            expected,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::MissingField(field)
    }
}

/// Describes a found value the way users write it: `string "x"`, `integer 3`.
fn describe(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("boolean {b}"),
        Unexpected::Unsigned(n) => format!("integer {n}"),
        Unexpected::Signed(n) => format!("integer {n}"),
        Unexpected::Float(n) => format!("number {n}"),
        Unexpected::Str(s) => format!("string \"{s}\""),
        Unexpected::Unit => "null".to_owned(),
        Unexpected::Map => "a map".to_owned(),
        Unexpected::Seq => "a list".to_owned(),
        other => other.to_string().replace('`', "\""),
    }
}

/// Rewrites serde's `struct FsConfig`, `a sequence`, `u64` into words a user knows.
fn expected(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    match text.as_str() {
        _ if text.starts_with("struct ") => "a map of keys".to_owned(),
        "a sequence" => "a list".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of at least 0".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        _ => text.replace('`', "\""),
    }
}

/// ` (did you mean "x"?)` when one allowed name is a small edit away.
fn suggestion(bad: &str, allowed: &[&str]) -> String {
    // Short names get one edit of slack, longer ones two.
    let slack = if bad.chars().count() <= 4 { 1 } else { 2 };
    allowed
        .iter()
        .map(|candidate| (edit_distance(&bad.to_lowercase(), candidate), candidate))
        .filter(|(distance, _)| *distance > 0 && *distance <= slack)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| format!(" (did you mean \"{candidate}\"?)"))
        .unwrap_or_default()
}

/// Edit distance where swapping two neighbours counts as one edit ("raed" -> "read").
/// Also used for "did you mean" on Kubernetes names in the CLI.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        let allowed = &["target", "feature", "agent"];
        assert_eq!(
            suggestion("feture", allowed),
            " (did you mean \"feature\"?)"
        );
        assert_eq!(suggestion("zzzzzz", allowed), "");
        assert_eq!(suggestion("agent", allowed), "");
        assert_eq!(
            suggestion("raed", &["local", "read", "write"]),
            " (did you mean \"read\"?)"
        );
        assert_eq!(suggestion("bad", &["local", "read", "write"]), "");
    }
}
