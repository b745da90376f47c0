//! `mirrord dap` with real debug adapters: a breakpoint is hit in a program
//! that reads an env var and a file that exist only in the stand-in pod and
//! talks to a service on the pod's loopback; the variables view shows the
//! pod's values; `continue` runs to the end; nothing is left running.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mirrord_tests::dap::DapClient;
use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{
    alive, children, continued_for_layer, gcc, go_cache, leftovers, line_value, npm_dir,
    processes_mentioning, programs_dir, wait_with_timeout, Scratch, PROBE_EXPECTED,
};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(90);
const EXPECTED_OUTPUT: &str =
    "pod_name=standin-pod message=this file exists only in the pod echo=dap-ping";

fn program(name: &str) -> std::path::PathBuf {
    programs_dir().join("dap").join(name)
}

/// The 1-based line marked `BREAK`.
fn break_line(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).expect("read program");
    let index = text
        .lines()
        .position(|l| l.contains("BREAK"))
        .expect("BREAK");
    index as u64 + 1
}

/// `mirrord dap [flags] -- adapter...` as a DAP client's child.
fn proxy(flags: &[&str], adapter: &[&str]) -> DapClient {
    let mut command = Command::new(mirrord_tests::bin_path("mirrord"));
    command.arg("dap").args(flags).arg("--").args(adapter);
    DapClient::spawn(command)
}

fn initialize(client: &mut DapClient, extra: Value) -> Value {
    let mut args = json!({
        "clientID": "mirrord-tests", "adapterID": "test", "linesStartAt1": true,
        "columnsStartAt1": true, "pathFormat": "path",
    });
    if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        args.extend(extra.clone());
    }
    client.call("initialize", args)
}

/// After `launch` was sent: breakpoints, configurationDone, the stop; the
/// top frame's variables.
fn run_to_breakpoint(client: &mut DapClient, source: &Path) -> (Value, Vec<(String, String)>) {
    client.event("initialized", LONG);
    let line = break_line(source);
    let body = client.call(
        "setBreakpoints",
        json!({"source": {"path": source}, "breakpoints": [{"line": line}]}),
    );
    assert_eq!(body["breakpoints"][0]["verified"], true, "{body:#}");
    client.call("configurationDone", json!({}));
    let stopped = client.event("stopped", LONG);
    assert_eq!(stopped["body"]["reason"], "breakpoint", "{stopped:#}");
    let thread = stopped["body"]["threadId"].clone();
    let locals = client.top_frame_locals(&thread);
    (thread, locals)
}

fn local<'a>(locals: &'a [(String, String)], name: &str) -> &'a str {
    locals
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no variable {name} in {locals:?}"))
}

/// Continue to the end, disconnect, and check nothing is left.
fn finish(mut client: DapClient, thread: Value, pod: &Pod, scratch: &Scratch) {
    client.call("continue", json!({"threadId": thread}));
    let exited = client.event("exited", LONG);
    assert_eq!(exited["body"]["exitCode"], 0, "{exited:#}");
    client.event("terminated", LONG);
    let output = client.output();
    assert!(output.contains(EXPECTED_OUTPUT), "{output}");
    disconnect_and_check_nothing_is_left(client, Some(pod.pid), scratch);
}

/// `disconnect`, then: the proxy exits successfully, and neither the
/// session (intproxy, agent) nor anything started from `scratch` runs.
fn disconnect_and_check_nothing_is_left(
    mut client: DapClient,
    pod: Option<u32>,
    scratch: &Scratch,
) {
    client.call("disconnect", json!({}));
    client.close();
    let mut child = client.child.take().expect("proxy");
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "mirrord dap exited with {status}");
    check_nothing_is_left(child.id(), pod, scratch);
}

