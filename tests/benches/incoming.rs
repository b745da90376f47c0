//! `cargo bench -p mirrord-tests --bench incoming` (after `cargo build
//! --release --workspace`): HTTP requests stolen from the stand-in pod vs
//! the same local server hit directly, measured in the same run. Prints
//! requests/s and p50/p99 latency and their ratios; asserts nothing.
//! `-- mirror` or `-- steal` runs that part only.
//!
//! | row | numerator / denominator | goal |
//! |---|---|---|
//! | throughput | requests/s through steal / direct (split placement) | >= 0.5 |
//! | latency p50 | through steal - direct, one connection (split placement) | <= +200 us |
//! | mirror | the pod's own server's requests/s with a session mirroring its port / without (split placement) | >= 0.9 |
//!
//! The baseline is the same Python server on the host's loopback without
//! mirrord (the pod's own server closes every connection, so it is not a
//! like-for-like baseline); the stolen path adds the pod's NAT redirect,
//! the agent, the intproxy and their two hops each way. Both rows run in
//! two placements (below): *split*, the agent alone on CPU 0 (the
//! target's node) and everything else on CPU 1, direct and stolen alike
//! (the clients and the program; in a cluster the intproxy and the
//! program are on the developer's machine); and *shared*, every process
//! on both CPUs, where five processes take turns on two CPUs and the
//! concurrent load measures that contention.
//!
//! The mirror rows measure what mirroring costs the target itself: the
//! pod's own server (one connection per request) loaded from the pod by
//! `http_close_load.c` (in C so the client costs little next to the
//! server: a Python asyncio client spent twice the server's CPU per
//! request and set the pace itself), without a session mirroring its
//! port and while one does (the agent capturing and reassembling, the
//! local program receiving copies), and the CPU time per request each
//! process spent (user + system from `/proc`): requests/s swing by tens
//! of percent on a shared machine, CPU time far less. Two placements:
//!
//! - *split* (what the goal is judged on): CPU 0 is the target's node,
//!   running the pod's server and the agent; CPU 1 is everything else,
//!   the clients and, at idle priority, the developer's side (the
//!   intproxy and the local program). In a cluster those run on the
//!   developer's machine, not the node, and the clients elsewhere again;
//!   with two CPUs, idle priority is how the developer's side is kept
//!   from taking the clients' CPU. Needs two CPUs; skipped with one.
//! - *shared*: every process on every CPU, as the test machine runs them:
//!   the developer's side competes with the pod for the same two CPUs,
//!   which no cluster does.
//!
//! Robust to load: every figure is measured in interleaved rounds (steal:
//! direct and stolen back to back, in alternating order; mirror: a
//! session started and stopped in every round, measured with and without
//! in alternating order), each ratio or difference is taken within its
//! round, and the table shows the median with the spread (min-max) over
//! rounds: load from other work falls on both sides of a round alike,
//! and a disturbed round shows as spread instead of moving the median.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mirrord_tests::pod::{spec::HTTP_PORT, Pod, PodSpec};
use mirrord_tests::run::{alive, gcc, programs_dir, spawn_until_line, Scratch};
use mirrord_tests::stats::spread;

const DIRECT_PORT: u16 = 18_191;
const STOLEN_PORT: u16 = 18_190;
const MIRROR_PORT: u16 = 18_192;

/// Rounds of each comparison.
const ROUNDS: usize = 7;
const MIRROR_ROUNDS: usize = 5;
/// (connections, requests per connection) of each steal load, per round.
const STEAL_LOADS: [(u32, u32); 2] = [(1, 500), (20, 50)];
/// (connections, requests each) of the mirror load, a connection per request.
const MIRROR_LOAD: (u32, u32) = (10, 2000);
/// The split placement's CPUs: the target's node, and everything else.
const NODE_CPU: usize = 0;
const ELSEWHERE_CPU: usize = 1;

fn main() {
    let mirrord = mirrord_tests::bench_binary("mirrord");
    let server = programs_dir().join("http_echo_server.py");
    let pod = Pod::start(&PodSpec::default()).expect("pod");
    // `cargo bench` passes `--bench`; a part's name picks that part only.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("mirror") {
        mirror_rows(&mirrord, &pod);
    }
    if wanted("steal") {
        steal_rows(&mirrord, &server, &pod);
    }
}

