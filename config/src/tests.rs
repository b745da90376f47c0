//! Crate-level tests: the file format end to end (JSON, TOML, YAML), every
//! error message form, override precedence, the JSON round trip, schema
//! drift and the `//!` header rule.

use std::{collections::BTreeMap, path::Path};

use crate::{
    load::file::{parse_tree, Format},
    *,
};

/// Parses `text` as a file of `format` through the same path as [`verify_file`].
fn parse(format: Format, text: &str) -> Result<MirrordConfig, String> {
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
fn check_ok(json: &str, toml: &str, yaml: &str, expected: &MirrordConfig) {
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
fn check_err(json: &str, expected: &[&str]) {
    let got = parse(Format::Json, json).expect_err(json);
    assert_eq!(got.lines().collect::<Vec<_>>(), expected, "{json}");
}

fn pattern(p: &str) -> PathPattern {
    PathPattern::new(p).unwrap()
}

#[test]
fn empty_documents_are_the_defaults() {
    let defaults = MirrordConfig::default();
    check_ok("{}", "", "{}", &defaults);
    assert_eq!(defaults.feature.fs.mode, FsMode::Read);
    assert_eq!(defaults.agent.log_level, LogLevel::Info);
    assert_eq!(defaults.agent.startup_timeout, 30);
    assert!(defaults.feature.env.enabled && defaults.feature.network.dns.enabled);
    assert!(defaults.feature.network.outgoing.tcp && defaults.feature.network.outgoing.udp);
}

#[test]
fn short_forms() {
    let mut expected = MirrordConfig::default();
    expected.target.path = Some(Target::Pod {
        name: "x".into(),
        container: None,
    });
    expected.feature.fs.mode = FsMode::Write;
    expected.feature.env.enabled = false;
    expected.feature.network.outgoing = OutgoingConfig {
        tcp: false,
        udp: false,
        filter: None,
    };
    expected.feature.network.dns.enabled = false;
    expected.skip_processes = vec!["bash".into()];
    check_ok(
        r#"{"target": "pod/x", "feature": {"fs": "write", "env": false,
            "network": {"outgoing": false, "dns": false}}, "skip_processes": "bash"}"#,
        "target = \"pod/x\"\nskip_processes = \"bash\"\n[feature]\nfs = \"write\"\nenv = false\n\
         [feature.network]\noutgoing = false\ndns = false\n",
        "target: pod/x\nskip_processes: bash\nfeature:\n  fs: write\n  env: false\n  network:\n    outgoing: false\n    dns: false\n",
        &expected,
    );
}