fn check_nothing_is_left(proxy_pid: u32, pod: Option<u32>, scratch: &Scratch) {
    let left = leftovers(proxy_pid, pod, Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
    let strays = processes_mentioning(&scratch.path().display().to_string());
    assert!(strays.is_empty(), "left running: {strays:?}");
}

/// A copy of a test program in a fresh directory, so stray processes can be
/// found by their path.
fn copy_program(scratch: &Scratch, name: &str) -> std::path::PathBuf {
    let to = scratch.path().join(name);
    std::fs::copy(program(name), &to).expect("copy program");
    to
}

#[test]
fn debugpy_hits_a_breakpoint_with_the_pods_env_files_and_network() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-debugpy");
    let source = copy_program(&scratch, "debuggee.py");
    let mut client = proxy(&[], &["python3", "-m", "debugpy.adapter"]);
    initialize(&mut client, json!({"adapterID": "debugpy"}));
    client.request(
        "launch",
        json!({
            "type": "debugpy", "request": "launch", "name": "test", "program": source,
            "cwd": scratch.path(), "console": "internalConsole", "justMyCode": true,
            "env": {"USER_VAR": "kept"},
            "mirrord": {"target": pod.target()},
        }),
    );
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(local(&locals, "pod_name"), "'standin-pod'");
    assert_eq!(
        local(&locals, "message"),
        "'this file exists only in the pod'"
    );
    assert_eq!(local(&locals, "echo"), "'dap-ping'");
    finish(client, thread, &pod, &scratch);
}

/// Compiles a C test program with debug info.
fn compile_c(scratch: &Scratch, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let source = copy_program(scratch, name);
    let exe = scratch.path().join(name.trim_end_matches(".c"));
    gcc(&source, &exe, &["-g", "-O0"]);
    (source, exe)
}

#[test]
fn lldb_vscode_hits_a_breakpoint_with_the_pods_env_files_and_network() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-lldb");
    let (source, exe) = compile_c(&scratch, "debuggee.c");
    let mut client = proxy(&["--target", &pod.target()], &["lldb-vscode-14"]);
    initialize(&mut client, json!({"adapterID": "lldb-vscode"}));
    let launch = client.request(
        "launch",
        json!({
            "type": "lldb-vscode", "request": "launch", "name": "test", "program": exe,
            "cwd": scratch.path(), "env": ["USER_VAR=kept"],
        }),
    );
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    let launched = client.response(launch, LONG);
    assert_eq!(launched["success"], true, "{launched:#}");
    assert!(
        local(&locals, "pod_name").contains("\"standin-pod\""),
        "{locals:?}"
    );
    assert!(
        local(&locals, "message").contains("this file exists only in the pod"),
        "{locals:?}"
    );
    assert!(local(&locals, "echo").contains("dap-ping"), "{locals:?}");
    finish(client, thread, &pod, &scratch);
}

/// Held by each test that starts `dlv dap --listen`: its port is chosen
/// free before dlv binds it, and two tests choosing at once can pick the
/// same one (a `--connect` then reaches the other test's dlv, which
/// serves one client and resets the second).
static DELVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A TCP port free on the loopback right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn delve_through_connect_sees_the_pods_env_files_and_network() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let _delve = DELVE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("dap-delve");
    let source = copy_program(&scratch, "debuggee.go");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut client = proxy(
        &["--target", &pod.target(), "--connect", &addr],
        &["dlv", "dap", "--listen", &addr],
    );
    initialize(&mut client, json!({"adapterID": "go"}));
    let launch = client.request(
        "launch",
        go_launch(
            &source,
            &scratch,
            json!({"GOCACHE": go_cache(), "GOFLAGS": "-mod=mod", "GO111MODULE": "off"}),
        ),
    );
    let launched = client.response(launch, LONG);
    assert_eq!(launched["success"], true, "{launched:#}");
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(local(&locals, "podName"), "\"standin-pod\"", "{locals:?}");
    assert_eq!(
        local(&locals, "message"),
        "\"this file exists only in the pod\"",
        "{locals:?}"
    );
    assert_eq!(local(&locals, "echo"), "\"dap-ping\"", "{locals:?}");
    client.call("continue", json!({"threadId": thread}));
    // dlv 1.20 leaves the program's stdout on its own stdout: no output check.
    client.event("terminated", LONG);
    disconnect_and_check_nothing_is_left(client, Some(pod.pid), &scratch);
}

/// A `go` launch configuration debugging `source`, built into `scratch`,
/// with `env`.
fn go_launch(source: &Path, scratch: &Scratch, env: Value) -> Value {
    json!({
        "type": "go", "request": "launch", "name": "test", "mode": "debug",
        "program": source, "cwd": scratch.path(),
        "output": scratch.path().join("debuggee-bin"),
        "env": env,
    })
}

/// Starts a debugpy session without a configured target; returns the
/// client and the launch request's seq.
fn debugpy_without_target(caps: Value, scratch: &Scratch) -> (DapClient, i64, std::path::PathBuf) {
    let source = copy_program(scratch, "debuggee.py");
    let mut client = proxy(&[], &["python3", "-m", "debugpy.adapter"]);
    initialize(&mut client, caps);
    let launch = client.request(
        "launch",
        json!({
            "type": "debugpy", "request": "launch", "name": "test", "program": source,
            "cwd": scratch.path(), "console": "internalConsole",
        }),
    );
    (client, launch, source)
}

