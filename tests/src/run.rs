//! Running `mirrord exec` from a test: a config file in a temporary
//! directory, a deadline, captured output, and the check that nothing of
//! the session is left running afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The program's PID (the same as `mirrord exec`'s, which execs it).
    pub pid: u32,
    pub elapsed: Duration,
}

impl Output {
    /// The value of a `key=value` line, if printed.
    pub fn value(&self, key: &str) -> Option<&str> {
        line_value(&self.stdout, key)
    }
}

/// The value of a `key=value` line of `text` (a probe's output).
pub fn line_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

/// What every probe program (`programs/probe.*`) prints in the stand-in
/// pod under mirrord with `not_found: ["^/app/secrets"]`.
pub const PROBE_EXPECTED: &[(&str, &str)] = &[
    ("env", "standin-pod"),
    ("file", "this file exists only in the pod"),
    ("notfound", "ERR:ENOENT"),
    ("dns", "127.0.0.2"),
    ("tcp", "tcp-ping"),
    ("udp", "udp-ping"),
];

/// How many stopped calls of process `pid` the seccomp supervisor let
/// continue for its layer, from the intproxy's log
/// (`MIRRORD_LOG=mirrord::syscall::layered=info`); panics when the log
/// has no such line.
pub fn continued_for_layer(log: &str, pid: &str) -> u64 {
    let served = log
        .lines()
        .find(|l| l.contains("served by its layer") && l.contains(&format!("pid={pid} ")))
        .unwrap_or_else(|| panic!("no 'served by its layer' line for {pid}: {log}"));
    served
        .split_once("continued=")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {served:?}"))
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "mirrord-test-{tag}-{}-{}",
            std::process::id(),
            rand_u64()
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("write scratch file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    u64::from_ne_bytes(buf)
}

/// `mirrord exec [-f config] --target T -- cmd...`, with a deadline.
pub fn mirrord_exec(
    target: &str,
    config: Option<&Path>,
    cmd: &[&str],
    timeout: Duration,
) -> Output {
    let mut command = Command::new(crate::bin_path("mirrord"));
    command.arg("exec").args(["--target", target]);
    if let Some(config) = config {
        command.arg("-f").arg(config);
    }
    command.arg("--").args(cmd);
    run(command, timeout)
}

/// `mirrord verify-config FILE`, with a deadline.
pub fn mirrord_verify_config(file: &Path) -> Output {
    let mut command = Command::new(crate::bin_path("mirrord"));
    command.arg("verify-config").arg(file);
    run(command, Duration::from_secs(30))
}

/// Runs a command to completion (killing it at the deadline) and captures
/// its output. stderr is read to its end, which also waits for every
/// process that inherited it (the intproxy does).
pub fn run(mut command: Command, timeout: Duration) -> Output {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let status = child.wait().expect("wait");
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!("{command:?} timed out after {timeout:?} ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        pid,
        elapsed,
    }
}

/// The session processes of the program `pid` (its intproxy, and agents
/// for `target_pid`) still running after `grace`.
pub fn leftovers(pid: u32, target_pid: Option<u32>, grace: Duration) -> Vec<String> {
    let deadline = Instant::now() + grace;
    loop {
        let found = session_processes(pid, target_pid);
        if found.is_empty() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn session_processes(pid: u32, target_pid: Option<u32>) -> Vec<String> {
    let watch = format!("--watch-pid\0{pid}\0");
    let target = target_pid.map(|t| format!("--target-pid\0{t}\0"));
    live_processes()
        .filter(|(_, cmdline)| {
            cmdline.contains(&watch)
                || (cmdline.contains("mirrord-agent")
                    && target.as_ref().is_some_and(|t| cmdline.contains(t)))
        })
        .map(|(_, cmdline)| cmdline.replace('\0', " "))
        .collect()
}

/// The PIDs of running agents for the local target `target_pid`.
pub fn agent_pids(target_pid: u32) -> Vec<i32> {
    let target = format!("--target-pid\0{target_pid}\0");
    // The agent itself, not the intproxy (whose arguments name the agent's
    // path and the same target).
    live_processes()
        .filter(|(_, cmdline)| {
            let program = cmdline.split('\0').next().unwrap_or_default();
            program.ends_with("mirrord-agent") && cmdline.contains(&target)
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// Starts `command` with stdout piped and waits (at most `timeout`) for its
/// first line, which must start with `prefix`; the child is killed and the
/// line returned as the error otherwise.
pub fn spawn_until_line(
    command: &mut Command,
    prefix: &str,
    timeout: Duration,
) -> Result<std::process::Child, String> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(timeout).unwrap_or_default();
    if line.starts_with(prefix) {
        Ok(child)
    } else {
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{command:?} printed {line:?}, not {prefix:?}..."))
    }
}

/// Waits for `child` to exit, killing it (and failing) at the deadline.
pub fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            panic!("{} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    live_processes()
        .map(|(_, cmdline)| cmdline.replace('\0', " "))
        .filter(|cmdline| cmdline.contains(needle))
        .collect()
}

/// The PIDs of `pid`'s children (zombies included).
pub fn children(pid: u32) -> Vec<u32> {
    let parent = |stat: &str| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok())
    };
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            (parent(&stat) == Some(pid)).then_some(child)
        })
        .collect()
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    !is_zombie(Path::new(&format!("/proc/{pid}")))
}

/// Every process that has not exited, with its NUL-separated command line.
fn live_processes() -> impl Iterator<Item = (i32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (!is_zombie(&entry.path()))
                .then(|| (pid, String::from_utf8_lossy(&cmdline).into_owned()))
        })
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// `tests/npm`, checked to hold the npm package `package` (installed by
/// `npm ci` there, as scripts/test-all.sh does).
pub fn npm_dir(package: &str) -> PathBuf {
    let npm = Path::new(env!("CARGO_MANIFEST_DIR")).join("npm");
    assert!(
        npm.join("node_modules").join(package).exists(),
        "run `npm ci` in {} first (scripts/test-all.sh does)",
        npm.display()
    );
    npm
}

