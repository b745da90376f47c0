//! The syscall interception path (seccomp user notification): a Go program
//! and a `gcc -static` C program, which `LD_PRELOAD` never reaches, see the
//! stand-in pod's environment, files, hosts entries and loopback services
//! through `mirrord exec`, and so do their children; a system without user
//! notification gets an error naming the requirement; Go's own `os` and
//! `net` package tests give the same results on the path as without it.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{
    gcc, go_build, go_cache, leftovers, mirrord_exec, programs_dir, run, Scratch, PROBE_EXPECTED,
};

const CONFIG: &str = r#"{"feature": {"fs": {"mode": "read", "not_found": ["^/app/secrets"]}}}"#;

/// Besides [`PROBE_EXPECTED`].
const EXPECTED: &[(&str, &str)] = &[
    // Unconnected UDP (`sendto`/`recvfrom`), answered from the pod's
    // loopback service, which the reply names as its source.
    ("udpto", "udpto-ping"),
    ("udpto.from", "127.0.0.2:7002"),
    // The same through `sendmsg`/`recvmsg` (Go's `WriteMsgUDP`/
    // `ReadMsgUDP`), the address inside the `msghdr`.
    ("udpmsg", "udpmsg-ping"),
    ("udpmsg.from", "127.0.0.2:7002"),
    // `/proc/self/fd/N` of a remote file names it, `/dev/fd/N` opens it
    // again; a remote directory's link names it too.
    ("fdlink", "/app/config/message.txt"),
    ("fdlink.reopen", "this file exists only in the pod"),
    ("fdlink.dir", "/app/config"),
];

/// A C probe's `sendmmsg`/`recvmmsg` (each message naming the pod's UDP
/// echo) reach the pod's service, whose address the replies name; the
/// parent's and the child's.
fn check_mmsg(out: &mirrord_tests::run::Output) {
    for prefix in ["", "child."] {
        for (key, value) in [
            ("udpmmsg", "udpmmsg-1 udpmmsg-2"),
            ("udpmmsg.from", "127.0.0.2:7002"),
        ] {
            let key = format!("{prefix}{key}");
            assert_eq!(out.value(&key), Some(value), "{key} in {out:#?}");
        }
    }
}

fn check_probe(cmd: &[&str], config: &str) -> mirrord_tests::run::Output {
    check_probe_with(cmd, config, &[], false)
}

/// [`check_probe`] with variables for `mirrord exec` (and the program);
/// `layered_child`: the child runs the layer, whose `/proc/self/fd/N` of a
/// remote file names its memfd (a limit of the layer, `layer/src/file`).
fn check_probe_with(
    cmd: &[&str],
    config: &str,
    env: &[(&str, &str)],
    layered_child: bool,
) -> mirrord_tests::run::Output {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("syscall");
    let config = scratch.write("mirrord.json", config);
    let mut command = Command::new(mirrord_tests::bin_path("mirrord"));
    command
        .args(["exec", "--target", &pod.target(), "-f"])
        .arg(&config)
        .arg("--")
        .args(cmd)
        .envs(env.iter().copied());
    let out = run(command, Duration::from_secs(120));
    assert!(out.status.success(), "{out:#?}");
    for prefix in ["", "child."] {
        for (key, value) in PROBE_EXPECTED.iter().chain(EXPECTED) {
            let key = format!("{prefix}{key}");
            let memfd_link = key == "child.fdlink" || key == "child.fdlink.dir";
            if layered_child && memfd_link {
                let memfd = out.value(&key).unwrap_or_default();
                assert!(memfd.starts_with("/memfd:mirrord:"), "{key} in {out:#?}");
                continue;
            }
            assert_eq!(out.value(&key), Some(*value), "{key} in {out:#?}");
        }
    }
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
    out
}

