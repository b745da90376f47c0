//! `mirrord ide` driven over stdio by a real LSP client (npm's
//! `vscode-languageserver-protocol`, through `npm/ide_client.js`): config
//! diagnostics with their exact ranges, completion and hover in JSON, TOML
//! and YAML documents, and the
//! `mirrord/*` methods: launches prepared for four debug types against a
//! stand-in pod, a target picked by the editor, a session ended on request,
//! one ended by its debuggee exiting, and the rest ended when stdin closes,
//! with nothing left running.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{
    agent_pids, alive, mirrord_exec, mirrord_verify_config, npm_dir, processes_mentioning, Scratch,
};
use serde_json::{json, Value};

/// Runs the client on `scenario` and returns its report.
fn drive(scratch: &Scratch, scenario: Value) -> Value {
    let file = scratch.write("scenario.json", &scenario.to_string());
    let scenario = &scenario;
    let output = Command::new("node")
        .arg(npm_dir("vscode-languageserver-protocol").join("ide_client.js"))
        .arg(&file)
        // Only stdout is captured: a session process that outlived the
        // service keeps its stderr open, and must fail the test, not hang it.
        .stderr(Stdio::inherit())
        .output()
        .expect("node");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(report["failure"].is_null(), "the client failed: {report:#}");
    let exit = if scenario["killService"] == true {
        json!({"code": null, "signal": "SIGKILL"})
    } else {
        json!({"code": 0, "signal": null})
    };
    assert_eq!(
        report["serviceExit"], exit,
        "the service did not exit as expected: {report:#}"
    );
    report
}

/// The LSP range of `needle` in one-line-per-line `text` (ASCII).
fn range_of(text: &str, needle: &str) -> Value {
    for (line, content) in text.lines().enumerate() {
        if let Some(start) = content.find(needle) {
            return json!({
                "start": {"line": line, "character": start},
                "end": {"line": line, "character": start + needle.len()},
            });
        }
    }
    panic!("{needle:?} not in {text:?}");
}

/// The LSP position just after `marker` in `text` (first occurrence).
fn after(text: &str, marker: &str) -> (usize, usize) {
    for (line, content) in text.lines().enumerate() {
        if let Some(start) = content.find(marker) {
            return (line, start + marker.len());
        }
    }
    panic!("{marker:?} not in {text:?}");
}

struct Doc {
    name: &'static str,
    path: &'static str,
    text: &'static str,
    /// (the text the diagnostic marks, a part of its message, severity: 1 error, 2 warning)
    expected: &'static [(&'static str, &'static str, u64)],
}

const LAUNCH_JSON: &str = r#"{
  // JSONC: comments and trailing commas are fine here
  "version": "0.2.0",
  "configurations": [
    {"type": "debugpy", "request": "launch", "mirrord": {"feature": {"fs": "raed"}}},
    {"type": "node", "request": "launch", "mirrord": {"configFile": "m.json", "target": "pod/"}},
    {"type": "node", "request": "launch", "mirrord": {}},
  ],
}"#;