#[test]
fn the_client_picks_the_target_with_mirrord_pick_target() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-pick");
    let (mut client, _, source) =
        debugpy_without_target(json!({"supportsMirrordPickTarget": true}), &scratch);
    let pick = client.reverse_request("mirrord/pickTarget", LONG);
    let targets: Vec<&str> = pick["arguments"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["path"].as_str())
        .collect();
    assert!(targets.contains(&pod.target().as_str()), "{pick:#}");
    assert!(targets.contains(&"targetless"), "{pick:#}");
    client.respond(&pick, true, json!({"target": pod.target()}));
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(local(&locals, "pod_name"), "'standin-pod'");
    finish(client, thread, &pod, &scratch);
}

#[test]
fn without_a_picker_the_launch_fails_with_the_list_of_targets() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-nopick");
    let (mut client, launch, _) = debugpy_without_target(json!({}), &scratch);
    let response = client.response(launch, LONG);
    assert_eq!(response["success"], false, "{response:#}");
    let message = response["message"].as_str().unwrap_or_default();
    assert!(message.contains(&pod.target()), "{message}");
    assert!(message.contains("mirrord dap --target"), "{message}");
    client.call("disconnect", json!({}));
    client.close();
    let mut child = client.child.take().expect("proxy");
    assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());
}

/// Runs a `runInTerminal` request as a terminal would; returns the child.
fn run_in_terminal(request: &Value) -> std::process::Child {
    let args: Vec<String> = request["arguments"]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().unwrap_or_default().to_owned())
        .collect();
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]);
    if let Some(cwd) = request["arguments"]["cwd"].as_str() {
        command.current_dir(cwd);
    }
    for (key, value) in request["arguments"]["env"]
        .as_object()
        .into_iter()
        .flatten()
    {
        match value.as_str() {
            Some(v) => command.env(key, v),
            None => command.env_remove(key),
        };
    }
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run in terminal")
}

#[test]
fn the_terminal_picker_runs_in_the_clients_terminal() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-tpick");
    let (mut client, _, source) =
        debugpy_without_target(json!({"supportsRunInTerminalRequest": true}), &scratch);
    let request = client.reverse_request("runInTerminal", LONG);
    let mut picker = run_in_terminal(&request);
    client.respond(&request, true, json!({"processId": picker.id()}));
    // Read the numbered list, answer with our pod's number.
    let mut stdout = std::io::BufReader::new(picker.stdout.take().expect("stdout"));
    let wanted = format!(") {}  ", pod.target());
    let number = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut stdout, &mut line).expect("read") > 0,
            "no {wanted}"
        );
        if let Some((n, _)) = line.trim().split_once(&wanted) {
            break n.to_owned();
        }
    };
    let mut stdin = picker.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, format!("{number}\n").as_bytes()).expect("answer");
    assert!(picker.wait().expect("picker").success());
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(local(&locals, "pod_name"), "'standin-pod'");
    finish(client, thread, &pod, &scratch);
}

#[test]
fn debugpy_in_an_integrated_terminal_gets_the_session_through_run_in_terminal() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-terminal");
    let source = copy_program(&scratch, "debuggee.py");
    let mut client = proxy(
        &["--target", &pod.target()],
        &["python3", "-m", "debugpy.adapter"],
    );
    initialize(&mut client, json!({"supportsRunInTerminalRequest": true}));
    client.request(
        "launch",
        json!({
            "type": "debugpy", "request": "launch", "name": "test", "program": source,
            "cwd": scratch.path(), "console": "integratedTerminal",
        }),
    );
    let request = client.reverse_request("runInTerminal", LONG);
    let env = &request["arguments"]["env"];
    assert_eq!(env["POD_NAME"], "standin-pod", "{request:#}");
    assert!(env["LD_PRELOAD"]
        .as_str()
        .is_some_and(|p| p.contains("libmirrord_layer.so")));
    let mut terminal = run_in_terminal(&request);
    client.respond(&request, true, json!({"processId": terminal.id()}));
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(
        local(&locals, "message"),
        "'this file exists only in the pod'"
    );
    client.call("continue", json!({"threadId": thread}));
    client.event("terminated", LONG);
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut terminal.stdout.take().expect("stdout"), &mut printed)
        .expect("terminal output");
    assert!(printed.contains(EXPECTED_OUTPUT), "{printed}");
    let _ = terminal.wait();
    disconnect_and_check_nothing_is_left(client, Some(pod.pid), &scratch);
}

