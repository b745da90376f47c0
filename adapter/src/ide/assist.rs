//! Completion and hover for config documents and for the `mirrord` objects
//! of a `launch.json`, from the config's schema (and, for targets, the
//! targets of this machine).

use mirrord_config::{Format, KeySegment};
use tower_lsp::lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, Hover, HoverContents,
    MarkupContent, MarkupKind, TextEdit,
};

use super::documents::DocKind;
use super::json::context::{self, Context, Place};
use super::line_index::LineIndex;
use super::schema::Schema;
use super::{toml_context, yaml_context};

/// The key of a launch configuration's `mirrord` object that names a config file.
const CONFIG_FILE_KEY: &str = "configFile";
const CONFIG_FILE_DOC: &str = "A mirrord config file for this launch (relative to the \
    configuration's `cwd`). With it, only `target` may be set beside it; without it, the \
    `mirrord` object is an inline config.";

/// The cursor's context, with its path made relative to the config (for
/// `launch.json`, to a configuration's `mirrord` object); `None` where
/// the document holds no config.
fn config_context(kind: DocKind, text: &str, offset: usize) -> Option<(Context, bool)> {
    match kind {
        DocKind::Config(Format::Json) => Some((context::at(text, offset), false)),
        DocKind::Config(Format::Toml) => Some((toml_context::at(text, offset), false)),
        DocKind::Config(Format::Yaml) => Some((yaml_context::at(text, offset), false)),
        DocKind::Launch => {
            let mut context = context::at(text, offset);
            match context.path.as_slice() {
                [KeySegment::Key(c), KeySegment::Index(_), KeySegment::Key(m), ..]
                    if c == "configurations" && m == crate::launch::MIRRORD_KEY =>
                {
                    context.path.drain(..3);
                    Some((context, true))
                }
                _ => None,
            }
        }
    }
}

/// How a document writes keys and values: launch.json is JSON.
fn format_of(kind: DocKind) -> Format {
    match kind {
        DocKind::Config(format) => format,
        DocKind::Launch => Format::Json,
    }
}

/// A key as completed: the text replacing the word under the cursor, and
/// the text inserted where nothing is written yet.
fn key_text(format: Format, key: &str) -> (String, String) {
    match format {
        Format::Json => (format!("\"{key}\""), format!("\"{key}\": ")),
        Format::Toml => (key.to_owned(), format!("{key} = ")),
        Format::Yaml => (key.to_owned(), format!("{key}: ")),
    }
}

/// A value (given as JSON) as `format` writes it: JSON's strings, numbers
/// and booleans are TOML's too; YAML gets a plain scalar when it would
/// read back as the same string.
fn value_text(format: Format, json: &str) -> String {
    if format != Format::Yaml {
        return json.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) if is_plain_yaml_string(&s) => s,
        _ => json.to_owned(),
    }
}

fn is_plain_yaml_string(s: &str) -> bool {
    let first = s.chars().next();
    first.is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-/.".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

fn markdown(value: String) -> MarkupContent {
    MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    }
}

