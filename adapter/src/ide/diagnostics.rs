//! Diagnostics for config documents and for the `mirrord` objects of a
//! `launch.json`. The rules are the config crate's (`check_document`, the
//! same checks as `mirrord verify-config`); this module only finds where
//! each problem is in the text.

use std::path::Path;

use mirrord_config::{split_key_path, ConfigError, Format, Problem, Target};
use tower_lsp::lsp_types::{Diagnostic, DiagnosticSeverity, Range};

use super::documents::DocKind;
use super::json::tree::{self, Kind, Node};
use super::line_index::LineIndex;
use super::{toml_tree, yaml_tree};

/// What the editor shows as the diagnostics' source.
pub const SOURCE: &str = "mirrord";

/// Every diagnostic of a document of `kind`.
pub fn check(kind: DocKind, text: &str) -> Vec<Diagnostic> {
    let index = LineIndex::new(text);
    match kind {
        DocKind::Config(Format::Json) => json_config(text, &index),
        DocKind::Config(format) => other_format(text, format, &index),
        DocKind::Launch => launch(text, &index),
    }
}

fn diagnostic(range: Range, severity: DiagnosticSeverity, message: String) -> Diagnostic {
    Diagnostic {
        range,
        severity: Some(severity),
        source: Some(SOURCE.into()),
        message,
        ..Default::default()
    }
}

fn error(range: Range, message: impl Into<String>) -> Diagnostic {
    diagnostic(range, DiagnosticSeverity::ERROR, message.into())
}

fn json_config(text: &str, index: &LineIndex) -> Vec<Diagnostic> {
    let root = match tree::parse(text) {
        Ok(root) => root,
        Err(e) => return vec![error(index.range(e.start, e.end), e.message)],
    };
    // The CLI reads the file with its own JSONC pass and serde_json:
    // anything it refuses is an error here too, even where this parser
    // was more lenient.
    if let Err(ConfigError::Syntax {
        line,
        column,
        message,
        ..
    }) = mirrord_config::parse_document(text, Format::Json, Path::new("mirrord.json"))
    {
        let range = index.rest_of_line(line.unwrap_or(1), column.unwrap_or(1));
        return vec![error(range, message)];
    }
    match root {
        Some(root) => config_object(&root, index),
        None => Vec::new(),
    }
}

/// The problems of a config held in `node` (a whole document or a
/// `mirrord` object of a launch configuration).
fn config_object(node: &Node, index: &LineIndex) -> Vec<Diagnostic> {
    problems_at(node, node.to_value(), index)
}

/// The problems of `tree` (the config as read), placed in `node` (where
/// its keys and values are written).
fn problems_at(node: &Node, tree: serde_json::Value, index: &LineIndex) -> Vec<Diagnostic> {
    let problems = mirrord_config::check_document(tree);
    let mut out: Vec<Diagnostic> = problems
        .iter()
        .map(|problem| error(locate(node, problem, index), &problem.message))
        .collect();
    out.extend(target_warning(target_node(node), index));
    out
}

/// Where a problem is: the unknown key itself, else the value at its key
/// path (or the deepest value on the way).
fn locate(node: &Node, problem: &Problem, index: &LineIndex) -> Range {
    let path = split_key_path(problem.origin.key().unwrap_or(""));
    let (found, depth) = node.find(&path);
    if depth == path.len() {
        if let Some(member) = problem.unknown_key.as_deref().and_then(|k| found.member(k)) {
            return index.range(member.key_start, member.key_end);
        }
    }
    index.range(found.start, found.end)
}

/// The node holding the target string: `"target": "..."` or
/// `"target": {"path": "..."}`.
fn target_node(config: &Node) -> Option<&Node> {
    let target = &config.member("target")?.value;
    match &target.kind {
        Kind::String(_) => Some(target),
        Kind::Object(_) => Some(&target.member("path")?.value),
        _ => None,
    }
}

