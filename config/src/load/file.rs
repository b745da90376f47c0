//! Reading a config file (JSON with comments and trailing commas, TOML or
//! YAML, by extension) into a JSON tree, with syntax errors that name the
//! file, line and column.

use std::path::Path;

use serde_json::Value;

use crate::error::ConfigError;

/// The formats a config file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Toml,
    Yaml,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, ConfigError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("json") => Ok(Format::Json),
            Some("toml") => Ok(Format::Toml),
            Some("yaml" | "yml") => Ok(Format::Yaml),
            _ => Err(ConfigError::UnknownFormat {
                path: path.to_owned(),
            }),
        }
    }
}

/// Reads and parses `path`.
pub(crate) fn read_tree(path: &Path) -> Result<Value, ConfigError> {
    let format = Format::of(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_tree(&text, format, path)
}

/// Parses `text`; an empty document is an empty map. `path` is only used in errors.
pub(crate) fn parse_tree(text: &str, format: Format, path: &Path) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let syntax = |line: Option<usize>, column: Option<usize>, message: &str| ConfigError::Syntax {
        path: path.to_owned(),
        line,
        column,
        message: one_line(message),
    };
    let tree = match format {
        Format::Json => {
            // Comments and trailing commas become spaces: every offset stays.
            let strict = super::jsonc::to_strict(text).map_err(|e| {
                let (line, column) = line_column(text, e.offset);
                syntax(line, column, "comment `/*` is never closed with `*/`")
            })?;
            serde_json::from_str::<Value>(&strict).map_err(|e| {
                let message = strip_location(&e.to_string());
                syntax(
                    Some(e.line()),
                    char_column(text, e.line(), e.column()),
                    &message,
                )
            })?
        }
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => line_column(text, span.start),
                None => (None, None),
            };
            syntax(line, column, e.message())
        })?,
        Format::Yaml => serde_yaml::from_str::<Value>(text).map_err(|e| {
            let (line, column) = match e.location() {
                Some(at) => (Some(at.line()), Some(at.column())),
                None => (None, None),
            };
            syntax(line, column, &strip_location(&e.to_string()))
        })?,
    };
    Ok(match tree {
        Value::Null => Value::Object(Default::default()),
        other => other,
    })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

/// serde_json's 1-based byte column on 1-based `line` as a 1-based
/// character column, as the other formats and editors count.
fn char_column(text: &str, line: usize, byte_column: usize) -> Option<usize> {
    let content = text.split('\n').nth(line.saturating_sub(1))?;
    let upto = byte_column.saturating_sub(1).min(content.len());
    let chars = content
        .char_indices()
        .take_while(|(i, _)| *i < upto)
        .count();
    Some(chars + 1)
}

/// Drops the parser's own " at line L column C"; we print it as `file:L:C`.
fn strip_location(message: &str) -> String {
    let Some(at) = message.find(" at line ") else {
        return message.to_owned();
    };
    let rest = &message[at + " at line ".len()..];
    let after_numbers = rest
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix(" column ")
        .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()))
        .unwrap_or(rest);
    format!("{}{}", &message[..at], after_numbers)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, format: Format, expected: &str) {
        let got = match parse_tree(text, format, Path::new("m.cfg")) {
            Ok(tree) => tree.to_string(),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected, "{text:?}");
    }

    #[test]
    fn formats_parse_to_the_same_tree() {
        check(
            r#"{"agent": {"startup_timeout": 5}}"#,
            Format::Json,
            r#"{"agent":{"startup_timeout":5}}"#,
        );
        check(
            "[agent]\nstartup_timeout = 5\n",
            Format::Toml,
            r#"{"agent":{"startup_timeout":5}}"#,
        );
        check(
            "agent:\n  startup_timeout: 5\n",
            Format::Yaml,
            r#"{"agent":{"startup_timeout":5}}"#,
        );
        check("  \n", Format::Json, "{}");
        check(
            "// VS Code style\n{\"agent\": {/* s */ \"startup_timeout\": 5,},}\n",
            Format::Json,
            r#"{"agent":{"startup_timeout":5}}"#,
        );
        check("# nothing\n", Format::Yaml, "{}");
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        check(
            "{\n  // why\n  \"a\": 1 2\n}",
            Format::Json,
            "m.cfg:3:10: expected `,` or `}`",
        );
        check(
            "{\n  \"a\": 1, /* open\n}",
            Format::Json,
            "m.cfg:2:11: comment `/*` is never closed with `*/`",
        );
        check(
            "[agent]\nstartup_timeout = \n",
            Format::Toml,
            "m.cfg:2:19: invalid string expected `\"`, `'`",
        );
        check("agent:\n  - a\n  b: c\n", Format::Yaml, "m.cfg:3:3: did not find expected '-' indicator, while parsing a block collection at line 2 column 3");
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert_eq!(Format::of(Path::new("a/b.JSON")).ok(), Some(Format::Json));
        assert_eq!(Format::of(Path::new("b.yml")).ok(), Some(Format::Yaml));
        assert_eq!(
            Format::of(Path::new("b.ini")).map_err(|e| e.to_string()),
            Err("cannot tell the format of config file b.ini: expected a .json, .toml, .yaml or .yml extension".to_owned())
        );
    }
}
