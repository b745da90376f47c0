//! Precedence file < `MIRRORD_*` env < CLI, and errors naming the variable or flag.

use std::path::Path;

use crate::*;

fn options(dir: &Path, env: &[(&str, &str)], cli: CliOverrides) -> LoadOptions {
    LoadOptions {
        file: None,
        cwd: dir.to_owned(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cli,
        inline: None,
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
        ("MIRRORD_INTERCEPTION", "layer"),
        ("MIRRORD_INCOMING_MODE", "off"),
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
    assert_eq!(with_env.feature.interception, Interception::Layer);
    assert_eq!(with_env.feature.network.incoming.mode, IncomingMode::Off);

    let cli = CliOverrides {
        target: pod("c"),
        fs_mode: Some(FsMode::Read),
        agent_log_level: Some(LogLevel::Debug),
        tcp_outgoing: Some(true),
        interception: Some(Interception::Syscall),
        incoming_mode: Some(IncomingMode::Steal),
        ..CliOverrides::default()
    };
    let with_cli = load(&options(dir.path(), &env, cli)).unwrap();
    assert_eq!(with_cli.target.path, pod("c"));
    assert_eq!(with_cli.target.namespace.as_deref(), Some("ns"));
    assert_eq!(with_cli.feature.fs.mode, FsMode::Read);
    assert_eq!(with_cli.agent.log_level, LogLevel::Debug);
    assert!(with_cli.feature.network.outgoing.tcp);
    assert_eq!(with_cli.feature.interception, Interception::Syscall);
    assert_eq!(with_cli.feature.network.incoming.mode, IncomingMode::Steal);
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
fn inline_config_replaces_the_file_and_flags_still_win() {
    let dir = workspace(r#"{"feature": {"fs": {"mode": "write"}}}"#);
    let mut opts = options(
        dir.path(),
        &[],
        CliOverrides {
            target: Some(Target::Targetless),
            ..Default::default()
        },
    );
    opts.inline =
        Some(serde_json::json!({"target": "pid/1", "feature": {"fs": {"mode": "local"}}}));
    let config = load(&opts).unwrap();
    assert_eq!(config.feature.fs.mode, FsMode::Local);
    assert_eq!(config.target.path, Some(Target::Targetless));

    opts.inline = Some(serde_json::json!({"feature": {"fs": {"mod": "local"}}}));
    let err = load(&opts).unwrap_err().to_string();
    assert!(
        err.contains("feature.fs") && err.contains("\"mod\""),
        "{err}"
    );
}

#[test]
fn the_default_file_may_be_jsonc_and_its_errors_point_into_it() {
    let dir = workspace("{\n  // fs from the target\n  \"feature\": {\"fs\": \"write\",},\n}\n");
    let config = load(&options(dir.path(), &[], CliOverrides::default())).unwrap();
    assert_eq!(config.feature.fs.mode, FsMode::Write);

    let dir = workspace("{\n  /* é */ \"feature\": {\"fs\": \"write\" \"x\"},\n}\n");
    let err = load(&options(dir.path(), &[], CliOverrides::default()))
        .unwrap_err()
        .to_string();
    let file = dir.path().join(DEFAULT_CONFIG_FILE);
    // Columns count characters (serde_json counts bytes: `é` is two).
    assert!(err.contains(&format!("{}:2:37:", file.display())), "{err}");
}