const DOCS: &[Doc] = &[
    Doc {
        name: "syntax",
        path: "mirrord.json",
        text: "{\n  \"agent\": {\"startup_timeout\": 5 6}\n}",
        expected: &[("6", "expected \",\" or \"}\"", 1)],
    },
    Doc {
        name: "commented",
        path: ".mirrord/commented.json",
        text: "// JSONC, as VS Code writes it\n{\n  /* a */ \"agnet\": {},\n}\n",
        expected: &[("\"agnet\"", "did you mean \"agent\"", 1)],
    },
    Doc {
        name: "unknown_key_and_value",
        path: ".mirrord/mirrord.json",
        text: r#"{"feture": {}, "agent": {"log_level": "loud"}}"#,
        expected: &[
            ("\"loud\"", "unknown variant \"loud\"", 1),
            ("\"feture\"", "did you mean \"feature\"", 1),
        ],
    },
    Doc {
        name: "wrong_type",
        path: "api.mirrord.json",
        text: r#"{"agent": {"startup_timeout": "soon"}}"#,
        expected: &[("\"soon\"", "invalid type: found string \"soon\"", 1)],
    },
    Doc {
        name: "regex",
        path: ".mirrord/regex.json",
        text: r#"{"feature": {"fs": {"local": ["^/ok", "(unclosed"]}}}"#,
        expected: &[("\"(unclosed\"", "invalid regex", 1)],
    },
    Doc {
        name: "target_path",
        path: ".mirrord/target.json",
        text: r#"{"target": {"path": "pot/x"}}"#,
        expected: &[("\"pot/x\"", "is not a valid target", 1)],
    },
    Doc {
        name: "port",
        path: ".mirrord/port.json",
        text: r#"{"feature": {"network": {"outgoing": {"filter": {"remote": ["10.0.0.1:70000"]}}}}}"#,
        expected: &[("\"10.0.0.1:70000\"", "port 70000 is out of range", 1)],
    },
    Doc {
        name: "missing_target",
        path: ".mirrord/missing.json",
        text: r#"{"target": "pid/4000000000"}"#,
        expected: &[("\"pid/4000000000\"", "no process pid/4000000000", 2)],
    },
    Doc {
        name: "valid",
        path: ".mirrord/valid.json",
        text: r#"{"target": "targetless", "feature": {"fs": "read"}}"#,
        expected: &[],
    },
    Doc {
        name: "launch",
        path: ".vscode/launch.json",
        text: LAUNCH_JSON,
        expected: &[
            ("\"raed\"", "unknown variant \"raed\"", 1),
            ("\"pod/\"", "mirrord.target", 1),
        ],
    },
    Doc {
        name: "toml",
        path: ".mirrord/mirrord.toml",
        text: "[feature]\nfs = \"raed\"\n\n[agnet]\nstartup_timeout = 5\n",
        expected: &[
            ("agnet", "did you mean \"agent\"", 1),
            ("\"raed\"", "unknown variant \"raed\"", 1),
        ],
    },
    Doc {
        name: "toml_syntax",
        path: "mirrord.toml",
        text: "[agent]\nstartup_timeout = 5 x\n",
        expected: &[("x", "expected newline", 1)],
    },
    Doc {
        name: "yaml",
        path: ".mirrord/mirrord.yaml",
        text: "agent:\n  log_level: loud\nfeature:\n  fs:\n    mdoe: read\n",
        expected: &[
            ("loud", "unknown variant \"loud\"", 1),
            ("mdoe", "did you mean \"mode\"", 1),
        ],
    },
    Doc {
        name: "yml_regex",
        path: "api.mirrord.yml",
        text: "feature:\n  fs:\n    local:\n      - ^/ok\n      - \"(unclosed\"\n",
        expected: &[("\"(unclosed\"", "invalid regex", 1)],
    },
];

const COMPLETE_ME: &str = r#"{"target": "targetless", "feature": {"fs": {"mode": ""}}, }"#;
const COMPLETE_TOML: &str = "[feature.fs]\nmode = \"read\"\n\n";
const COMPLETE_YAML: &str = "agent:\n  startup_timeout: 5\n  \nfeature:\n  fs:\n    mode: \n";

