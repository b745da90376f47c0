//! Bad input and dying parts: a clear error, no hang, nothing left behind.

use std::process::Command;
use std::time::{Duration, Instant};

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{
    agent_pids, leftovers, mirrord_exec, mirrord_verify_config, run, Scratch,
};

#[test]
fn bad_config_names_the_key_and_starts_nothing() {
    let scratch = Scratch::new("badcfg");
    let config = scratch.write("mirrord.json", r#"{"feature": {"fs": {"mode": "raed"}}}"#);
    let out = mirrord_exec(
        "targetless",
        Some(&config),
        &["true"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{out:#?}");
    assert!(out.stderr.contains("feature.fs.mode"), "{}", out.stderr);
    assert!(out.stderr.contains("raed"), "{}", out.stderr);
    assert!(leftovers(out.pid, None, Duration::ZERO).is_empty());
}

#[test]
fn verify_config_prints_ok_or_every_problem() {
    let scratch = Scratch::new("verify");
    let good = scratch.write(
        "good.json",
        r#"{"target": "pid/1", "feature": {"fs": "write"}}"#,
    );
    let bad = scratch.write(
        "bad.json",
        r#"{"feture": {}, "agent": {"log_level": "loud"}}"#,
    );
    let ok = mirrord_verify_config(&good);
    assert!(
        ok.status.success() && ok.stdout.starts_with("OK"),
        "{ok:#?}"
    );
    let err = mirrord_verify_config(&bad);
    assert_eq!(err.status.code(), Some(1));
    assert!(
        err.stderr.contains("feture") && err.stderr.contains("loud"),
        "{}",
        err.stderr
    );
}

#[test]
fn unknown_target_pid_is_a_clear_error() {
    let pid = (4_000_000..4_194_304)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid");
    let out = mirrord_exec(
        &format!("pid/{pid}"),
        None,
        &["true"],
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains(&format!("pid/{pid}")) && out.stderr.contains("no process"),
        "{}",
        out.stderr
    );
    assert!(leftovers(out.pid, Some(pid), Duration::ZERO).is_empty());
}

#[test]
fn missing_program_is_a_clear_error_and_the_session_ends() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let out = mirrord_exec(
        &pod.target(),
        None,
        &["/nonexistent/program"],
        Duration::from_secs(30),
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(
        out.stderr.contains("/nonexistent/program"),
        "{}",
        out.stderr
    );
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}

/// The program reads a remote file, says so (and marks `go.ready`), waits
/// for `go`, then reads again: after the part under test died, the second
/// read must fail fast.
const READ_TWICE: &str = r#"
import os, sys, time, errno
go = sys.argv[1]
print("first=" + open("/app/config/message.txt").read().strip(), flush=True)
open(go + ".ready", "w").close()
while not os.path.exists(go):
    time.sleep(0.05)
start = time.time()
try:
    open("/app/config/message.txt").read()
    print("second=ok", flush=True)
except OSError as e:
    print("second=ERR:" + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
print("seconds=%.1f" % (time.time() - start), flush=True)
"#;

fn survive(kill: impl FnOnce(&mut Pod)) {
    let mut pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("die");
    let script = scratch.write("read_twice.py", READ_TWICE);
    let go = scratch.path().join("go");
    let mut cmd = Command::new(mirrord_tests::bin_path("mirrord"));
    cmd.args(["exec", "--target", &pod.target(), "--", "python3"])
        .arg(&script)
        .arg(&go);
    let pod_pid = pod.pid;
    let waiter = std::thread::spawn(move || run(cmd, Duration::from_secs(60)));
    // Wait for the first read (however loaded the machine), then kill,
    // then let the program go on.
    let ready = scratch.path().join("go.ready");
    let started = Instant::now();
    while !ready.exists() && started.elapsed() < Duration::from_secs(45) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent_running(pod_pid), "no agent runs for the pod");
    kill(&mut pod);
    std::fs::write(&go, "").expect("go");
    let out = waiter.join().expect("runner");
    assert_eq!(
        out.value("first"),
        Some("this file exists only in the pod"),
        "{out:#?}"
    );
    let second = out.value("second").unwrap_or_default();
    assert!(
        second.starts_with("ERR:"),
        "second read after the kill: {second}\n{out:#?}"
    );
    let seconds: f64 = out
        .value("seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(99.0);
    assert!(seconds < 10.0, "the failing call took {seconds} s");
    let left = leftovers(out.pid, Some(pod_pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}

fn agent_running(target: u32) -> bool {
    !agent_pids(target).is_empty()
}

#[test]
fn target_that_exits_mid_run_fails_calls_fast_and_leaves_nothing() {
    survive(|pod| pod.stop());
}

#[test]
fn killed_agent_fails_calls_fast_and_leaves_nothing() {
    survive(|pod| {
        for pid in agent_pids(pod.pid) {
            // SAFETY: signalling a test-owned process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
}