#[test]
fn garbage_from_the_client_ends_the_session_with_a_message() {
    let mut client = proxy(
        &["--target", "targetless"],
        &["python3", "-m", "debugpy.adapter"],
    );
    initialize(&mut client, json!({}));
    let proxy_pid = client.child.as_ref().expect("proxy").id();
    let adapters = children(proxy_pid);
    assert_eq!(adapters.len(), 1, "{adapters:?}");
    client.send_raw(b"Content-Length: 12\r\n\r\n{not json!!}");
    let rest = client.wait_closed(LONG);
    let said: String = rest
        .iter()
        .filter_map(|m| m["body"]["output"].as_str())
        .collect();
    assert!(said.contains("malformed DAP message"), "{rest:#?}");
    assert!(rest.iter().any(|m| m["event"] == "terminated"), "{rest:#?}");
    let mut child = client.child.take().expect("proxy");
    wait_with_timeout(&mut child, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!alive(adapters[0]), "the adapter is still running");
}

#[test]
fn an_adapter_that_dies_mid_session_ends_everything_with_a_message() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-crash");
    let source = copy_program(&scratch, "debuggee.py");
    let mut client = proxy(
        &["--target", &pod.target()],
        &["python3", "-m", "debugpy.adapter"],
    );
    initialize(&mut client, json!({}));
    let proxy_pid = client.child.as_ref().expect("proxy").id();
    client.request(
        "launch",
        json!({"type": "debugpy", "request": "launch", "program": source, "cwd": scratch.path()}),
    );
    let (thread, _) = run_to_breakpoint(&mut client, &source);
    let adapter = children(proxy_pid)
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("debugpy.adapter"))
        })
        .expect("adapter process");
    // A request the adapter will never answer: the proxy must.
    let stack = client.call("stackTrace", json!({"threadId": thread}));
    let frame = stack["stackFrames"][0]["id"].clone();
    let pending = client.request(
        "evaluate",
        json!({"expression": "__import__('time').sleep(60)", "frameId": frame, "context": "repl"}),
    );
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: killing the adapter the test started through the proxy.
    unsafe { libc::kill(adapter as i32, libc::SIGKILL) };
    let response = client.response(pending, LONG);
    assert_eq!(response["success"], false, "{response:#}");
    let rest = client.wait_closed(LONG);
    assert!(rest.iter().any(|m| m["event"] == "terminated"), "{rest:#?}");
    assert!(client.output().contains("python3"), "{}", client.output());
    let mut child = client.child.take().expect("proxy");
    wait_with_timeout(&mut child, Duration::from_secs(15));
    check_nothing_is_left(proxy_pid, Some(pod.pid), &scratch);
}

#[test]
fn vscode_test_client_from_npm_hits_the_breakpoint_through_listen() {
    let npm = npm_dir("@vscode/debugadapter-testsupport");
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("dap-npm");
    let source = copy_program(&scratch, "debuggee.py");
    let (mut proxy, port) = listening_proxy(&["python3", "-m", "debugpy.adapter"]);
    let status = Command::new("node")
        .arg(npm.join("debugpy_breakpoint.js"))
        .arg(port.to_string())
        .arg(&source)
        .arg(pod.target())
        .status()
        .expect("node");
    // SAFETY: ending the proxy this test started.
    unsafe { libc::kill(proxy.id() as i32, libc::SIGTERM) };
    let proxy_pid = proxy.id();
    let ended = wait_with_timeout(&mut proxy, Duration::from_secs(15));
    assert!(status.success(), "the npm client failed: {status}");
    assert!(ended.success(), "mirrord dap --listen exited with {ended}");
    check_nothing_is_left(proxy_pid, Some(pod.pid), &scratch);
}

/// Every message's `seq`, in order, must be 1, 2, 3...
fn assert_gapless(what: &str, seqs: &[i64]) {
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected.as_slice(), "{what} numbering");
}

