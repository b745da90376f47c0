//! Crate-level tests: the file format end to end (JSON, TOML, YAML), every
//! error message form, override precedence, the JSON round trip, schema
//! drift and the `//!` header rule.

mod errors;
mod overrides;
mod parse;
mod properties;

use std::path::Path;

use crate::{load::file::Format, *};

/// Parses `text` as a file of `format` through the same path as [`verify_file`].
pub(super) fn parse(format: Format, text: &str) -> Result<MirrordConfig, String> {
    let name = match format {
        Format::Json => "m.json",
        Format::Toml => "m.toml",
        Format::Yaml => "m.yaml",
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    verify_file(&path).map_err(|e| e.to_string().replace(&format!("{}: ", path.display()), ""))
}

/// The same document in three formats must give `expected`.
pub(super) fn check_ok(json: &str, toml: &str, yaml: &str, expected: &MirrordConfig) {
    for (format, text) in [
        (Format::Json, json),
        (Format::Toml, toml),
        (Format::Yaml, yaml),
    ] {
        assert_eq!(
            parse(format, text).as_ref(),
            Ok(expected),
            "{format:?}: {text}"
        );
    }
}

/// A JSON document must fail with exactly these lines (file name removed).
pub(super) fn check_err(json: &str, expected: &[&str]) {
    let got = parse(Format::Json, json).expect_err(json);
    assert_eq!(got.lines().collect::<Vec<_>>(), expected, "{json}");
}

pub(super) fn pattern(p: &str) -> PathPattern {
    PathPattern::new(p).unwrap()
}

#[test]
fn policy_compiles_from_a_loaded_config() {
    let config = from_json(
        r#"{"feature": {"fs": {"mode": "read", "not_found": ["^/secret"]},
            "network": {"outgoing": {"filter": {"local": ["127.0.0.1"]}}, "dns": {"filter": {"remote": ["*.svc"]}}}},
            "skip_processes": "bash"}"#,
    )
    .unwrap();
    let policy = policy::Policy::new(&config).unwrap();
    assert_eq!(
        policy.fs.route(b"/secret/x", false),
        policy::FileRoute::NotFound
    );
    assert_eq!(
        policy
            .outgoing
            .route(Protocol::Tcp, "[::ffff:127.0.0.1]:80".parse().unwrap(), &[]),
        policy::Route::Local
    );
    assert!(policy.dns.remote("api.svc") && !policy.dns.remote("example.com"));
    assert!(policy.skip.skips(b"/bin/bash"));
}

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/mirrord.schema.json");

#[test]
fn committed_schema_is_up_to_date() {
    let generated = schema_json();
    if std::env::var_os("MIRRORD_BLESS").is_some() {
        std::fs::write(SCHEMA_FILE, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    // Trailing whitespace is the shell's business (`println!`, editors).
    assert!(
        committed.trim_end() == generated,
        "schema/mirrord.schema.json is out of date; regenerate it with \
         `MIRRORD_BLESS=1 cargo test -p mirrord-config` (or `cargo run -p mirrord -- schema > schema/mirrord.schema.json`) and commit it"
    );
}

#[test]
fn schema_describes_the_shapes_with_user_docs() {
    let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
    let fs_mode = &schema["definitions"]["FsMode"];
    let names: Vec<&str> = fs_mode["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| {
            v["enum"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
        })
        .collect();
    assert_eq!(names, FsMode::NAMES);
    let fs_doc = schema["definitions"]["FsConfig"]["description"]
        .as_str()
        .unwrap();
    assert!(fs_doc.contains("first rule that matches"), "{fs_doc}");
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
    let env = &schema["definitions"]["FeatureConfig"]["properties"]["env"]["anyOf"];
    assert_eq!(env[0]["type"], "boolean");
}

#[test]
fn every_source_file_says_what_it_is_for() {
    fn walk(dir: &Path, bad: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, bad);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.starts_with("//! ") {
                    bad.push(path.display().to_string());
                }
            }
        }
    }
    let mut bad = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut bad);
    assert!(bad.is_empty(), "files without a `//!` first line: {bad:?}");
}