/// A Go program's connections name the pod's services as their peers
/// (`getpeername`), not the intproxy's relays.
fn check_go_peers(out: &mirrord_tests::run::Output) {
    for prefix in ["", "child."] {
        for (key, peer) in [
            ("tcp.peer", "127.0.0.2:7001"),
            ("udp.peer", "127.0.0.2:7002"),
        ] {
            let key = format!("{prefix}{key}");
            assert_eq!(out.value(&key), Some(peer), "{key} in {out:#?}");
        }
    }
}

fn probe(name: &str) -> String {
    programs_dir().join(name).display().to_string()
}

/// Builds `probe.go` into `scratch`; `cgo` false gives a static binary.
fn go_probe(scratch: &Scratch, cgo: bool) -> String {
    go_build(scratch, "probe.go", cgo)
}

fn static_c_probe(scratch: &Scratch) -> String {
    c_probe(scratch, "probe-static", &["-static"])
}

fn dynamic_c_probe(scratch: &Scratch) -> String {
    c_probe(scratch, "probe", &[])
}

fn c_probe(scratch: &Scratch, name: &str, flags: &[&str]) -> String {
    let exe = scratch.path().join(name);
    let flags: Vec<&str> = flags.iter().copied().chain(["-O1"]).collect();
    gcc(std::path::Path::new(&probe("probe.c")), &exe, &flags);
    exe.display().to_string()
}

#[test]
fn static_go_and_its_child_see_the_pod() {
    let scratch = Scratch::new("go");
    check_go_peers(&check_probe(&[&go_probe(&scratch, false)], CONFIG));
}

#[test]
fn cgo_go_and_its_child_see_the_pod() {
    let scratch = Scratch::new("cgo");
    check_go_peers(&check_probe(&[&go_probe(&scratch, true)], CONFIG));
}

#[test]
fn static_c_and_its_fork_exec_child_see_the_pod() {
    let scratch = Scratch::new("cstatic");
    check_mmsg(&check_probe(&[&static_c_probe(&scratch)], CONFIG));
}

/// A static program's exec'd dynamic child loads the layer (the static
/// program cannot) and is served by it: it sees the pod like its parent,
/// and every call of it that the inherited filter stops continues at once
/// in the supervisor, which counts them for its PID.
#[test]
fn a_static_programs_dynamic_child_is_served_by_its_layer() {
    let scratch = Scratch::new("cstatic-dyn");
    let parent = static_c_probe(&scratch);
    let child = dynamic_c_probe(&scratch);
    let out = check_probe_with(
        &[&parent, "--exec", &child],
        CONFIG,
        &[("MIRRORD_LOG", "mirrord::syscall::layered=info")],
        true,
    );
    check_mmsg(&out);
    assert_eq!(out.value("layer"), Some("no"), "{out:#?}");
    assert_eq!(out.value("child.layer"), Some("yes"), "{out:#?}");
    let child_pid = out.value("child.pid").expect("the child's pid");
    let continued = mirrord_tests::run::continued_for_layer(&out.stderr, child_pid);
    assert!(continued > 0, "{out:#?}");
    // The parent (served by the supervisor) is not counted as layered.
    let parent_pid = out.value("pid").expect("the parent's pid");
    assert!(
        !out.stderr.contains(&format!("pid={parent_pid} ")),
        "{out:#?}"
    );
}

/// A blocking receive waiting in the supervisor gives way to a caught
/// signal: `alarm(1)`, with a handler installed without `SA_RESTART`, ends
/// it with `EINTR` about a second later, after the handler ran (not at the
/// socket's 10 s `SO_RCVTIMEO`, and not never on a socket without one,
/// where the kernel turns the supervisor's `-ERESTARTSYS` into `EINTR`).
#[test]
fn a_waiting_receive_ends_with_eintr_for_a_caught_signal() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("alarm");
    let exe = static_c_probe(&scratch);
    let config = scratch.write("mirrord.json", CONFIG);
    for mode in ["--alarm", "--alarm-untimed"] {
        check_alarm(&pod, &config, &[&exe, mode]);
    }
}

