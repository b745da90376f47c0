//! Every error message form: key path, bad value, what is allowed; all
//! problems at once; files that cannot be read or parsed.

use std::path::Path;

use super::{check_err, parse};
use crate::{load::file::Format, *};

#[test]
fn every_error_names_key_value_and_allowed() {
    check_err(
        r#"{"feature": {"fs": {"mode": "raed"}}}"#,
        &[
            r#"feature.fs.mode: unknown variant "raed", expected one of local, localwithoverrides, read, write (did you mean "read"?)"#,
        ],
    );
    check_err(
        r#"{"feature": {"fs": "raed"}}"#,
        &[
            r#"feature.fs: unknown variant "raed", expected one of local, localwithoverrides, read, write (did you mean "read"?)"#,
        ],
    );
    check_err(
        r#"{"feture": {}}"#,
        &[
            r#"unknown key "feture" at the top level; known keys: target, feature, agent, kube_context, kubeconfig, skip_processes (did you mean "feature"?)"#,
        ],
    );
    check_err(
        r#"{"feature": {"fs": {"local": ["^/a", "^/b", "("]}}}"#,
        &[r#"feature.fs.local[2]: invalid regex "(": unclosed group"#],
    );
    check_err(
        r#"{"target": "pid/abc"}"#,
        &["target: \"pid/abc\" is not a valid target; expected pid/<number> (a process id above 0), targetless, \
           pod/<name>[/container/<name>], deployment/<name>, statefulset/<name>, daemonset/<name>, job/<name>, \
           cronjob/<name>, rollout/<name> (each optionally followed by /container/<name>) or service/<name>"],
    );
    check_err(
        r#"{"target": {"path": "node/x"}}"#,
        &["target.path: \"node/x\" is not a valid target; expected pid/<number>, targetless, \
           pod/<name>[/container/<name>], deployment/<name>, statefulset/<name>, daemonset/<name>, job/<name>, \
           cronjob/<name>, rollout/<name> (each optionally followed by /container/<name>) or service/<name>"],
    );
    check_err(
        r#"{"feature": {"network": {"outgoing": {"filter": {"remote": ["1.2.3.4:99999"]}}}}}"#,
        &[
            r#"feature.network.outgoing.filter.remote[0]: invalid filter "1.2.3.4:99999": port 99999 is out of range (0-65535)"#,
        ],
    );
    check_err(
        r#"{"feature": {"network": {"outgoing": {"filter": {"remote": [], "local": []}}}}}"#,
        &["feature.network.outgoing.filter: expected a map with exactly one of the keys remote, local"],
    );
    check_err(
        r#"{"feature": {"network": {"outgoing": {"filter": {"remotes": []}}}}}"#,
        &[
            r#"feature.network.outgoing.filter: unknown variant "remotes", expected one of remote, local (did you mean "remote"?)"#,
        ],
    );
    check_err(
        r#"{"agent": {"startup_timeout": "soon"}}"#,
        &[
            r#"agent.startup_timeout: invalid type: found string "soon", expected a whole number of at least 0"#,
        ],
    );
    check_err(
        r#"{"agent": {"startup_timeout": -1}}"#,
        &[
            r#"agent.startup_timeout: invalid value: found integer -1, expected a whole number of at least 0"#,
        ],
    );
    check_err(
        r#"{"feature": {"fs": {"local": "^/x"}}}"#,
        &[r#"feature.fs.local: invalid type: found string "^/x", expected a list"#],
    );
    check_err(
        r#"{"agent": {"startup_timeout": 0}}"#,
        &["agent.startup_timeout: invalid value 0, expected a number of seconds of at least 1"],
    );
    check_err(
        r#"{"feature": {"env": 3}}"#,
        &["feature.env: invalid type: found integer 3, expected true, false or a map of keys"],
    );
    check_err(
        r#"[1]"#,
        &["invalid type: found a list, expected a map of keys"],
    );
    check_err(
        r#"{"target": {"path": "pod/a", "namespace": "Dev"}}"#,
        &["target.namespace: namespace name \"Dev\" is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)"],
    );
}

#[test]
fn toml_and_yaml_errors_read_like_json_ones() {
    let rows = [
        (
            Format::Toml,
            "[feature.fs]\nmode = \"raed\"\nlocal = [\"ok\", \"(\"]\n",
        ),
        (
            Format::Yaml,
            "feature:\n  fs:\n    mode: raed\n    local: [ok, \"(\"]\n",
        ),
    ];
    for (format, text) in rows {
        let got = parse(format, text).expect_err(text);
        assert_eq!(
            got.lines().collect::<Vec<_>>(),
            [
                r#"feature.fs.local[1]: invalid regex "(": unclosed group"#,
                r#"feature.fs.mode: unknown variant "raed", expected one of local, localwithoverrides, read, write (did you mean "read"?)"#,
            ],
            "{format:?}"
        );
    }
}

#[test]
fn all_problems_are_reported_with_original_indexes() {
    check_err(
        r#"{
          "feture": 1,
          "agent": {"log_level": "loud", "startup_timeout": 5, "extra": true},
          "feature": {"fs": {"mode": "write", "read_only": ["(", "ok", "[", "fine", "*"]},
                      "network": {"dns": {"filter": {"remote": ["a b"]}}}}
        }"#,
        &[
            r#"agent: unknown key "extra"; known keys: log_level, startup_timeout, image, namespace, ttl, communication_timeout, privileged, labels, annotations, tolerations, resources"#,
            r#"agent.log_level: unknown variant "loud", expected one of error, warn, info, debug, trace"#,
            r#"feature.fs.read_only[0]: invalid regex "(": unclosed group"#,
            r#"feature.fs.read_only[2]: invalid regex "[": unclosed character class"#,
            r#"feature.fs.read_only[4]: invalid regex "*": repetition operator missing expression"#,
            r#"feature.network.dns.filter.remote[0]: invalid hostname pattern "a b", expected a name like db.internal or a suffix like *.internal"#,
            r#"unknown key "feture" at the top level; known keys: target, feature, agent, kube_context, kubeconfig, skip_processes (did you mean "feature"?)"#,
        ],
    );
}

#[test]
fn io_and_syntax_errors_name_the_file() {
    let missing = verify_file(Path::new("/nonexistent/mirrord.json"))
        .unwrap_err()
        .to_string();
    assert!(
        missing.starts_with("cannot read config file /nonexistent/mirrord.json: "),
        "{missing}"
    );
    let bad = parse(Format::Json, "{\"target\": }").unwrap_err();
    assert!(bad.ends_with("m.json:1:12: expected value"), "{bad}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, "target: [\n").unwrap();
    let error = verify_file(&path).unwrap_err();
    assert!(
        matches!(error, ConfigError::Syntax { line: Some(2), .. }),
        "{error:?}"
    );
}

#[test]
fn a_document_check_names_unknown_keys_and_paths() {
    let tree = serde_json::json!({"feture": {}, "feature": {"fs": {"mode": "raed"}}});
    let problems = check_document(tree);
    let shown: Vec<(Option<&str>, Option<&str>)> = problems
        .iter()
        .map(|p| (p.origin.key(), p.unknown_key.as_deref()))
        .collect();
    assert_eq!(
        shown,
        vec![(Some("feature.fs.mode"), None), (Some(""), Some("feture"))]
    );
    assert!(check_document(serde_json::json!({"target": "targetless"})).is_empty());
    let syntax = parse_document("{\"a\": }", Format::Json, Path::new("m.json"));
    assert!(matches!(
        syntax,
        Err(ConfigError::Syntax { line: Some(1), .. })
    ));
}
