//! `cargo bench -p mirrord-tests --bench incoming` (after `cargo build
//! --release --workspace`): HTTP requests stolen from the stand-in pod vs
//! the same local server hit directly, measured in the same run. Prints
//! requests/s and p50/p99 latency and their ratios; asserts nothing.
//!
//! | row | numerator / denominator | goal |
//! |---|---|---|
//! | throughput | requests/s through steal / direct | >= 0.5 |
//! | latency p50 | through steal - direct | <= +200 us |
//! | mirror | the pod's own server's requests/s with a session mirroring its port / without | >= 0.9 |
//!
//! The baseline is the same Python server on the host's loopback without
//! mirrord (the pod's own server closes every connection, so it is not a
//! like-for-like baseline); the stolen path adds the pod's NAT redirect,
//! the agent, the intproxy and their two hops each way.
//!
//! The mirror row measures what mirroring costs the target itself: the
//! pod's own server (one connection per request) loaded from the pod,
//! before a session mirrors its port and while one does (the agent
//! capturing and reassembling, the local program receiving copies), and
//! the CPU time per request each process spent (user + system from
//! `/proc`): requests/s swing by tens of percent on a shared machine, CPU
//! time far less.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mirrord_tests::pod::{spec::HTTP_PORT, Pod, PodSpec};
use mirrord_tests::run::{programs_dir, spawn_until_line, Scratch};

const DIRECT_PORT: u16 = 18_191;
const STOLEN_PORT: u16 = 18_190;
const MIRROR_PORT: u16 = 18_192;

fn main() {
    let mirrord = mirrord_tests::bench_binary("mirrord");
    let server = programs_dir().join("http_echo_server.py");
    let load = programs_dir().join("http_load.py");
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    mirror_row(&mirrord, &server, &pod);
    let scratch = Scratch::new("bench-incoming");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"mode": "steal", "port_mapping": [[{STOLEN_PORT}, {HTTP_PORT}]]}}}}}}}}"#
        ),
    );
    let direct = Running(
        spawn_until_line(
            Command::new("python3")
                .arg(&server)
                .arg(DIRECT_PORT.to_string())
                .stderr(Stdio::null()),
            "listening",
            Duration::from_secs(30),
        )
        .expect("direct server"),
    );
    let stolen = under_mirrord(&mirrord, &pod, &config, &server, STOLEN_PORT);
    println!("| load | direct req/s | steal req/s | ratio | direct p50/p99 us | steal p50/p99 us | p50 added |");
    println!("|---|---|---|---|---|---|---|");
    for (conns, requests) in [(1u32, 2000u32), (20, 200)] {
        let args = |port: u16| [port.to_string(), conns.to_string(), requests.to_string()];
        let direct = measure(Command::new("python3").arg(&load).args(args(DIRECT_PORT)));
        let steal = measure(pod.net_command("python3").arg(&load).args(args(HTTP_PORT)));
        println!(
            "| {conns} x {requests} keep-alive | {:.0} | {:.0} | {:.2} | {:.0}/{:.0} | {:.0}/{:.0} | {:+.0} us |",
            direct.rps,
            steal.rps,
            steal.rps / direct.rps,
            direct.p50,
            direct.p99,
            steal.p50,
            steal.p99,
            steal.p50 - direct.p50
        );
    }
    drop(stolen);
    drop(direct);
}