#[test]
fn long_forms() {
    let expected = MirrordConfig {
        target: TargetConfig {
            path: Some(Target::Pid(1234)),
            namespace: Some("dev".into()),
        },
        feature: FeatureConfig {
            env: EnvConfig {
                enabled: true,
                include: Some(vec!["DB_*".into(), "API".into()]),
                exclude: vec!["DB_PASSWORD".into()],
                overrides: BTreeMap::from([("MODE".into(), "local".into())]),
            },
            fs: FsConfig {
                mode: FsMode::LocalWithOverrides,
                read_write: vec![pattern("^/data/")],
                read_only: vec![pattern("^/config/"), pattern("\\.ya?ml$")],
                local: vec![pattern("^/app/")],
                not_found: vec![pattern("\\.secret$")],
            },
            network: NetworkConfig {
                outgoing: OutgoingConfig {
                    tcp: true,
                    udp: false,
                    filter: Some(OutgoingFilter::Remote(vec![
                        "10.0.0.0/8".parse().unwrap(),
                        "tcp://db.internal:5432".parse().unwrap(),
                    ])),
                },
                dns: DnsConfig {
                    enabled: true,
                    filter: Some(DnsFilter::Local(vec![HostPattern::new("*.corp").unwrap()])),
                },
            },
        },
        agent: AgentConfig {
            log_level: LogLevel::Trace,
            startup_timeout: 90,
        },
        skip_processes: vec!["bash".into(), "node".into()],
    };
    check_ok(
        r#"{
          "target": {"path": "pid/1234", "namespace": "dev"},
          "feature": {
            "env": {"include": "DB_*;API", "exclude": ["DB_PASSWORD"], "override": {"MODE": "local"}},
            "fs": {"mode": "localwithoverrides", "read_write": ["^/data/"], "read_only": ["^/config/", "\\.ya?ml$"],
                   "local": ["^/app/"], "not_found": ["\\.secret$"]},
            "network": {
              "outgoing": {"udp": false, "filter": {"remote": ["10.0.0.0/8", "tcp://db.internal:5432"]}},
              "dns": {"filter": {"local": ["*.corp"]}}
            }
          },
          "agent": {"log_level": "trace", "startup_timeout": 90},
          "skip_processes": ["bash", "node"]
        }"#,
        r#"
skip_processes = ["bash", "node"]
[target]
path = "pid/1234"
namespace = "dev"
[feature.env]
include = "DB_*;API"
exclude = ["DB_PASSWORD"]
override = { MODE = "local" }
[feature.fs]
mode = "localwithoverrides"
read_write = ["^/data/"]
read_only = ["^/config/", '\.ya?ml$']
local = ["^/app/"]
not_found = ['\.secret$']
[feature.network.outgoing]
udp = false
filter = { remote = ["10.0.0.0/8", "tcp://db.internal:5432"] }
[feature.network.dns]
filter = { local = ["*.corp"] }
[agent]
log_level = "trace"
startup_timeout = 90
"#,
        r#"
target: {path: pid/1234, namespace: dev}
feature:
  env: {include: "DB_*;API", exclude: [DB_PASSWORD], override: {MODE: local}}
  fs:
    mode: localwithoverrides
    read_write: ["^/data/"]
    read_only: ["^/config/", '\.ya?ml$']
    local: ["^/app/"]
    not_found: ['\.secret$']
  network:
    outgoing:
      udp: false
      filter: {remote: [10.0.0.0/8, "tcp://db.internal:5432"]}
    dns: {filter: {local: ["*.corp"]}}
agent: {log_level: trace, startup_timeout: 90}
skip_processes: [bash, node]
"#,
        &expected,
    );

    // The resolved config survives the trip to the layer and back.
    let json = to_json(&expected);
    assert_eq!(from_json(&json).map_err(|e| e.to_string()), Ok(expected));
}

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
            r#"unknown key "feture" at the top level; known keys: target, feature, agent, skip_processes (did you mean "feature"?)"#,
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
            r#"agent: unknown key "extra"; known keys: log_level, startup_timeout"#,
            r#"agent.log_level: unknown variant "loud", expected one of error, warn, info, debug, trace"#,
            r#"feature.fs.read_only[0]: invalid regex "(": unclosed group"#,
            r#"feature.fs.read_only[2]: invalid regex "[": unclosed character class"#,
            r#"feature.fs.read_only[4]: invalid regex "*": repetition operator missing expression"#,
            r#"feature.network.dns.filter.remote[0]: invalid hostname pattern "a b", expected a name like db.internal or a suffix like *.internal"#,
            r#"unknown key "feture" at the top level; known keys: target, feature, agent, skip_processes (did you mean "feature"?)"#,
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

fn options(dir: &Path, env: &[(&str, &str)], cli: CliOverrides) -> LoadOptions {
    LoadOptions {
        file: None,
        cwd: dir.to_owned(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cli,
    }
}

fn workspace(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".mirrord")).unwrap();
    std::fs::write(dir.path().join(DEFAULT_CONFIG_FILE), config).unwrap();
    dir
}

