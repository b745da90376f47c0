//! With everything configured local, the layer is invisible: a program
//! observes the same fd numbers, errno values, threads, signals, fork and
//! exec results, and CPython's own test suite gives the same results.

use std::process::Command;
use std::time::Duration;

use mirrord_tests::run::{gcc, leftovers, mirrord_exec, programs_dir, run, Output, Scratch};

const ALL_LOCAL: &str = r#"{
  "feature": {
    "env": false,
    "fs": "local",
    "network": { "incoming": "off", "outgoing": false, "dns": false }
  }
}"#;

fn plain_and_mirrored(cmd: &[&str], timeout: Duration) -> (Output, Output) {
    let scratch = Scratch::new("transparent");
    let config = scratch.write("mirrord.json", ALL_LOCAL);
    let mut plain = Command::new(cmd[0]);
    plain.args(&cmd[1..]);
    let plain = run(plain, timeout);
    let mirrored = mirrord_exec("targetless", Some(&config), cmd, timeout);
    assert!(leftovers(mirrored.pid, None, Duration::from_secs(3)).is_empty());
    (plain, mirrored)
}

#[test]
fn a_c_program_sees_the_same_fds_errnos_threads_and_signals() {
    let scratch = Scratch::new("transparency-c");
    let exe = scratch.path().join("transparency");
    gcc(
        &programs_dir().join("transparency.c"),
        &exe,
        &["-O1", "-pthread"],
    );
    let work = Scratch::new("transparency-dir");
    let exe = exe.to_str().expect("utf-8");
    let dir = work.path().to_str().expect("utf-8");
    let (plain, mirrored) = plain_and_mirrored(&[exe, dir], Duration::from_secs(60));
    assert!(plain.status.success(), "{plain:#?}");
    assert!(plain.stdout.lines().count() > 30, "{plain:#?}");
    assert_eq!(
        mirrored.stdout, plain.stdout,
        "stderr under mirrord:\n{}",
        mirrored.stderr
    );
    assert_eq!(mirrored.status.code(), plain.status.code());
}

/// CPython's tests of the calls the layer hooks: file I/O, `os`, `posix`,
/// `fcntl`, sockets and subprocesses.
#[test]
fn cpython_test_suite_gives_the_same_results() {
    let tests = [
        "test_fileio",
        "test_os",
        "test_posix",
        "test_fcntl",
        "test_subprocess",
    ];
    let mut cmd = vec!["python3", "-m", "test", "--timeout", "300"];
    cmd.extend(tests);
    let (plain, mirrored) = plain_and_mirrored(&cmd, Duration::from_secs(600));
    let summary = |out: &Output| -> Vec<String> {
        out.stdout
            .lines()
            .filter(|l| {
                l.starts_with("Total tests:") || l.starts_with("Result:") || l.contains(" failed")
            })
            .map(str::to_owned)
            .collect()
    };
    let expected = summary(&plain);
    assert!(
        expected.iter().any(|l| l.starts_with("Total tests:")),
        "{plain:#?}"
    );
    assert_eq!(
        summary(&mirrored),
        expected,
        "under mirrord:\n{}",
        mirrored.stdout
    );
}