/// Completion items at `offset`.
pub fn complete(schema: &Schema, kind: DocKind, text: &str, offset: usize) -> Vec<CompletionItem> {
    let Some((context, in_launch)) = config_context(kind, text, offset) else {
        return Vec::new();
    };
    let format = format_of(kind);
    let index = LineIndex::new(text);
    let edit = |token: Option<(usize, usize)>, new_text: String| {
        token.map(|(start, end)| {
            CompletionTextEdit::Edit(TextEdit {
                range: index.range(start, end),
                new_text,
            })
        })
    };
    match &context.place {
        Place::Key { token } => {
            let mut keys = schema.keys(&context.path);
            if in_launch && context.path.is_empty() {
                keys.push(super::schema::KeyDoc {
                    name: CONFIG_FILE_KEY.into(),
                    doc: CONFIG_FILE_DOC.into(),
                });
            }
            let under_cursor = token.as_ref().map(|(_, _, text)| text.as_str());
            keys.into_iter()
                .filter(|k| {
                    Some(k.name.as_str()) == under_cursor || !context.siblings.contains(&k.name)
                })
                .map(|k| {
                    let (replace, insert) = key_text(format, &k.name);
                    let span = token.as_ref().map(|(s, e, _)| (*s, *e));
                    CompletionItem {
                        label: k.name.clone(),
                        kind: Some(CompletionItemKind::PROPERTY),
                        documentation: Some(Documentation::MarkupContent(markdown(k.doc))),
                        filter_text: Some(if span.is_some() {
                            replace.clone()
                        } else {
                            k.name.clone()
                        }),
                        insert_text: Some(insert),
                        text_edit: edit(span, replace),
                        ..Default::default()
                    }
                })
                .collect()
        }
        Place::Value { token } => {
            let mut items: Vec<CompletionItem> = schema
                .values(&context.path)
                .into_iter()
                .map(|v| {
                    let written = value_text(format, &v.json);
                    CompletionItem {
                        label: written.clone(),
                        kind: Some(CompletionItemKind::ENUM_MEMBER),
                        documentation: (!v.doc.is_empty())
                            .then(|| Documentation::MarkupContent(markdown(v.doc))),
                        insert_text: Some(written.clone()),
                        text_edit: edit(*token, written),
                        ..Default::default()
                    }
                })
                .collect();
            if is_target_path(&context.path) {
                items.extend(crate::target::list_local().into_iter().map(|t| {
                    let json = value_text(format, &format!("\"{}\"", t.path));
                    CompletionItem {
                        label: json.clone(),
                        kind: Some(CompletionItemKind::VALUE),
                        detail: Some(t.description),
                        insert_text: Some(json.clone()),
                        text_edit: edit(*token, json),
                        ..Default::default()
                    }
                }));
            }
            items
        }
        Place::Nothing => Vec::new(),
    }
}

fn is_target_path(path: &[KeySegment]) -> bool {
    match path {
        [KeySegment::Key(t)] => t == "target",
        [KeySegment::Key(t), KeySegment::Key(p)] => t == "target" && p == "path",
        _ => false,
    }
}

