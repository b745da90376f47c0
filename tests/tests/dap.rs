//! `mirrord dap` with real debug adapters: a breakpoint is hit in a program
//! that reads an env var and a file that exist only in the stand-in pod and
//! talks to a service on the pod's loopback; the variables view shows the
//! pod's values; `continue` runs to the end; nothing is left running.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mirrord_tests::dap::DapClient;
use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{leftovers, programs_dir, Scratch};
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
    client.call("disconnect", json!({}));
    client.close();
    let mut child = client.child.take().expect("proxy");
    let proxy_pid = child.id();
    let status = wait_with_timeout(&mut child, Duration::from_secs(15));
    assert!(status.success(), "mirrord dap exited with {status}");
    let left = leftovers(proxy_pid, Some(pod.pid), Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
    let strays = processes_mentioning(&scratch.path().display().to_string());
    assert!(strays.is_empty(), "left running: {strays:?}");
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("mirrord dap did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(path.join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if cmdline.contains(needle) && !zombie {
            found.push(cmdline);
        }
    }
    found
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
            "mirrord": {"target": pod.target(), "feature": {"network": {"outgoing": {"filter": {"remote": ["127.0.0.1:7001"]}}}}},
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
    let status = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(&exe)
        .arg(&source)
        .status()
        .expect("gcc");
    assert!(status.success());
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

/// A TCP port free on the loopback right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn delve_through_connect_sees_the_pods_env() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
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
        json!({
            "type": "go", "request": "launch", "name": "test", "mode": "debug",
            "program": source, "cwd": scratch.path(),
            "output": scratch.path().join("debuggee-bin"),
            "env": {"GOCACHE": scratch.path().join("gocache"), "GOFLAGS": "-mod=mod", "GO111MODULE": "off"},
        }),
    );
    let launched = client.response(launch, LONG);
    assert_eq!(launched["success"], true, "{launched:#}");
    let (thread, locals) = run_to_breakpoint(&mut client, &source);
    assert_eq!(local(&locals, "podName"), "\"standin-pod\"", "{locals:?}");
    client.call("continue", json!({"threadId": thread}));
    // dlv 1.20 leaves the program's stdout on its own stdout: no output check.
    client.event("terminated", LONG);
    client.call("disconnect", json!({}));
    client.close();
    let mut child = client.child.take().expect("proxy");
    let proxy_pid = child.id();
    assert!(wait_with_timeout(&mut child, Duration::from_secs(15)).success());
    let left = leftovers(proxy_pid, Some(pod.pid), Duration::from_secs(5));
    assert!(left.is_empty(), "left running: {left:?}");
    let strays = processes_mentioning(&scratch.path().display().to_string());
    assert!(strays.is_empty(), "left running: {strays:?}");
}