/// A warning for a local target that does not exist (local targets can
/// always be listed; Kubernetes ones cannot from here).
fn target_warning(node: Option<&Node>, index: &LineIndex) -> Option<Diagnostic> {
    let node = node?;
    let Kind::String(text) = &node.kind else {
        return None;
    };
    let Ok(Target::Pid(pid)) = text.parse::<Target>() else {
        return None;
    };
    if Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    let known: Vec<String> = crate::target::list_local()
        .into_iter()
        .take(8)
        .map(|t| t.path)
        .collect();
    Some(diagnostic(
        index.range(node.start, node.end),
        DiagnosticSeverity::WARNING,
        format!(
            "no process pid/{pid} on this machine; targets now: {}",
            known.join(", ")
        ),
    ))
}

fn launch(text: &str, index: &LineIndex) -> Vec<Diagnostic> {
    let root = match tree::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![error(index.range(e.start, e.end), e.message)],
    };
    let Some(Kind::Array(configurations)) = root.member("configurations").map(|m| &m.value.kind)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for configuration in configurations {
        if let Some(member) = configuration.member(crate::launch::MIRRORD_KEY) {
            out.extend(launch_mirrord(&member.value, index));
        }
    }
    out
}

/// One configuration's `mirrord` value, read by the same rules as a launch
/// (`take_mirrord`): `false`, a `{"configFile", "target"}` object or an
/// inline config.
fn launch_mirrord(node: &Node, index: &LineIndex) -> Vec<Diagnostic> {
    let mut wrapper = serde_json::Map::new();
    wrapper.insert(crate::launch::MIRRORD_KEY.into(), node.to_value());
    match crate::launch::take_mirrord(&mut wrapper) {
        Ok(crate::launch::MirrordSetting::Inline(_)) => config_object(node, index),
        Ok(crate::launch::MirrordSetting::File { .. }) => {
            target_warning(node.member("target").map(|m| &m.value), index)
                .into_iter()
                .collect()
        }
        Ok(_) => Vec::new(),
        Err(e) => {
            let message = format!("{e:#}");
            let at = ["target", "configFile"]
                .into_iter()
                .find(|key| message.contains(&format!("mirrord.{key}")))
                .and_then(|key| node.member(key))
                .map_or(node, |m| &m.value);
            vec![error(index.range(at.start, at.end), message)]
        }
    }
}