#[test]
fn file_then_env_then_cli() {
    let dir = workspace(
        r#"{"target": "pod/a", "feature": {"fs": "write"}, "agent": {"log_level": "warn"}}"#,
    );
    let pod = |name: &str| {
        Some(Target::Pod {
            name: name.into(),
            container: None,
        })
    };

    let file_only = load(&options(
        dir.path(),
        &[
            ("MIRRORD_LAYER_CONFIG", "{bad"),
            ("MIRRORD_INTPROXY_ADDR", "x"),
        ],
        CliOverrides::default(),
    ))
    .unwrap();
    assert_eq!(file_only.target.path, pod("a"));
    assert_eq!(file_only.feature.fs.mode, FsMode::Write);

    let env = [
        ("MIRRORD_TARGET", "pod/b"),
        ("MIRRORD_FILE_MODE", "local"),
        ("MIRRORD_TARGET_NAMESPACE", "ns"),
        ("MIRRORD_AGENT_STARTUP_TIMEOUT", "7"),
        ("MIRRORD_SKIP_PROCESSES", "bash;node"),
        ("MIRRORD_OVERRIDE_ENV_VARS_INCLUDE", "A*;B"),
        ("MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE", "C"),
        ("MIRRORD_TCP_OUTGOING", "0"),
        ("MIRRORD_UDP_OUTGOING", "FALSE"),
        ("MIRRORD_REMOTE_DNS", "false"),
        ("MIRRORD_AGENT_LOG_LEVEL", ""),
    ];
    let with_env = load(&options(dir.path(), &env, CliOverrides::default())).unwrap();
    assert_eq!(with_env.target.path, pod("b"));
    assert_eq!(with_env.target.namespace.as_deref(), Some("ns"));
    assert_eq!(with_env.feature.fs.mode, FsMode::Local);
    assert_eq!(
        with_env.agent.log_level,
        LogLevel::Warn,
        "an empty variable is unset"
    );
    assert_eq!(with_env.agent.startup_timeout, 7);
    assert_eq!(with_env.skip_processes, ["bash", "node"]);
    assert_eq!(
        with_env.feature.env.include,
        Some(vec!["A*".to_owned(), "B".to_owned()])
    );
    assert_eq!(with_env.feature.env.exclude, ["C"]);
    assert!(!with_env.feature.network.outgoing.tcp && !with_env.feature.network.outgoing.udp);
    assert!(!with_env.feature.network.dns.enabled);

    let cli = CliOverrides {
        target: pod("c"),
        fs_mode: Some(FsMode::Read),
        agent_log_level: Some(LogLevel::Debug),
        tcp_outgoing: Some(true),
        ..CliOverrides::default()
    };
    let with_cli = load(&options(dir.path(), &env, cli)).unwrap();
    assert_eq!(with_cli.target.path, pod("c"));
    assert_eq!(with_cli.target.namespace.as_deref(), Some("ns"));
    assert_eq!(with_cli.feature.fs.mode, FsMode::Read);
    assert_eq!(with_cli.agent.log_level, LogLevel::Debug);
    assert!(with_cli.feature.network.outgoing.tcp);
}

#[test]
fn explicit_file_wins_over_the_default_file() {
    let dir = workspace(r#"{"target": "pod/a"}"#);
    std::fs::write(dir.path().join("other.toml"), "target = \"targetless\"\n").unwrap();
    let mut opts = options(dir.path(), &[], CliOverrides::default());
    opts.file = Some("other.toml".into());
    assert_eq!(load(&opts).unwrap().target.path, Some(Target::Targetless));
    // No file at all is fine: the defaults.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&options(empty.path(), &[], CliOverrides::default())).unwrap(),
        MirrordConfig::default()
    );
}