fn check_alarm(pod: &Pod, config: &std::path::Path, cmd: &[&str]) {
    let out = mirrord_exec(&pod.target(), Some(config), cmd, Duration::from_secs(30));
    assert!(out.status.success(), "{out:#?}");
    assert_eq!(out.value("alarm"), Some("EINTR"), "{out:#?}");
    assert_eq!(out.value("alarm.handled"), Some("1"), "{out:#?}");
    let ms: u64 = out
        .value("alarm.ms")
        .and_then(|v| v.parse().ok())
        .expect("alarm.ms");
    assert!((900..5000).contains(&ms), "{ms} ms: {out:#?}");
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn a_dynamic_program_can_be_forced_onto_the_syscall_path() {
    let scratch = Scratch::new("cdyn");
    let exe = dynamic_c_probe(&scratch);
    let config = r#"{"feature": {"interception": "syscall", "fs": {"mode": "read", "not_found": ["^/app/secrets"]}}}"#;
    let out = check_probe(&[&exe], config);
    // Forced onto the path, it and its child stay there, without the layer.
    assert_eq!(out.value("layer"), Some("no"), "{out:#?}");
    assert_eq!(out.value("child.layer"), Some("no"), "{out:#?}");
}

/// A seccomp filter (classic mode, inherited) that makes `seccomp(2)`
/// fail with `ENOSYS`: what a kernel without seccomp looks like.
fn without_seccomp(cmd: &mut Command) {
    // SAFETY: the closure only makes async-signal-safe syscalls.
    unsafe {
        cmd.pre_exec(|| {
            let stmt = |code: u32, k: u32| libc::sock_filter {
                code: code as u16,
                jt: 0,
                jf: 0,
                k,
            };
            let prog = [
                stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_seccomp as u32,
                },
                stmt(
                    libc::BPF_RET | libc::BPF_K,
                    libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
                ),
                stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
            ];
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn without_user_notification_the_error_names_the_requirement() {
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    let scratch = Scratch::new("nonotif");
    let exe = static_c_probe(&scratch);
    let mut cmd = Command::new(mirrord_tests::bin_path("mirrord"));
    cmd.args(["exec", "--target", &pod.target(), "--", &exe]);
    without_seccomp(&mut cmd);
    let out = run(cmd, Duration::from_secs(60));
    assert!(!out.status.success(), "{out:#?}");
    assert!(
        out.stderr.contains("seccomp user notification")
            && out.stderr.contains("--interception layer"),
        "{out:#?}"
    );
    assert!(!out.stdout.contains("env="), "the program ran: {out:#?}");
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}

/// Go's own `os` and `net` package tests (`go test -c`, short mode), run
/// in their source directories: the same tests pass, skip and fail under
/// the syscall path, with every file and network call routed locally, as
/// without mirrord. This keeps the path transparent for what it does not
/// redirect.
#[test]
fn go_os_and_net_package_tests_give_the_same_results_under_the_syscall_path() {
    let scratch = Scratch::new("go-suites");
    let config = scratch.write(
        "local.json",
        r#"{"feature": {"interception": "syscall", "fs": {"mode": "local"},
            "network": {"outgoing": {"tcp": false, "udp": false}, "dns": false}}}"#,
    );
    // The filter is really installed under this config.
    let status = mirrord_exec(
        "targetless",
        Some(&config),
        &["cat", "/proc/self/status"],
        Duration::from_secs(60),
    );
    assert!(status.status.success(), "{status:#?}");
    assert!(
        status.stdout.contains("Seccomp_filters:\t1"),
        "{}",
        status.stdout
    );
    let goroot = Command::new("go")
        .args(["env", "GOROOT"])
        .output()
        .expect("go runs");
    let goroot = String::from_utf8_lossy(&goroot.stdout).trim().to_owned();
    for package in ["os", "net"] {
        let binary = scratch.path().join(format!("{package}.test"));
        let status = Command::new("go")
            .args(["test", "-c", "-o"])
            .arg(&binary)
            .arg(package)
            .env("GOCACHE", go_cache())
            .env("GO111MODULE", "off")
            .status()
            .expect("go runs");
        assert!(status.success(), "go test -c {package} failed");
        let dir = std::path::Path::new(&goroot).join("src").join(package);
        let suite = |under_mirrord: bool| {
            let mut command = if under_mirrord {
                let mut c = Command::new(mirrord_tests::bin_path("mirrord"));
                c.args(["exec", "--target", "targetless", "-f"])
                    .arg(&config)
                    .arg("--")
                    .arg(&binary);
                c
            } else {
                Command::new(&binary)
            };
            command
                .args(["-test.short", "-test.v", "-test.count=1"])
                .current_dir(&dir);
            let out = run(command, Duration::from_secs(300));
            (out.status.success(), outcomes(&out.stdout), out)
        };
        let (plain_ok, plain, plain_out) = suite(false);
        assert!(plain_ok, "{package} fails without mirrord: {plain_out:#?}");
        assert!(
            plain.len() > 100,
            "{package}: too few tests seen: {plain:?}"
        );
        let (ok, under, out) = suite(true);
        let differ: Vec<_> = plain
            .iter()
            .filter(|(name, result)| under.get(*name) != Some(*result))
            .map(|(name, result)| (name, result, under.get(name)))
            .collect();
        assert!(
            ok && differ.is_empty() && under.len() == plain.len(),
            "{package}: results differ under the syscall path: {differ:?}\n{out:#?}"
        );
        let left = leftovers(out.pid, None, Duration::from_secs(3));
        assert!(left.is_empty(), "left running: {left:?}");
    }
}

/// `--- PASS: Name (0.00s)` lines: test name → PASS, SKIP or FAIL.
fn outcomes(verbose: &str) -> std::collections::BTreeMap<String, String> {
    verbose
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("--- ")?;
            let (result, rest) = rest.split_once(": ")?;
            let name = rest.split_whitespace().next()?;
            Some((name.to_owned(), result.to_owned()))
        })
        .collect()
}