/// TOML and YAML: read by the config crate (syntax errors and the tree
/// checked), placed by a positioned parse of the same text
/// ([`toml_tree`], [`yaml_tree`]).
fn other_format(text: &str, format: Format, index: &LineIndex) -> Vec<Diagnostic> {
    let tree = match mirrord_config::parse_document(text, format, Path::new("mirrord")) {
        Ok(tree) => tree,
        Err(ConfigError::Syntax {
            line,
            column,
            message,
            ..
        }) => {
            // TOML's parser gives the error's span; YAML's only a point.
            let span = match format {
                Format::Toml => toml_tree::parse(text).err().map(|(span, _)| span),
                _ => None,
            };
            let range = match span {
                Some(span) if !span.is_empty() => index.range(span.start, span.end),
                _ => index.rest_of_line(line.unwrap_or(1), column.unwrap_or(1)),
            };
            return vec![error(range, message)];
        }
        Err(other) => return vec![error(index.range(0, 0), other.to_string())],
    };
    let positioned = match format {
        Format::Toml => toml_tree::parse(text).ok(),
        Format::Yaml => yaml_tree::parse(text).ok().flatten(),
        Format::Json => tree::parse(text).ok().flatten(),
    };
    // Both parsers read what the config crate read; should one still
    // fail, the problems are listed at the top rather than lost.
    let root = positioned.unwrap_or(Node {
        start: 0,
        end: 0,
        kind: Kind::Null,
    });
    problems_at(&root, tree, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(range text, message part)` of every diagnostic.
    fn check_text(kind: DocKind, text: &str) -> Vec<(String, String)> {
        let index = LineIndex::new(text);
        check(kind, text)
            .into_iter()
            .map(|d| {
                let start = index.offset(d.range.start);
                let end = index.offset(d.range.end);
                (text[start..end].to_owned(), d.message)
            })
            .collect()
    }

    fn assert_marks(kind: DocKind, text: &str, expected: &[(&str, &str)]) {
        let got = check_text(kind, text);
        assert_eq!(got.len(), expected.len(), "{text}: {got:?}");
        for ((range, message), (want_range, want_message)) in got.iter().zip(expected) {
            assert_eq!(range, want_range, "{text}: {got:?}");
            assert!(message.contains(want_message), "{text}: {got:?}");
        }
    }

    const JSON: DocKind = DocKind::Config(Format::Json);

    #[test]
    fn json_problems_are_marked_where_they_are() {
        assert_marks(
            JSON,
            r#"{"feature": {"fs": {"mode": "raed"}}, "agnet": {}}"#,
            &[
                ("\"agnet\"", "unknown key \"agnet\""),
                ("\"raed\"", "did you mean \"read\""),
            ],
        );
        assert_marks(
            JSON,
            r#"{"feature": {"fs": {"local": ["^/a", "("]}}}"#,
            &[("\"(\"", "invalid regex")],
        );
        assert_marks(
            JSON,
            r#"{"target": "pot/x", "agent": {"startup_timeout": "x"}}"#,
            &[
                ("\"x\"", "invalid type"),
                ("\"pot/x\"", "is not a valid target"),
            ],
        );
        assert_marks(
            JSON,
            r#"{"feature": {"network": {"outgoing": {"filter": {"remote": ["1.2.3.4:99999"]}}}}}"#,
            &[("\"1.2.3.4:99999\"", "out of range")],
        );
        assert_marks(JSON, "{\"a\": 1 2\n}", &[("2", "expected")]);
        assert_marks(
            JSON,
            "// c\n{\"agnet\": 1, /* d */}\n",
            &[("\"agnet\"", "unknown key")],
        );
        assert_marks(JSON, "{}", &[]);
        assert_marks(JSON, "", &[]);
    }

    #[test]
    fn a_missing_local_target_is_a_warning() {
        let text = r#"{"target": {"path": "pid/4000000000"}}"#;
        let diagnostics = check(JSON, text);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert_eq!(diagnostics[0].severity, Some(DiagnosticSeverity::WARNING));
        assert!(diagnostics[0].message.contains("targetless"));
        let me = format!(r#"{{"target": "pid/{}"}}"#, std::process::id());
        assert!(check(JSON, &me).is_empty());
    }

    #[test]
    fn launch_json_mirrord_objects_are_checked() {
        let text = r#"{
  // comment
  "configurations": [
    {"type": "debugpy", "mirrord": {"feature": {"fs": "raed"}},},
    {"type": "node", "mirrord": {"configFile": "m.json", "target": "pot/x"}},
    {"type": "lldb", "mirrord": false},
    {"type": "go"},
  ]
}"#;
        assert_marks(
            DocKind::Launch,
            text,
            &[
                ("\"raed\"", "unknown variant"),
                ("\"pot/x\"", "mirrord.target"),
            ],
        );
    }

    #[test]
    fn toml_and_yaml_problems_are_marked_where_they_are() {
        const TOML: DocKind = DocKind::Config(Format::Toml);
        const YAML: DocKind = DocKind::Config(Format::Yaml);
        assert_marks(
            TOML,
            "[feature]\nfs = \"raed\"\n[agnet]\n",
            &[("agnet", "unknown key"), ("\"raed\"", "unknown variant")],
        );
        assert_marks(
            TOML,
            "[feature.fs]\nlocal = [\"^/a\", \"(\"]\n",
            &[("\"(\"", "invalid regex")],
        );
        // The parser's span: the line break where a value was expected.
        assert_marks(
            TOML,
            "[agent]\nstartup_timeout = \n",
            &[("\n", "invalid string")],
        );
        assert_marks(TOML, "[feature\n", &[("\n", "invalid table header")]);
        assert_marks(
            YAML,
            "feature:\n  fs:\n    mode: raed\nagnet: 1\n",
            &[("agnet", "unknown key"), ("raed", "unknown variant")],
        );
        assert_marks(
            YAML,
            "target:\n  path: pot/x\nagent:\n  startup_timeout: soon\n",
            &[("soon", "invalid type"), ("pot/x", "is not a valid target")],
        );
        assert_marks(
            YAML,
            "agent:\n  - a\n  b: c\n",
            &[("b: c", "did not find expected")],
        );
        assert_marks(TOML, "", &[]);
        assert_marks(YAML, "# nothing\n", &[]);
    }
}