#[test]
fn added_and_consumed_messages_keep_both_sides_numbering_and_child_sessions_share_the_session() {
    let scratch = Scratch::new("dap-fake");
    let log = scratch.path().join("adapter-log.jsonl");
    let fake = program("fake_adapter.py").display().to_string();
    let mut client = proxy(&[], &["python3", &fake, log.to_str().expect("utf-8")]);
    initialize(&mut client, json!({"supportsProgressReporting": true}));
    let launch = client.request(
        "launch",
        json!({"type": "fake", "request": "launch", "cwd": scratch.path(),
               "env": {"USER_VAR": "kept", "UNSET_ME": null},
               "mirrord": {"target": "targetless"}}),
    );
    client.event("progressStart", LONG);
    client.event("progressEnd", LONG);
    let odd = client.event("vendor/odd", LONG);
    assert_eq!(odd["body"]["x"], "é");
    let child = client.reverse_request("startDebugging", LONG);
    let configuration = &child["arguments"]["configuration"];
    assert_eq!(configuration["mirrord"], false, "{child:#}");
    assert!(
        configuration["env"]["LD_PRELOAD"]
            .as_str()
            .is_some_and(|p| p.contains("libmirrord_layer.so")),
        "{child:#}"
    );
    let child_env_intproxy = configuration["env"]["MIRRORD_INTPROXY_ADDR"].clone();
    client.respond(&child, true, json!({}));
    let response = client.response(launch, LONG);
    assert_eq!(response["success"], true, "{response:#}");
    client.call("threads", json!({}));
    client.call("disconnect", json!({}));
    client.close();
    let mut process = client.child.take().expect("proxy");
    assert!(wait_with_timeout(&mut process, Duration::from_secs(15)).success());

    // The client saw one gapless numbering, the proxy's events included.
    let client_seqs: Vec<i64> = client
        .log
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    assert_gapless("client-side", &client_seqs);
    // The adapter saw the launch without the mirrord object, with the
    // session's environment and the user's variables (null kept).
    let adapter_log: Vec<Value> = std::fs::read_to_string(&log)
        .expect("adapter log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("log line"))
        .collect();
    let seen = |command: &str| {
        adapter_log
            .iter()
            .find(|m| m["command"] == command && m["type"] == "request")
            .cloned()
            .unwrap_or_else(|| panic!("the adapter never saw {command}: {adapter_log:#?}"))
    };
    let launched = seen("launch");
    let args = &launched["arguments"];
    assert!(args.get("mirrord").is_none(), "{launched:#}");
    assert_eq!(args["env"]["USER_VAR"], "kept");
    assert_eq!(args["env"]["UNSET_ME"], Value::Null);
    assert!(
        args["env"]["MIRRORD_INTPROXY_ADDR"].is_string(),
        "{launched:#}"
    );
    assert_eq!(
        args["env"]["MIRRORD_INTPROXY_ADDR"], child_env_intproxy,
        "the child session uses the parent's session"
    );
    // ...and a gapless numbering of its own, with its startDebugging
    // answered under the number it used.
    let adapter_seqs: Vec<i64> = adapter_log
        .iter()
        .filter_map(|m| m["seq"].as_i64())
        .collect();
    assert_gapless("adapter-side", &adapter_seqs);
    let asked = adapter_log
        .iter()
        .find_map(|m| m["startDebugging_seq"].as_i64())
        .expect("startDebugging seq");
    let answer = adapter_log
        .iter()
        .find(|m| m["type"] == "response" && m["command"] == "startDebugging")
        .expect("startDebugging answer");
    assert_eq!(answer["request_seq"], asked, "{answer:#}");
}

/// `mirrord dap --listen 127.0.0.1:0 -- adapter...`; returns it and its port.
fn listening_proxy(adapter: &[&str]) -> (std::process::Child, u16) {
    let mut proxy = Command::new(mirrord_tests::bin_path("mirrord"))
        .args(["dap", "--listen", "127.0.0.1:0", "--"])
        .args(adapter)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mirrord dap --listen");
    let mut stderr = std::io::BufReader::new(proxy.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("read");
    let port = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::stderr()));
    (proxy, port)
}