/// Requests through steal vs the same server hit directly, interleaved,
/// in each placement.
fn steal_rows(mirrord: &Path, server: &Path, pod: &Pod) {
    let scratch = Scratch::new("bench-incoming");
    let config = scratch.write(
        "mirrord.json",
        &format!(
            r#"{{"feature": {{"network": {{"incoming": {{"mode": "steal", "port_mapping": [[{STOLEN_PORT}, {HTTP_PORT}]]}}}}}}}}"#
        ),
    );
    if split_possible() {
        steal_row(Placement::Split, mirrord, server, pod, &config);
    }
    steal_row(Placement::Shared, mirrord, server, pod, &config);
}

fn steal_row(placement: Placement, mirrord: &Path, server: &Path, pod: &Pod, config: &Path) {
    let split = placement == Placement::Split;
    // Split: the program, direct or under mirrord, runs where the
    // clients run (the developer's side, at normal priority: it answers);
    // only the agent is on the node's CPU.
    let elsewhere = |command: &mut Command| {
        if split {
            on_cpus(command, ELSEWHERE_CPU, false);
        }
    };
    let load = programs_dir().join("http_load.py");
    let mut direct_server = Command::new("python3");
    direct_server
        .arg(server)
        .arg(DIRECT_PORT.to_string())
        .stderr(Stdio::null());
    elsewhere(&mut direct_server);
    let direct = Running(
        spawn_until_line(&mut direct_server, "listening", Duration::from_secs(30))
            .expect("direct server"),
    );
    let stolen = under_mirrord(mirrord, pod, config, server, STOLEN_PORT, elsewhere);
    if split {
        let agent = agent_of(pod.pid).expect("the session's agent runs");
        pin_all(agent, &[NODE_CPU]);
    }
    // [load][round] = (direct, steal)
    let mut figures: Vec<Vec<(Figures, Figures)>> =
        STEAL_LOADS.iter().map(|_| Vec::new()).collect();
    for round in 0..ROUNDS {
        for (i, (conns, requests)) in STEAL_LOADS.iter().enumerate() {
            let args = |port: u16| [port.to_string(), conns.to_string(), requests.to_string()];
            let direct = || {
                let mut client = Command::new("python3");
                client.arg(&load).args(args(DIRECT_PORT));
                elsewhere(&mut client);
                measure(&mut client)
            };
            let steal = || {
                let mut client = pod.net_command("python3");
                client.arg(&load).args(args(HTTP_PORT));
                elsewhere(&mut client);
                measure(&mut client)
            };
            let pair = if round % 2 == 0 {
                let d = direct();
                (d, steal())
            } else {
                let s = steal();
                (direct(), s)
            };
            figures[i].push(pair);
        }
    }
    drop(stolen);
    drop(direct);
    let name = match placement {
        Placement::Split => {
            "split: the agent on CPU 0; clients, the intproxy and the program on CPU 1"
        }
        Placement::Shared => "shared: every process on every CPU",
    };
    println!("Steal vs direct, {name} ({ROUNDS} interleaved rounds; median (min-max) over rounds; ratio and p50 added taken within each round)");
    println!();
    println!("| load | direct req/s | steal req/s | ratio (goal >= 0.5) | direct p50/p99 us | steal p50/p99 us | p50 added (goal <= +200 us) |");
    println!("|---|---|---|---|---|---|---|");
    for ((conns, requests), rounds) in STEAL_LOADS.iter().zip(&figures) {
        let of = |f: fn(&(Figures, Figures)) -> f64| spread(rounds.iter().map(f).collect());
        println!(
            "| {conns} x {requests} keep-alive | {} | {} | {} | {:.0}/{:.0} | {:.0}/{:.0} | {} us |",
            of(|(d, _)| d.rps).show(0),
            of(|(_, s)| s.rps).show(0),
            of(|(d, s)| s.rps / d.rps).show(2),
            of(|(d, _)| d.p50).median,
            of(|(d, _)| d.p99).median,
            of(|(_, s)| s.p50).median,
            of(|(_, s)| s.p99).median,
            of(|(d, s)| s.p50 - d.p50).show(0),
        );
    }
    println!();
}