/// The pod's own server's requests/s without a mirroring session, then
/// with one, in this run.
fn mirror_row(mirrord: &Path, server: &Path, pod: &Pod) {
    let load = programs_dir().join("http_close_load.py");
    let scratch = Scratch::new("bench-mirror");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"mode": "mirror", "port_mapping": [[{MIRROR_PORT}, {HTTP_PORT}]]}}}}}}}}"#
        ),
    );
    let (conns, requests) = (10u32, 300u32);
    let run = || {
        let args = [
            HTTP_PORT.to_string(),
            conns.to_string(),
            requests.to_string(),
        ];
        measure(pod.net_command("python3").arg(&load).args(args)).rps
    };
    run(); // warm-up
    let pod_cpu = CpuClock::new(pod.pid);
    let without = run();
    let pod_alone = pod_cpu.lap();
    let mirrored = under_mirrord(mirrord, pod, &config, server, MIRROR_PORT);
    let agent = agent_of(pod.pid).expect("the session's agent runs");
    let clocks = [
        ("agent", CpuClock::new(agent)),
        (
            "intproxy",
            CpuClock::new(parent_of(agent).expect("the agent's parent")),
        ),
        ("program", CpuClock::new(mirrored.0.id())),
    ];
    pod_cpu.lap();
    let with = run();
    let pod_mirrored = pod_cpu.lap();
    // The copies trail the load (the program may be slower than the pod's
    // server): let them finish before reading the mirror's clocks.
    std::thread::sleep(Duration::from_secs(3));
    let spent: Vec<String> = clocks
        .iter()
        .map(|(name, clock)| {
            format!(
                "{name} {:.0}",
                clock.lap() * 1e6 / f64::from(conns * requests)
            )
        })
        .collect();
    drop(mirrored);
    println!("| load ({conns} x {requests}, a connection per request) | pod's server req/s | with mirror req/s | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| pod's own server | {without:.0} | {with:.0} | {:.2} |",
        with / without
    );
    println!();
    // CPU time is far less noisy than requests/s on a shared machine.
    let per = |secs: f64| secs * 1e6 / f64::from(conns * requests);
    println!(
        "| CPU us per request | pod's server alone | pod's server mirrored | mirror's processes |"
    );
    println!("|---|---|---|---|");
    println!(
        "| user + system | {:.0} | {:.0} | {} |",
        per(pod_alone),
        per(pod_mirrored),
        spent.join(", ")
    );
    println!();
}

/// User + system CPU seconds a process has used, read from `/proc`.
struct CpuClock {
    pid: u32,
    last: std::cell::Cell<f64>,
}

impl CpuClock {
    fn new(pid: u32) -> CpuClock {
        let clock = CpuClock {
            pid,
            last: std::cell::Cell::new(0.0),
        };
        clock.last.set(clock.now());
        clock
    }

    fn now(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name: state is 3rd, utime 14th, stime 15th.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i - 3)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(14) + ticks(15)) / hz
    }

    /// Seconds since the last lap.
    fn lap(&self) -> f64 {
        let now = self.now();
        now - self.last.replace(now)
    }
}

/// The `mirrord-agent` serving `target_pid` (not its watchdog).
fn agent_of(target_pid: u32) -> Option<u32> {
    let wanted = target_pid.to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_agent = args.first()?.ends_with(b"mirrord-agent");
            let serves = args
                .windows(2)
                .any(|w| w[0] == b"--target-pid" && w[1] == wanted.as_bytes());
            let watchdog = args.iter().any(|a| *a == b"--watchdog-chain");
            (is_agent && serves && !watchdog).then_some(pid)
        })
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `python3 SERVER PORT` under `mirrord exec -f CONFIG`, once it listens.
fn under_mirrord(mirrord: &Path, pod: &Pod, config: &Path, server: &Path, port: u16) -> Running {
    Running(
        spawn_until_line(
            Command::new(mirrord)
                .args(["exec", "--target", &pod.target(), "-f"])
                .arg(config)
                .args(["--", "python3"])
                .arg(server)
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
            "listening",
            Duration::from_secs(60),
        )
        .expect("the server under mirrord"),
    )
}

/// A server process, stopped with SIGTERM when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn measure(command: &mut Command) -> Figures {
    let out = command.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |key: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert_eq!(get("bad"), 0.0, "{stdout}");
    Figures {
        rps: get("rps"),
        p50: get("p50_us"),
        p99: get("p99_us"),
    }
}