#[test]
fn bad_env_values_name_the_variable() {
    let dir = workspace(r#"{"feature": {"fs": "bad"}}"#);
    let env = [
        ("MIRRORD_TARGET", "pid/abc"),
        ("MIRRORD_FILE_MODE", "raed"),
        ("MIRRORD_TCP_OUTGOING", "yes"),
        ("MIRRORD_AGENT_STARTUP_TIMEOUT", "soon"),
        ("MIRRORD_AGENT_LOG_LEVEL", "loud"),
    ];
    let error = load(&options(dir.path(), &env, CliOverrides::default()))
        .unwrap_err()
        .to_string();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 6, "{error}");
    assert!(lines[0].ends_with(r#"mirrord.json: feature.fs: unknown variant "bad", expected one of local, localwithoverrides, read, write"#), "{error}");
    assert_eq!(lines[1], "environment variable MIRRORD_AGENT_LOG_LEVEL: unknown variant \"loud\", expected one of error, warn, info, debug, trace");
    assert_eq!(lines[2], "environment variable MIRRORD_AGENT_STARTUP_TIMEOUT: invalid value \"soon\", expected a number of seconds");
    assert_eq!(lines[3], "environment variable MIRRORD_FILE_MODE: unknown variant \"raed\", expected one of local, localwithoverrides, read, write");
    assert!(lines[4].starts_with("environment variable MIRRORD_TARGET: \"pid/abc\" is not a valid target; expected pid/<number>"), "{error}");
    assert_eq!(lines[5], "environment variable MIRRORD_TCP_OUTGOING: invalid value \"yes\", expected true, false, 1 or 0");
}

#[test]
fn later_checks_name_the_override_that_set_the_value() {
    let dir = workspace("{}");
    let env = [
        ("MIRRORD_TARGET_NAMESPACE", "Bad"),
        ("MIRRORD_AGENT_STARTUP_TIMEOUT", "0"),
    ];
    let error = load(&options(dir.path(), &env, CliOverrides::default())).unwrap_err();
    let origins: Vec<Origin> = error.problems().iter().map(|p| p.origin.clone()).collect();
    assert_eq!(
        origins,
        [
            Origin::Env("MIRRORD_TARGET_NAMESPACE".into()),
            Origin::Env("MIRRORD_AGENT_STARTUP_TIMEOUT".into())
        ]
    );
    let cli = CliOverrides {
        agent_startup_timeout: Some(0),
        ..CliOverrides::default()
    };
    let error = load(&options(dir.path(), &[], cli))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "--agent-startup-timeout: invalid value 0, expected a number of seconds of at least 1"
    );
}

#[test]
fn json_round_trip_of_defaults_and_layer_input_errors() {
    let defaults = MirrordConfig::default();
    assert_eq!(from_json(&to_json(&defaults)).unwrap(), defaults);
    let error = from_json(r#"{"agent": {"log_level": 1}}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(error, "agent.log_level: invalid type: found number 1, expected one of error, warn, info, debug, trace");
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

#[test]
fn format_is_known_for_every_load_path() {
    assert!(parse_tree("{}", Format::Json, Path::new("x")).is_ok());
}

mod properties {
    //! Parsers run inside the user's process (the layer): no input may panic them.

    use proptest::prelude::*;

    use crate::*;

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = s.parse::<Target>();
            let _ = s.parse::<AddressFilter>();
            let _ = HostPattern::new(&s);
            let _ = PathPattern::new(&s);
            let _ = from_json(&s);
        }

        #[test]
        fn filter_like_strings_never_panic(s in "(tcp://|udp://|x://)?\\[?[0-9a-f:./]{0,20}\\]?(:[0-9]{0,7})?") {
            let _ = s.parse::<AddressFilter>();
        }

        #[test]
        fn valid_targets_print_and_parse_back(
            kind in prop::sample::select(vec!["pod", "deployment", "statefulset", "daemonset", "job", "cronjob", "rollout"]),
            name in "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?",
            container in proptest::option::of("[a-z0-9]{1,10}"),
        ) {
            let text = match &container {
                Some(c) => format!("{kind}/{name}/container/{c}"),
                None => format!("{kind}/{name}"),
            };
            let target: Target = text.parse().unwrap();
            prop_assert_eq!(target.to_string(), text);
        }

        #[test]
        fn any_path_bytes_route(path in proptest::collection::vec(any::<u8>(), 0..64), write: bool) {
            let config = from_json(r#"{"feature": {"fs": {"mode": "write", "read_only": ["^/a"], "not_found": ["x$"]}}}"#).unwrap();
            let policy = policy::FsPolicy::new(&config.feature.fs).unwrap();
            let _ = policy.route(&path, write);
        }
    }
}