#[test]
fn streams_of_one_listening_proxy_with_the_same_config_share_one_session() {
    let scratch = Scratch::new("dap-listen");
    let log = scratch.path().join("adapter-log.jsonl");
    let fake = program("fake_adapter.py").display().to_string();
    let (mut proxy, port) = listening_proxy(&["python3", &fake, log.to_str().expect("utf-8")]);
    let addr = format!("127.0.0.1:{port}");
    let mut clients: Vec<DapClient> = (0..2).map(|_| DapClient::connect(&addr)).collect();
    for client in &mut clients {
        initialize(client, json!({}));
        let launch = client.request(
            "launch",
            json!({"type": "fake", "request": "launch", "cwd": scratch.path(),
                   "mirrord": {"target": "targetless"}}),
        );
        let child = client.reverse_request("startDebugging", LONG);
        client.respond(&child, true, json!({}));
        let response = client.response(launch, LONG);
        assert_eq!(response["success"], true, "{response:#}");
    }
    let intproxies: Vec<String> = std::fs::read_to_string(&log)
        .expect("adapter log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["command"] == "launch")
        .map(|m| {
            m["arguments"]["env"]["MIRRORD_INTPROXY_ADDR"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(intproxies.len(), 2, "{intproxies:?}");
    assert!(
        !intproxies[0].is_empty() && intproxies[0] == intproxies[1],
        "{intproxies:?}"
    );
    for client in &mut clients {
        client.call("disconnect", json!({}));
        client.close();
    }
    // SAFETY: ending the proxy this test started.
    unsafe { libc::kill(proxy.id() as i32, libc::SIGTERM) };
    let proxy_pid = proxy.id();
    assert!(wait_with_timeout(&mut proxy, Duration::from_secs(15)).success());
    check_nothing_is_left(proxy_pid, None, &scratch);
}

/// Under `mirrord dap` with `dlv`, a Go debuggee's exec'd dynamic child
/// (a C program) loads the layer and is served by it, as under `mirrord
/// exec`: it sees the pod's env, files, names and services, every call of
/// it the inherited filter stops continues in the supervisor (counted for
/// its PID), and the only layer that connects to the session is the
/// child's: not dlv's, nor that of the `go build` (with cgo: gcc, cc1, as,
/// ld) dlv runs, which all load it from the launch's environment.
#[test]
fn delve_debuggees_dynamic_child_is_served_by_its_layer() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let _delve = DELVE.lock().unwrap_or_else(|e| e.into_inner());
    let scratch = Scratch::new("dap-delve-child");
    let source = scratch.path().join("probe.go");
    std::fs::copy(programs_dir().join("probe.go"), &source).expect("copy probe.go");
    let child = scratch.path().join("probe-child");
    gcc(&programs_dir().join("probe.c"), &child, &["-O1"]);
    let out = scratch.path().join("probe.out");
    let log = scratch.path().join("proxy.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(mirrord_tests::bin_path("mirrord"));
    command
        .args(["dap", "--target", &pod.target(), "--connect", &addr])
        .args(["--", "dlv", "dap", "--listen", &addr])
        .env(
            "MIRRORD_LOG",
            "mirrord::syscall::layered=info,mirrord::intproxy::layers=info",
        )
        .stderr(std::fs::File::create(&log).expect("log file"));
    let mut client = DapClient::spawn(command);
    initialize(&mut client, json!({"adapterID": "go"}));
    let mut configuration = go_launch(
        &source,
        &scratch,
        json!({"GOCACHE": go_cache(), "GO111MODULE": "off", "CGO_ENABLED": "1",
               "PROBE_CHILD": child, "PROBE_OUT": out}),
    );
    configuration["mirrord"] = json!({"target": pod.target(),
        "feature": {"fs": {"mode": "read", "not_found": ["^/app/secrets"]}}});
    let launch = client.request("launch", configuration);
    let launched = client.response(launch, LONG);
    assert_eq!(launched["success"], true, "{launched:#}");
    client.event("initialized", LONG);
    client.call("configurationDone", json!({}));
    client.event("terminated", LONG);
    disconnect_and_check_nothing_is_left(client, Some(pod.pid), &scratch);

    let seen = std::fs::read_to_string(&out).expect("the probe's output");
    for prefix in ["", "child."] {
        for (key, expected) in PROBE_EXPECTED {
            let key = format!("{prefix}{key}");
            assert_eq!(line_value(&seen, &key), Some(*expected), "{key} in {seen}");
        }
    }
    assert_eq!(line_value(&seen, "child.layer"), Some("yes"), "{seen}");
    let child_pid = line_value(&seen, "child.pid").expect("the child's pid");
    let log = std::fs::read_to_string(&log).expect("the proxy's log");
    assert!(continued_for_layer(&log, child_pid) > 0, "{log}");
    // Every layer that connected is the child's.
    let connected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("layer connected"))
        .collect();
    assert_eq!(connected.len(), 1, "{log}");
    assert!(
        connected[0].contains(&format!("pid={child_pid} ")) && connected[0].contains("probe-child"),
        "{log}"
    );
}