#[test]
fn config_diagnostics_completion_and_hover_over_stdio() {
    let scratch = Scratch::new("ide-edit");
    let workspace = scratch.path();
    let uri = |path: &str| format!("file://{}/{path}", workspace.display());
    let mut documents: Vec<Value> = DOCS
        .iter()
        .map(|d| json!({"name": d.name, "uri": uri(d.path), "languageId": "json", "text": d.text}))
        .collect();
    documents.push(json!({"name": "complete", "uri": uri("c.mirrord.json"), "languageId": "json", "text": COMPLETE_ME}));
    documents.push(json!({"name": "complete_toml", "uri": uri(".mirrord/c.toml"), "languageId": "toml", "text": COMPLETE_TOML}));
    documents.push(json!({"name": "complete_yaml", "uri": uri("mirrord.yaml"), "languageId": "yaml", "text": COMPLETE_YAML}));
    let at = |doc: &str, text: &str, marker: &str| {
        let (line, character) = after(text, marker);
        json!({"uri": uri(doc), "line": line, "character": character})
    };
    let with_name = |mut v: Value, name: &str| {
        v["name"] = json!(name);
        v
    };
    let scenario = json!({
        "binary": mirrord_tests::bin_path("mirrord"),
        "workspace": workspace,
        "documents": documents,
        "completions": [
            with_name(at("c.mirrord.json", COMPLETE_ME, "}}, "), "root_keys"),
            with_name(at("c.mirrord.json", COMPLETE_ME, "\"mode\": \""), "fs_mode"),
            with_name(at(".vscode/launch.json", LAUNCH_JSON, "\"mirrord\": {"), "launch_keys"),
            with_name(json!({"uri": uri(".mirrord/c.toml"), "line": 2, "character": 0}), "toml_fs_keys"),
            with_name(json!({"uri": uri("mirrord.yaml"), "line": 2, "character": 2}), "yaml_agent_keys"),
            with_name(at("mirrord.yaml", COMPLETE_YAML, "mode: "), "yaml_fs_mode"),
        ],
        "hovers": [
            with_name(at("c.mirrord.json", COMPLETE_ME, "\"mo"), "mode_key"),
            with_name(at("c.mirrord.json", COMPLETE_ME, "{\"targ"), "target_key"),
            with_name(at(".mirrord/c.toml", COMPLETE_TOML, "mo"), "toml_mode_key"),
        ],
        "launches": [],
    });
    let report = drive(&scratch, scenario);

    for doc in DOCS {
        let got = report["diagnostics"][doc.name]
            .as_array()
            .unwrap_or_else(|| panic!("no diagnostics for {}: {report:#}", doc.name));
        assert_eq!(got.len(), doc.expected.len(), "{}: {got:#?}", doc.name);
        for (diagnostic, (marked, message, severity)) in got.iter().zip(doc.expected) {
            assert_eq!(
                diagnostic["range"],
                range_of(doc.text, marked),
                "{}: {diagnostic:#}",
                doc.name
            );
            let text = diagnostic["message"].as_str().unwrap_or_default();
            assert!(text.contains(message), "{}: {diagnostic:#}", doc.name);
            assert_eq!(diagnostic["severity"], json!(severity), "{}", doc.name);
            assert_eq!(diagnostic["source"], "mirrord");
        }
    }

    let labels = |name: &str| -> Vec<String> {
        report["completions"][name]
            .as_array()
            .unwrap_or_else(|| panic!("no completion {name}: {report:#}"))
            .iter()
            .filter_map(|i| i["label"].as_str().map(str::to_owned))
            .collect()
    };
    // `target` and `feature` are already written.
    assert_eq!(
        labels("root_keys"),
        vec!["agent", "kube_context", "kubeconfig", "skip_processes"]
    );
    assert_eq!(
        labels("fs_mode"),
        vec![
            "\"local\"",
            "\"localwithoverrides\"",
            "\"read\"",
            "\"write\""
        ]
    );
    let read = report["completions"]["fs_mode"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["label"] == "\"read\""))
        .cloned()
        .unwrap_or_default();
    assert!(
        read["documentation"]["value"]
            .as_str()
            .is_some_and(|d| d.contains("read from the target")),
        "{read:#}"
    );
    assert_eq!(
        labels("launch_keys"),
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
    let agent = &report["completions"]["root_keys"][0];
    assert!(
        agent["documentation"]["value"]
            .as_str()
            .is_some_and(|d| d.contains("How the agent is run")),
        "{agent:#}"
    );

    assert_eq!(
        labels("toml_fs_keys"),
        vec!["local", "not_found", "read_only", "read_write"]
    );
    let local = &report["completions"]["toml_fs_keys"][0];
    assert_eq!(local["insertText"], "local = ", "{local:#}");
    let yaml_agent = labels("yaml_agent_keys");
    assert!(
        yaml_agent.contains(&"log_level".to_owned())
            && !yaml_agent.contains(&"startup_timeout".to_owned()),
        "{yaml_agent:?}"
    );
    let level = report["completions"]["yaml_agent_keys"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["label"] == "log_level"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(level["insertText"], "log_level: ", "{level:#}");
    assert_eq!(
        labels("yaml_fs_mode"),
        vec!["local", "localwithoverrides", "read", "write"]
    );

    let hover = |name: &str| {
        report["hovers"][name]["contents"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(hover("mode_key").starts_with("**mode**"), "{report:#}");
    assert!(
        hover("mode_key").contains("Default: `\"read\"`"),
        "{report:#}"
    );
    assert!(hover("target_key").starts_with("**target**"), "{report:#}");
    assert!(hover("toml_mode_key").starts_with("**mode**"), "{report:#}");
    assert_eq!(
        report["hovers"]["toml_mode_key"]["range"],
        range_of(COMPLETE_TOML, "mode")
    );
    assert_eq!(
        report["hovers"]["mode_key"]["range"],
        range_of(COMPLETE_ME, "\"mode\"")
    );
}

/// The commented template the VS Code extension's "Open or Create Config"
/// copies, read where the extension keeps it: `mirrord verify-config` and
/// `mirrord exec -f` accept it, and an error in a commented file is
/// reported at its line and column in the text as written.
#[test]
fn the_extensions_commented_config_template_is_accepted_by_the_cli() {
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../editors/vscode/templates/mirrord.json");
    let text = std::fs::read_to_string(&template).expect("the extension's config template");
    assert!(
        text.contains("//") && text.contains("/*") && text.contains(",\n    }"),
        "the template is expected to have comments and trailing commas: {text}"
    );
    let ok = mirrord_verify_config(&template);
    assert!(
        ok.status.success() && ok.stdout.starts_with("OK"),
        "{ok:#?}"
    );
    let exec = mirrord_exec(
        "targetless",
        Some(&template),
        &["true"],
        Duration::from_secs(60),
    );
    assert!(exec.status.success(), "{exec:#?}");

    let scratch = Scratch::new("ide-template");
    let broken_text = text.replacen("\"mode\": \"read\",", "\"mode\": \"read\" \"x\",", 1);
    let (line, column) = after(&broken_text, "\"mode\": \"read\" ");
    let broken = scratch.write("mirrord.json", &broken_text);
    let err = mirrord_verify_config(&broken);
    assert_eq!(err.status.code(), Some(1), "{err:#?}");
    let place = format!("{}:{}:{}", broken.display(), line + 1, column + 1);
    assert!(
        err.stderr.contains(&place),
        "expected {place} in {}",
        err.stderr
    );
}

const DEBUGGEE: &str = "import os; print('pod_name=%s message=%s user=%s' % (os.environ.get('POD_NAME'), open('/app/config/message.txt').read().strip(), os.environ.get('USER_VAR')))";

#[test]
fn launches_are_prepared_for_each_debug_type_and_their_sessions_end() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("ide-launch");
    let target = pod.target();
    let scenario = json!({
        "binary": mirrord_tests::bin_path("mirrord"),
        "workspace": scratch.path(),
        "pickAnswer": target,
        "documents": [],
        "completions": [],
        "hovers": [],
        "launches": [
            {"name": "debugpy", "configuration": {"type": "debugpy", "request": "launch", "program": "app.py", "env": {"USER_VAR": "kept"}}},
            {"name": "lldb", "configuration": {"type": "lldb-dap", "request": "launch", "program": "/bin/true", "env": ["USER_VAR=kept"], "mirrord": {"target": target}}},
            {"name": "cppdbg", "configuration": {"type": "cppdbg", "request": "launch", "program": "/bin/true", "environment": [{"name": "USER_VAR", "value": "kept"}], "mirrord": {"target": target}}},
            {"name": "node", "configuration": {"type": "node", "request": "launch", "program": "app.js", "mirrord": {"target": target, "feature": {"fs": "read"}}}},
            {"name": "disabled", "configuration": {"type": "node", "request": "launch", "mirrord": false}},
            {"name": "bad_target", "configuration": {"type": "node", "request": "launch", "mirrord": {"target": "pot/x"}}},
            {"name": "bad_config", "configuration": {"type": "node", "request": "launch", "mirrord": {"target": target, "feature": {"fs": "raed"}}}},
            {"name": "attach", "configuration": {"type": "debugpy", "request": "attach"}},
        ],
        "endSession": "cppdbg",
        "debuggee": {"launch": "debugpy", "command": ["python3", "-c", DEBUGGEE]},
    });
    let report = drive(&scratch, scenario);
    let launch = |name: &str| report["launches"][name]["result"].clone();
    let error = |name: &str| {
        report["launches"][name]["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} did not fail: {report:#}"))
            .to_owned()
    };

    // No target set: the editor was asked, with this machine's targets.
    assert_eq!(
        report["pickRequests"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
    let offered = report["pickRequests"][0]["targets"].to_string();
    assert!(offered.contains(&format!("\"{target}\"")), "{offered}");

    // Each debug type gets the session's environment in its own shape, the
    // user's variables kept, and is marked as prepared.
    let debugpy = launch("debugpy");
    let env = &debugpy["configuration"]["env"];
    assert_eq!(env["USER_VAR"], "kept", "{debugpy:#}");
    assert!(env["LD_PRELOAD"]
        .as_str()
        .is_some_and(|p| p.contains("libmirrord_layer.so")));
    assert_eq!(env["POD_NAME"], "standin-pod");
    assert_eq!(debugpy["configuration"]["mirrord"], false);
    let lldb = launch("lldb")["configuration"]["env"].clone();
    let list: Vec<&str> = lldb
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        list.contains(&"USER_VAR=kept")
            && list
                .iter()
                .any(|kv| kv.starts_with("MIRRORD_INTPROXY_ADDR=")),
        "{lldb:#}"
    );
    let cpp = launch("cppdbg")["configuration"]["environment"].clone();
    let names: Vec<&str> = cpp
        .as_array()
        .map(|l| l.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"USER_VAR") && names.contains(&"LD_PRELOAD"),
        "{cpp:#}"
    );
    assert!(launch("node")["configuration"]["env"]["MIRRORD_LAYER_CONFIG"].is_string());
    let disabled = launch("disabled");
    assert_eq!(disabled["sessionId"], Value::Null);
    assert_eq!(
        disabled["configuration"],
        json!({"type": "node", "request": "launch"})
    );

    // Errors a person can act on.
    assert!(error("bad_target").contains("mirrord.target"), "{report:#}");
    let bad = error("bad_config");
    assert!(
        bad.contains("feature.fs") && bad.contains("did you mean \"read\""),
        "{bad}"
    );
    assert!(error("attach").contains("launch"), "{report:#}");

    // Progress was reported while sessions started.
    let progress = report["progress"].as_array().cloned().unwrap_or_default();
    assert!(
        progress.iter().any(
            |p| p["done"] == true && p["message"].as_str().is_some_and(|m| m.contains(&target))
        ),
        "{progress:#?}"
    );

    // Four sessions ran, with their target and intproxy.
    let sessions = report["sessionsAfterLaunch"]["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(sessions.len(), 4, "{sessions:#?}");
    assert!(
        sessions.iter().all(|s| s["state"] == "running"
            && s["target"] == target.as_str()
            && s["since"].as_u64().is_some_and(|t| t > 0)),
        "{sessions:#?}"
    );
    let pids: Vec<u32> = sessions
        .iter()
        .filter_map(|s| s["pid"].as_u64())
        .map(|p| p as u32)
        .collect();

    // endSession ends one (and only once).
    let cpp_id = launch("cppdbg")["sessionId"].clone();
    let state_of = |list: &Value, id: &Value| {
        list["sessions"]
            .as_array()
            .and_then(|l| l.iter().find(|s| &s["sessionId"] == id))
            .map(|s| s["state"].clone())
    };
    assert_eq!(
        state_of(&report["sessionsAfterEnd"], &cpp_id),
        Some(json!("ended"))
    );
    assert!(
        report["endAgain"]
            .as_str()
            .is_some_and(|m| m.contains("already ended")),
        "{report:#}"
    );

    // The debuggee ran in the pod's context; its exit ended its session.
    assert_eq!(
        report["debuggee"]["stdout"].as_str().map(str::trim),
        Some("pod_name=standin-pod message=this file exists only in the pod user=kept"),
        "{report:#}"
    );
    let debugpy_id = debugpy["sessionId"].clone();
    assert!(report["debuggeeEndError"].is_null(), "{report:#}");
    assert!(
        report["ended"].as_array().is_some_and(|e| e
            .iter()
            .any(|n| n["sessionId"] == debugpy_id && n["reason"] == "debuggee exited")),
        "{report:#}"
    );
    assert_eq!(
        state_of(&report["sessionsAfterDebuggee"], &debugpy_id),
        Some(json!("ended"))
    );

    // stdin closed: the service ended the rest and exited; nothing is left.
    for pid in pids {
        assert!(!alive(pid), "intproxy {pid} is still running");
    }
    assert!(
        agent_pids(pod.pid).is_empty(),
        "agents left: {:?}",
        agent_pids(pod.pid)
    );
    let service = report["servicePid"].as_u64().unwrap_or_default();
    assert!(!alive(service as u32));
    let strays = processes_mentioning(&scratch.path().display().to_string());
    assert!(strays.is_empty(), "left running: {strays:?}");
}

#[test]
fn a_killed_service_leaves_no_session_of_a_launch_that_never_ran() {
    let scratch = Scratch::new("ide-killed");
    let scenario = json!({
        "binary": mirrord_tests::bin_path("mirrord"),
        "workspace": scratch.path(),
        "documents": [],
        "completions": [],
        "hovers": [],
        "launches": [
            {"name": "never_run", "configuration": {"type": "node", "request": "launch", "mirrord": {"target": "targetless"}}},
        ],
        "killService": true,
    });
    let report = drive(&scratch, scenario);
    let sessions = report["sessionsAfterLaunch"]["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(sessions.len(), 1, "{report:#}");
    let pid = sessions[0]["pid"].as_u64().unwrap_or_default() as u32;
    // The intproxy waits for its debuggee only while the service lives:
    // its grace period and a few ticks, not forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let outlived = alive(pid);
    if outlived {
        // SAFETY: ending the intproxy this test's service started, so a
        // failure leaves nothing behind.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    }
    assert!(!outlived, "intproxy {pid} outlived the killed service");
    let agents: Vec<u64> = report["sessionChildren"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert!(!agents.is_empty(), "the session had no agent: {report:#}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while agents.iter().any(|a| alive(*a as u32)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let left: Vec<&u64> = agents.iter().filter(|a| alive(**a as u32)).collect();
    assert!(left.is_empty(), "agents left: {left:?}");
}

/// A Go configuration (VS Code's Go extension starts `dlv` itself): the
/// prepared configuration's `dlvToolPath` runs the real dlv under the
/// syscall path, so the static Go program it debugs reads the pod's file,
/// resolves and reaches its services; dlv itself (and what it runs) stays
/// local, and the session ends with the debugger.
#[test]
fn a_go_configuration_debugs_through_the_syscall_path() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("ide-go");
    let program = mirrord_tests::run::go_build(&scratch, "probe.go", false);
    // Its child: a dynamic C program, served by its layer.
    let child = scratch.path().join("probe-child");
    mirrord_tests::run::gcc(
        &mirrord_tests::run::programs_dir().join("probe.c"),
        &child,
        &["-O1"],
    );
    // dlv's own terminal, driven from stdin: run to the end, then quit.
    let dlv_session = format!(
        "printf 'continue\\nexit\\n' | \"$0\" exec --allow-non-terminal-interactive=true {program}"
    );
    let scenario = json!({
        "binary": mirrord_tests::bin_path("mirrord"),
        "workspace": scratch.path(),
        "pickAnswer": pod.target(),
        "documents": [], "completions": [], "hovers": [],
        "launches": [
            {"name": "go", "configuration": {"type": "go", "request": "launch", "mode": "exec",
             "program": program, "env": {"PROBE_CHILD": child},
             "mirrord": {"target": pod.target(),
             "feature": {"fs": {"mode": "read", "not_found": ["^/app/secrets"]}}}}},
        ],
        "debuggee": {"launch": "go", "command": ["sh", "-c", dlv_session, "${dlvToolPath}"]},
    });
    let report = drive(&scratch, scenario);
    let go = &report["launches"]["go"]["result"];
    let tool = go["configuration"]["dlvToolPath"]
        .as_str()
        .unwrap_or_default();
    assert!(tool.ends_with("/dlv"), "{report:#}");
    // The layer's variables, for the debuggee's dynamic children (the
    // static Go program itself never loads it; dlv and its toolchain keep
    // it inert), and the marker that keeps it inert in Go programs.
    let env = &go["configuration"]["env"];
    assert!(
        env["LD_PRELOAD"]
            .as_str()
            .is_some_and(|p| p.contains("libmirrord_layer")),
        "{report:#}"
    );
    assert_eq!(env["MIRRORD_SYSCALL_PATH"], "1", "{report:#}");
    let stdout = report["debuggee"]["stdout"].as_str().unwrap_or_default();
    for line in [
        "env=standin-pod",
        "file=this file exists only in the pod",
        "notfound=ERR:ENOENT",
        "dns=127.0.0.2",
        "tcp=tcp-ping",
        "tcp.peer=127.0.0.2:7001",
        "child.layer=yes",
        "child.env=standin-pod",
        "child.file=this file exists only in the pod",
        "child.notfound=ERR:ENOENT",
        "child.tcp=tcp-ping",
    ] {
        // The first line follows dlv's prompt.
        let found = stdout
            .lines()
            .any(|l| l.strip_prefix("(dlv) ").unwrap_or(l) == line);
        assert!(found, "{line} in {report:#}");
    }
    assert!(report["debuggeeEndError"].is_null(), "{report:#}");
    let strays = processes_mentioning(&scratch.path().display().to_string());
    assert!(strays.is_empty(), "left running: {strays:?}");
    assert!(agent_pids(pod.pid).is_empty(), "agents left");
}