/// One mirror round's figures.
struct MirrorRound {
    /// The pod's server's requests/s without and with the session.
    without: f64,
    with: f64,
    /// CPU us per request of the pod's server, without and with.
    pod_alone: f64,
    pod_mirrored: f64,
    /// CPU us per request of the agent, the intproxy and the program.
    mirror: [f64; 3],
    /// Requests the program received a copy of.
    copies: f64,
}

/// Where the mirror rows' processes run (see the module's notes).
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    Split,
    Shared,
}

/// What every mirror round uses.
struct MirrorSetup<'a> {
    mirrord: &'a Path,
    pod: &'a Pod,
    /// The program: records every copy it receives, so lost copies show.
    server: PathBuf,
    /// The pod's load client, built.
    load: PathBuf,
    config: PathBuf,
    /// Where the program records its copies.
    record: PathBuf,
}

fn mirror_rows(mirrord: &Path, pod: &Pod) {
    let scratch = Scratch::new("bench-mirror");
    let setup = MirrorSetup {
        mirrord,
        pod,
        server: programs_dir().join("http_record_server.py"),
        load: scratch.path().join("http_close_load"),
        config: scratch.write(
            "mirrord.json",
            &format!(
                r#"{{"feature": {{"network": {{"incoming": {{"mode": "mirror", "port_mapping": [[{MIRROR_PORT}, {HTTP_PORT}]]}}}}}}}}"#
            ),
        ),
        record: scratch.path().join("copies"),
    };
    gcc(
        &programs_dir().join("http_close_load.c"),
        &setup.load,
        &["-O2", "-pthread"],
    );
    if split_possible() {
        pin_all(pod.pid, &[NODE_CPU]);
        mirror_row(Placement::Split, &setup);
        pin_all(pod.pid, &(0..cpus()).collect::<Vec<_>>());
    }
    mirror_row(Placement::Shared, &setup);
}