/// The directory of the test programs (`tests/programs`).
pub fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

/// Compiles the C program `source` into `exe` with gcc and `flags`
/// (before `-o`); panics with gcc's exit status if it fails.
pub fn gcc(source: &Path, exe: &Path, flags: &[&str]) {
    let status = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(exe)
        .arg(source)
        .status()
        .expect("gcc runs");
    assert!(
        status.success(),
        "gcc {flags:?} {} failed: {status}",
        source.display()
    );
}

/// One Go build cache for every test and benchmark of a run, beside the
/// cargo target directory the test binary runs from (`target/go-cache`):
/// the standard library is compiled once per run, not once per test (a
/// fresh cache made a `dlv` launch take most of a minute on a loaded
/// machine). Go's cache is safe for concurrent builds.
pub fn go_cache() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary>
    match exe.ancestors().nth(3) {
        Some(target) if !target.as_os_str().is_empty() => target.join("go-cache"),
        _ => std::env::temp_dir().join("mirrord-tests-go-cache"),
    }
}

/// Builds the Go program `source` (in the programs directory) into
/// `scratch` and returns the binary's path; `cgo` false gives a static
/// binary, as a plain `go build` does.
pub fn go_build(scratch: &Scratch, source: &str, cgo: bool) -> String {
    let name = source.trim_end_matches(".go");
    let exe = scratch
        .path()
        .join(format!("{name}-{}", if cgo { "cgo" } else { "go" }));
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg(programs_dir().join(source))
        .env("GOCACHE", go_cache())
        .env("GO111MODULE", "off")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .status()
        .expect("go runs");
    assert!(status.success(), "go build {source} failed");
    exe.display().to_string()
}