/// A static Go program writes files in the pod (fs `write`): whole files,
/// a file it reads back through the same fd, an append to an existing
/// file. Each is in the pod's root once closed, and reading it back after
/// the close sees what was written; the directory lists what is in the
/// pod, and a path under its open fd is the pod's.
#[test]
fn static_go_writes_and_lists_files_in_the_pod() {
    let spec = PodSpec {
        files: vec![
            ("/app/out/log.txt".into(), "first line\n".into()),
            ("/app/out/sub/inner.txt".into(), "inner\n".into()),
        ],
        ..PodSpec::default()
    };
    let pod = Pod::start(&spec).expect("pod");
    let scratch = Scratch::new("go-writer");
    let exe = go_build(&scratch, "writer.go", false);
    let config = scratch.write("mirrord.json", r#"{"feature": {"fs": {"mode": "write"}}}"#);
    let out = mirrord_exec(
        &pod.target(),
        Some(&config),
        &[&exe, "/app/out"],
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{out:#?}");
    for line in [
        r#"readback="created and read back\n""#,
        r#"whole.txt="written whole\n""#,
        r#"created.txt="created and read back\n""#,
        r#"log.txt="first line\nsecond line\n""#,
        "entries=created.txt:file,log.txt:file,sub:dir,whole.txt:file",
        r#"inner="inner\n" err=<nil>"#,
    ] {
        assert!(out.stdout.contains(line), "{line} in {out:#?}");
    }
    let in_pod = |name: &str| {
        std::fs::read_to_string(format!("/proc/{}/root/app/out/{name}", pod.pid))
            .unwrap_or_else(|e| format!("<{e}>"))
    };
    assert_eq!(in_pod("whole.txt"), "written whole\n");
    assert_eq!(in_pod("created.txt"), "created and read back\n");
    assert_eq!(in_pod("log.txt"), "first line\nsecond line\n");
    // Nothing was written on this machine.
    assert!(!std::path::Path::new("/app/out/whole.txt").exists());
    let left = leftovers(out.pid, Some(pod.pid), Duration::from_secs(3));
    assert!(left.is_empty(), "left running: {left:?}");
}