/// The pod's own server's requests/s without a mirroring session and with
/// one, interleaved over rounds (a session started and stopped in each).
fn mirror_row(placement: Placement, setup: &MirrorSetup) {
    let MirrorSetup {
        mirrord,
        pod,
        server,
        load,
        config,
        record,
    } = setup;
    let split = placement == Placement::Split;
    let (conns, requests) = MIRROR_LOAD;
    let per = |secs: f64| secs * 1e6 / f64::from(conns * requests);
    let run = || {
        let mut client = pod.net_command(&load.to_string_lossy());
        client.args([
            HTTP_PORT.to_string(),
            conns.to_string(),
            requests.to_string(),
        ]);
        if split {
            on_cpus(&mut client, ELSEWHERE_CPU, false);
        }
        measure(&mut client).rps
    };
    run(); // warm-up
    let pod_cpu = CpuClock::new(pod.pid);
    let mut rounds = Vec::new();
    for round in 0..MIRROR_ROUNDS {
        let alone = || {
            pod_cpu.lap();
            let rps = run();
            (rps, per(pod_cpu.lap()))
        };
        let mirrored = || {
            std::fs::write(record, "").expect("write the record file");
            let session = under_mirrord(mirrord, pod, config, server, MIRROR_PORT, |cmd| {
                cmd.arg(record);
                if split {
                    on_cpus(cmd, ELSEWHERE_CPU, true);
                }
            });
            let agent = agent_of(pod.pid).expect("the session's agent runs");
            let intproxy = parent_of(agent).expect("the agent's parent");
            if split {
                // The agent runs on the target's node, at normal priority.
                pin_all(agent, &[NODE_CPU]);
            }
            let clocks = [agent, intproxy, session.0.id()].map(CpuClock::new);
            pod_cpu.lap();
            let rps = run();
            let pod = per(pod_cpu.lap());
            // The copies trail the load (the program may be slower than
            // the pod's server, and split, it runs at idle priority): let
            // them finish before reading the mirror's clocks.
            settle(&clocks);
            let mirror = clocks.map(|clock| per(clock.lap()));
            let copies = std::fs::read_to_string(record).map_or(0, |r| r.lines().count());
            drop(session);
            // The next round must not find this session's agent.
            wait_gone(&[agent, intproxy]);
            (rps, pod, mirror, copies as f64)
        };
        let ((without, pod_alone), (with, pod_mirrored, mirror, copies)) = if round % 2 == 0 {
            let a = alone();
            (a, mirrored())
        } else {
            let m = mirrored();
            (alone(), m)
        };
        rounds.push(MirrorRound {
            without,
            with,
            pod_alone,
            pod_mirrored,
            mirror,
            copies,
        });
    }
    let of = |f: fn(&MirrorRound) -> f64| spread(rounds.iter().map(f).collect());
    let (name, goal) = match placement {
        Placement::Split => (
            "split: the pod and the agent on CPU 0, clients and the developer's side on CPU 1",
            " (goal >= 0.9)",
        ),
        Placement::Shared => ("shared: every process on every CPU", ""),
    };
    println!("Mirror, {name}: the pod's own server ({conns} x {requests}, a connection per request; {MIRROR_ROUNDS} interleaved rounds; median (min-max) over rounds)");
    println!();
    println!("| | without mirror | with mirror | ratio{goal} |");
    println!("|---|---|---|---|");
    println!(
        "| pod's server req/s | {} | {} | {} |",
        of(|r| r.without).show(0),
        of(|r| r.with).show(0),
        of(|r| r.with / r.without).show(2)
    );
    // CPU time is far less noisy than requests/s on a shared machine.
    println!(
        "| pod's server CPU us per request | {} | {} | {} |",
        of(|r| r.pod_alone).show(0),
        of(|r| r.pod_mirrored).show(0),
        of(|r| r.pod_mirrored / r.pod_alone).show(2)
    );
    println!();
    println!(
        "CPU us per mirrored request: agent {}, intproxy {}, program {}",
        of(|r| r.mirror[0]).show(0),
        of(|r| r.mirror[1]).show(0),
        of(|r| r.mirror[2]).show(0)
    );
    println!(
        "Copies the program received, of {}: {}",
        conns * requests,
        of(|r| r.copies).show(0)
    );
    println!();
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether the machine has the split placement's two CPUs (said when not).
fn split_possible() -> bool {
    let possible = cpus() > ELSEWHERE_CPU;
    if !possible {
        println!("Split placement: skipped (one CPU)");
        println!();
    }
    possible
}

/// Waits until none of `clocks` advances for a quarter of a second (at
/// most 30 s).
fn settle(clocks: &[CpuClock]) {
    let total = || clocks.iter().map(CpuClock::now).sum::<f64>();
    let mut last = total();
    for _ in 0..120 {
        std::thread::sleep(Duration::from_millis(250));
        let now = total();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Waits until none of `pids` runs (at most 30 s).
fn wait_gone(pids: &[u32]) {
    for _ in 0..300 {
        if !pids.iter().any(|pid| alive(*pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `command` on `cpu` only, at idle priority if `idle` (its
/// children inherit both).
fn on_cpus(command: &mut Command, cpu: usize, idle: bool) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            set_cpus(0, &[cpu])?;
            if idle {
                let param = libc::sched_param { sched_priority: 0 };
                if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Every thread of `pid` on `cpus` only, at normal priority.
fn pin_all(pid: u32, cpus: &[usize]) {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process runs");
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that has just exited is no matter.
        let _ = set_cpus(tid, cpus);
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain syscall on a thread id.
        unsafe { libc::sched_setscheduler(tid, libc::SCHED_OTHER, &param) };
    }
}

fn set_cpus(tid: libc::pid_t, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; the macros index
    // within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in cpus {
            libc::CPU_SET(*cpu, &mut set);
        }
        if libc::sched_setaffinity(tid, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
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

/// `python3 SERVER PORT` under `mirrord exec -f CONFIG`, once it listens;
/// `shape` adjusts the command first (arguments it adds follow PORT).
fn under_mirrord(
    mirrord: &Path,
    pod: &Pod,
    config: &Path,
    server: &Path,
    port: u16,
    shape: impl FnOnce(&mut Command),
) -> Running {
    let mut command = Command::new(mirrord);
    command
        .args(["exec", "--target", &pod.target(), "-f"])
        .arg(config)
        .args(["--", "python3"])
        .arg(server)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    shape(&mut command);
    Running(
        spawn_until_line(&mut command, "listening", Duration::from_secs(60))
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
