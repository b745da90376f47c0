//! A Python, a Node.js, a Java and a C program, each with a child process,
//! see the stand-in pod's environment, files, hosts entries and loopback
//! services through `mirrord exec`, and nothing is left running afterwards.

use std::process::Command;
use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{leftovers, mirrord_exec, programs_dir, run, Scratch};

const CONFIG: &str = r#"{"feature": {"fs": {"mode": "read", "not_found": ["^/app/secrets"]}}}"#;

fn check_probe(cmd: &[&str]) {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("probe");
    let config = scratch.write("mirrord.json", CONFIG);
    let out = mirrord_exec(&pod.target(), Some(&config), cmd, Duration::from_secs(120));
    assert!(out.status.success(), "{out:#?}");
    for prefix in ["", "child."] {
        for (key, value) in mirrord_tests::run::PROBE_EXPECTED {
            let key = format!("{prefix}{key}");
            assert_eq!(out.value(&key), Some(*value), "{key} in {out:#?}");
        }
    }
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}

fn probe(name: &str) -> String {
    programs_dir().join(name).display().to_string()
}

#[test]
fn without_mirrord_the_probe_sees_none_of_the_pod() {
    let out = run(
        {
            let mut c = Command::new("python3");
            c.arg(probe("probe.py")).arg("solo.");
            c
        },
        Duration::from_secs(60),
    );
    assert_ne!(out.value("solo.env"), Some("standin-pod"));
    assert_eq!(out.value("solo.file"), Some("ERR:ENOENT"), "{out:#?}");
    assert!(
        out.value("solo.dns").is_some_and(|v| v.starts_with("ERR")),
        "{out:#?}"
    );
}

#[test]
fn python_and_its_subprocess_see_the_pod() {
    check_probe(&["python3", &probe("probe.py")]);
}

#[test]
fn node_and_its_child_see_the_pod() {
    check_probe(&["node", &probe("probe.js")]);
}

#[test]
fn c_and_its_fork_exec_child_see_the_pod() {
    let scratch = Scratch::new("c");
    let exe = scratch.path().join("probe");
    compile(
        Command::new("gcc")
            .arg("-O1")
            .arg("-o")
            .arg(&exe)
            .arg(probe("probe.c")),
    );
    check_probe(&[exe.to_str().expect("utf-8 path")]);
}

#[test]
fn java_and_its_child_jvm_see_the_pod() {
    let scratch = Scratch::new("java");
    compile(
        Command::new("javac")
            .arg("-d")
            .arg(scratch.path())
            .arg(probe("Probe.java")),
    );
    let classes = scratch.path().to_str().expect("utf-8 path");
    check_probe(&["java", "-cp", classes, "Probe"]);
}

fn compile(cmd: &mut Command) {
    let status = cmd.status().expect("compiler runs");
    assert!(status.success(), "{cmd:?} failed");
}