/// Hover documentation for the key at `offset`, or for the key whose value
/// is at `offset`.
pub fn hover(schema: &Schema, kind: DocKind, text: &str, offset: usize) -> Option<Hover> {
    let (context, in_launch) = config_context(kind, text, offset)?;
    let (path, span) = match context.place {
        Place::Key {
            token: Some((start, end, key)),
        } => {
            let mut path = context.path;
            path.push(KeySegment::Key(key));
            (path, (start, end))
        }
        Place::Value {
            token: Some((start, end)),
        } => (context.path, (start, end)),
        _ => return None,
    };
    let name = match path.last() {
        Some(KeySegment::Key(name)) => name.clone(),
        _ => return None,
    };
    let doc = if in_launch && path.len() == 1 && name == CONFIG_FILE_KEY {
        CONFIG_FILE_DOC.to_owned()
    } else {
        schema.doc(&path)?
    };
    let index = LineIndex::new(text);
    Some(Hover {
        contents: HoverContents::Markup(markdown(format!("**{name}**\n\n{doc}"))),
        range: Some(index.range(span.0, span.1)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kind: DocKind, marked: &str) -> Vec<String> {
        let offset = marked.find('|').unwrap();
        let text = marked.replace('|', "");
        complete(&Schema::default(), kind, &text, offset)
            .into_iter()
            .map(|i| i.label)
            .collect()
    }

    const JSON: DocKind = DocKind::Config(Format::Json);

    #[test]
    fn keys_and_values_complete_from_the_schema() {
        assert_eq!(
            labels(JSON, r#"{"target": "targetless", |}"#),
            vec![
                "agent",
                "feature",
                "kube_context",
                "kubeconfig",
                "skip_processes"
            ]
        );
        assert_eq!(
            labels(JSON, r#"{"feature": {"fs": {"mode": "|"}}}"#),
            vec![
                "\"local\"",
                "\"localwithoverrides\"",
                "\"read\"",
                "\"write\""
            ]
        );
        let targets = labels(JSON, r#"{"target": |}"#);
        assert!(
            targets.contains(&"\"targetless\"".to_owned()),
            "{targets:?}"
        );
        assert_eq!(
            labels(
                DocKind::Launch,
                r#"{"configurations": [{"type": "node", "mirrord": {|}}]}"#
            ),
            vec![
                "agent",
                "feature",
                "kube_context",
                "kubeconfig",
                "skip_processes",
                "target",
                "configFile"
            ]
        );
        assert!(labels(DocKind::Launch, r#"{"configurations": [{|}]}"#).is_empty());
    }

    #[test]
    fn a_key_in_quotes_is_replaced_whole() {
        let text = r#"{"feature": {"fs": {"mo"#;
        let items = complete(&Schema::default(), JSON, text, text.len());
        let mode = items.iter().find(|i| i.label == "mode").unwrap();
        let Some(CompletionTextEdit::Edit(edit)) = &mode.text_edit else {
            panic!("no edit: {mode:?}");
        };
        assert_eq!(edit.new_text, "\"mode\"");
        assert_eq!(
            (edit.range.start.character, edit.range.end.character),
            (20, 23)
        );
    }

    #[test]
    fn hover_shows_the_key_documentation() {
        let text = r#"{"feature": {"fs": {"mode": "read"}}}"#;
        let on_key = text.find("mode").unwrap() + 1;
        let Some(Hover {
            contents: HoverContents::Markup(content),
            range,
        }) = hover(&Schema::default(), JSON, text, on_key)
        else {
            panic!("no hover");
        };
        assert!(content.value.starts_with("**mode**"), "{}", content.value);
        assert!(content.value.contains("Default"), "{}", content.value);
        assert_eq!(range.map(|r| r.start.character), Some(20));
        let on_value = text.find("read").unwrap();
        assert!(hover(&Schema::default(), JSON, text, on_value).is_some());
        assert!(hover(&Schema::default(), JSON, text, 0).is_none());
    }

    #[test]
    fn toml_and_yaml_complete_and_hover_in_their_own_syntax() {
        const TOML: DocKind = DocKind::Config(Format::Toml);
        const YAML: DocKind = DocKind::Config(Format::Yaml);
        assert_eq!(
            labels(TOML, "[feature.fs]\nmode = \"read\"\n|\n"),
            vec!["local", "not_found", "read_only", "read_write"]
        );
        assert_eq!(
            labels(YAML, "feature:\n  fs:\n    mode: |\n"),
            vec!["local", "localwithoverrides", "read", "write"]
        );
        assert_eq!(
            labels(TOML, "[feature.fs]\nmode = |\n"),
            vec![
                "\"local\"",
                "\"localwithoverrides\"",
                "\"read\"",
                "\"write\""
            ]
        );
        let text = "agent:\n  startup_timeout: 5\n  log_|\n";
        let offset = text.find('|').unwrap();
        let text = text.replace('|', "");
        let items = complete(&Schema::default(), YAML, &text, offset);
        let level = items.iter().find(|i| i.label == "log_level").unwrap();
        let Some(CompletionTextEdit::Edit(edit)) = &level.text_edit else {
            panic!("no edit: {level:?}");
        };
        assert_eq!(edit.new_text, "log_level");
        assert_eq!(
            (edit.range.start.character, edit.range.end.character),
            (2, 6)
        );
        assert!(!items.iter().any(|i| i.label == "startup_timeout"));

        let text = "[feature.fs]\nmode = \"read\"\n";
        let Some(Hover {
            contents: HoverContents::Markup(content),
            ..
        }) = hover(
            &Schema::default(),
            TOML,
            text,
            text.find("mode").unwrap() + 1,
        )
        else {
            panic!("no hover");
        };
        assert!(content.value.starts_with("**mode**"), "{}", content.value);
        let yaml = "feature:\n  fs: read\n";
        assert!(hover(&Schema::default(), YAML, yaml, yaml.find("fs").unwrap()).is_some());
    }

    proptest::proptest! {
        /// Any text, any cursor, any format: completion and hover answer
        /// or decline, never panic; the positioned parsers likewise.
        #[test]
        fn any_text_at_any_cursor_never_panics(text in super::super::test_support::config_like_text()) {
            let schema = Schema::default();
            for kind in [
                DocKind::Config(Format::Json),
                DocKind::Config(Format::Toml),
                DocKind::Config(Format::Yaml),
                DocKind::Launch,
            ] {
                for offset in super::super::test_support::boundaries(&text) {
                    let _ = complete(&schema, kind, &text, offset);
                    let _ = hover(&schema, kind, &text, offset);
                }
                let _ = super::super::diagnostics::check(kind, &text);
            }
        }
    }
}
