//! `cargo bench -p mirrord-tests` (after `cargo build --release --workspace`):
//! measures mirrord against a baseline taken in the same run, and prints
//! ratios. Timings are reported, never asserted (shared machines are noisy).
//!
//! | ratio | numerator / denominator | goal |
//! |---|---|---|
//! | local file loop | stat+open+read+close with the layer (fs `local`) / without | <= 1.05 |
//! | remote small read | open+read+close of a remote file / a direct loopback round trip | <= 3 |
//! | remote 4 KiB writes | throughput into the target / into a local file | >= 0.25 |
//! | outgoing TCP bulk | throughput through the agent / direct loopback | >= 0.5 |
//! | exec start | the time `mirrord exec` adds before the program starts | <= 150 ms |
//!
//! Two rows marked "the floor" run the round trip and the bulk echo
//! through a chain of two `byte_relay` processes in the pod (TCP in, a
//! Unix socket between them, TCP out: how the intproxy and the agent are
//! chained) that only copy bytes: what any design with two relay
//! processes costs on this machine, before any work of mirrord's own.
//! A third runs the bulk echo through the same chain moving bytes with
//! `splice(2)`: a zero-copy relay's floor, and the way mirrord's own
//! relays move outgoing TCP on side streams (protocol 1.4). Each floor is
//! measured in the same interleaved rounds as the row it bounds.
//!
//! One more row, for information: a connection per request (connect, a
//! one-byte exchange, close) through the agent against the same in the
//! pod.
//!
//! The syscall path (Go and static binaries) is measured on the same
//! program forced onto it (`--interception syscall`), next to the layer's
//! figures: a stopped call that continues locally (a `stat`, against the
//! bare syscall), a resolver's `sendmmsg`+`recvmmsg` pair on a connected
//! local UDP socket (both stop and continue), the local file loop, the
//! remote small read, and an unconnected UDP round trip
//! (`sendto`/`recvfrom`) to the pod's echo.

use std::process::{Child, Command};
use std::time::Duration;

use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{gcc, programs_dir, spawn_until_line, Scratch};

const RUNS: usize = 7;

fn main() {
    let mirrord = mirrord_tests::bench_binary("mirrord");
    let scratch = Scratch::new("bench");
    let bench = scratch.path().join("bench");
    gcc(
        &programs_dir().join("bench.c"),
        &bench,
        &["-O2", "-pthread"],
    );
    let bench = bench.to_str().expect("utf-8 path").to_owned();
    let local_file = scratch.write("small.txt", &"x".repeat(200));
    let local_file = local_file.to_str().expect("utf-8 path").to_owned();
    let spec = PodSpec {
        files: vec![("/app/bench/small.txt".into(), "x".repeat(200))],
        ..PodSpec::default()
    };
    let pod = Pod::start(&spec).expect("pod");
    let target = pod.target();
    let pid = pod.pid.to_string();

    let plain = |args: &[&str]| seconds(Command::new(&bench).args(args));
    let under_path = |interception: &str, fs: &str, args: &[&str]| {
        seconds(
            Command::new(&mirrord)
                .args(["exec", "--fs-mode", fs, "--target", &target])
                .args(["--interception", interception, "--"])
                .arg(&bench)
                .args(args),
        )
    };
    let under = |fs: &str, args: &[&str]| under_path("layer", fs, args);
    let syscall = |fs: &str, args: &[&str]| under_path("syscall", fs, args);
    let in_pod = |args: &[&str]| {
        seconds(
            Command::new("nsenter")
                .args(["-t", &pid, "-n", "--"])
                .arg(&bench)
                .args(args),
        )
    };

    println!(
        "mirrord benchmarks (best of {RUNS} runs each; ratios against a baseline from this run)\n"
    );

    let n = "100000";
    let (base, layer) = best_pair(
        || plain(&["files", &local_file, n]),
        || under("local", &["files", &local_file, n]),
    );
    let read_mode = best(|| under("read", &["files", &local_file, n]));
    report(
        "local file loop, fs local (layer / plain)",
        layer / base,
        "<= 1.05",
        format!(
            "{:.2} us vs {:.2} us per stat+open+read+close",
            us(layer, n),
            us(base, n)
        ),
    );
    report(
        "local file loop, fs read, local path (layer / plain)",
        read_mode / base,
        "(info)",
        format!("{:.2} us per iteration", us(read_mode, n)),
    );

    let n = "20000";
    let (bare, stopped) = best_pair(
        || plain(&["stats", &local_file, n]),
        || syscall("local", &["stats", &local_file, n]),
    );
    report(
        "syscall path: a stopped call that continues (stat / bare stat)",
        stopped / bare,
        "(info)",
        format!("{:.2} us vs {:.2} us per call", us(stopped, n), us(bare, n)),
    );
    // UDP kept local by the config, so the pair measures the stops alone.
    let udp_local = scratch.write(
        "udp-local.json",
        r#"{"feature": {"network": {"outgoing": {"udp": false}}}}"#,
    );
    let (bare, stopped) = best_pair(
        || plain(&["mmsg", "127.0.0.1", n]),
        || {
            seconds(
                Command::new(&mirrord)
                    .args(["exec", "-f"])
                    .arg(&udp_local)
                    .args(["--fs-mode", "local", "--target", &target])
                    .args(["--interception", "syscall", "--"])
                    .arg(&bench)
                    .args(["mmsg", "127.0.0.1", n]),
            )
        },
    );
    report(
        "syscall path: sendmmsg+recvmmsg without addresses, both continue (syscall / plain)",
        stopped / bare,
        "(info)",
        format!("{:.2} us vs {:.2} us per pair", us(stopped, n), us(bare, n)),
    );
    let n = "100000";
    let file_loop = best(|| syscall("local", &["files", &local_file, n]));
    report(
        "syscall path: local file loop, fs local (syscall / plain)",
        file_loop / base,
        "(info)",
        format!(
            "{:.2} us vs layer {:.2} us per stat+open+read+close",
            us(file_loop, n),
            us(layer, n)
        ),
    );

    // Both relay chains wait in the pod from here to the bulk rows, so
    // that each floor is measured in the same rounds as what it bounds.
    let relays = RelayChain::start(&scratch, &pid, RELAY_PORT, Relay::Copy);
    let splice_relays = RelayChain::start(&scratch, &pid, SPLICE_RELAY_PORT, Relay::Splice);

    let n = "2000";
    let [rtt, remote, relayed_rtt] = best_of([
        &mut || in_pod(&["rtt", "127.0.0.1", "7001", n]),
        &mut || under("read", &["reads", "/app/bench/small.txt", n]),
        &mut || in_pod(&["rtt", "127.0.0.1", RELAY_PORT, n]),
    ]);
    report(
        "remote small read (open+read+close / loopback round trip)",
        remote / rtt,
        "<= 3",
        format!("{:.1} us vs {:.1} us", us(remote, n), us(rtt, n)),
    );
    report(
        "  the floor: a round trip through two byte relays / direct",
        relayed_rtt / rtt,
        "(info)",
        format!("{:.1} us vs {:.1} us", us(relayed_rtt, n), us(rtt, n)),
    );
    let remote_syscall = best(|| syscall("read", &["reads", "/app/bench/small.txt", n]));
    report(
        "syscall path: remote small read (open+read+close / round trip)",
        remote_syscall / rtt,
        "(info)",
        format!(
            "{:.1} us vs layer {:.1} us",
            us(remote_syscall, n),
            us(remote, n)
        ),
    );

    // A connection per request: connect, a one-byte exchange, close.
    let conns = "1000";
    let (direct_conns, remote_conns) = best_pair(
        || in_pod(&["connects", "127.0.0.1", "7001", conns]),
        || under("local", &["connects", "127.0.0.1", "7001", conns]),
    );
    report(
        "a connection per request, through the agent (remote / in the pod)",
        remote_conns / direct_conns,
        "(info)",
        format!(
            "{:.1} us vs {:.1} us per connect+exchange+close",
            us(remote_conns, conns),
            us(direct_conns, conns)
        ),
    );

    // Unconnected UDP to the pod's echo: in the pod, through the layer
    // (its sendto/recvfrom hooks), through the syscall path (the
    // supervisor sends and receives on the program's socket).
    let (udp_rtt, udp_layer) = best_pair(
        || in_pod(&["udp", "127.0.0.1", "7002", n]),
        || under("local", &["udp", "127.0.0.1", "7002", n]),
    );
    let udp_syscall = best(|| syscall("local", &["udp", "127.0.0.1", "7002", n]));
    report(
        "unconnected UDP round trip, layer (remote / in the pod)",
        udp_layer / udp_rtt,
        "(info)",
        format!("{:.1} us vs {:.1} us", us(udp_layer, n), us(udp_rtt, n)),
    );
    report(
        "syscall path: unconnected UDP round trip (remote / in the pod)",
        udp_syscall / udp_rtt,
        "(info)",
        format!(
            "{:.1} us vs layer {:.1} us",
            us(udp_syscall, n),
            us(udp_layer, n)
        ),
    );

    let blocks = "8192"; // 32 MiB
    let local_out = scratch.path().join("out.bin");
    let (local_write, remote_write) = best_pair(
        || plain(&["write", &local_out.to_string_lossy(), blocks]),
        || under("write", &["write", "/app/bench/out.bin", blocks]),
    );
    report(
        "remote 4 KiB writes (throughput remote / local)",
        local_write / remote_write,
        ">= 0.25",
        format!(
            "{:.0} MiB/s vs {:.0} MiB/s",
            32.0 / remote_write,
            32.0 / local_write
        ),
    );

    let mb = "64";
    let [direct, relayed, chained, spliced] = best_of([
        &mut || in_pod(&["bulk", "127.0.0.1", "7001", mb]),
        &mut || under("read", &["bulk", "127.0.0.1", "7001", mb]),
        &mut || in_pod(&["bulk", "127.0.0.1", RELAY_PORT, mb]),
        &mut || in_pod(&["bulk", "127.0.0.1", SPLICE_RELAY_PORT, mb]),
    ]);
    drop(relays);
    drop(splice_relays);
    report(
        "outgoing TCP bulk echo (throughput agent / direct)",
        direct / relayed,
        ">= 0.5",
        format!(
            "{:.0} MiB/s vs {:.0} MiB/s each way",
            64.0 / relayed,
            64.0 / direct
        ),
    );
    report(
        "  the floor: bulk echo through two byte relays / direct",
        direct / chained,
        "(info)",
        format!("{:.0} MiB/s each way", 64.0 / chained),
    );
    report(
        "  the same two relays copying with splice(2) / direct",
        direct / spliced,
        "(info)",
        format!("{:.0} MiB/s each way", 64.0 / spliced),
    );

    let (bare, wrapped) = best_pair(
        || until_start(&mut Command::new(&bench)),
        || {
            until_start(
                Command::new(&mirrord)
                    .args(["exec", "--target", &target, "--"])
                    .args([&bench, "now"]),
            )
        },
    );
    let added_ms = (wrapped - bare) * 1000.0;
    println!(
        "{:<62} {:>8.0} ms   goal <= 150 ms",
        "time `mirrord exec` adds before the program starts", added_ms
    );
}

/// Where the first relay of each chain listens, in the pod.
const RELAY_PORT: &str = "17101";
const SPLICE_RELAY_PORT: &str = "17102";

/// How a `byte_relay` moves bytes: through a buffer (`read`/`write`), or
/// through a pipe with `splice`, never entering user space.
#[derive(Clone, Copy, PartialEq)]
enum Relay {
    Copy,
    Splice,
}

/// Two `byte_relay` processes in the pod's network namespace, chained as
/// mirrord's intproxy and agent are (TCP in, a Unix socket between them,
/// TCP out to the pod's echo): the floor for any path with two relay
/// processes in it, whatever they do with the bytes. Killed on drop.
struct RelayChain(Vec<Child>);

impl RelayChain {
    fn start(scratch: &Scratch, pod_pid: &str, port: &str, mode: Relay) -> RelayChain {
        let relay = scratch.path().join("byte_relay");
        if !relay.exists() {
            gcc(&programs_dir().join("byte_relay.c"), &relay, &["-O2"]);
        }
        let hop = format!("unix:@mirrord-bench-relay-{}-{port}", std::process::id());
        let mut chain = RelayChain(Vec::new());
        for (listen, upstream) in [
            (hop.clone(), "tcp:7001".to_owned()),
            (format!("tcp:{port}"), hop),
        ] {
            let mut cmd = Command::new("nsenter");
            cmd.args(["-t", pod_pid, "-n", "--"])
                .arg(&relay)
                .args([listen, upstream]);
            if mode == Relay::Splice {
                cmd.arg("splice");
            }
            let child = spawn_until_line(&mut cmd, "ready", Duration::from_secs(10))
                .expect("byte relay starts");
            chain.0.push(child);
        }
        chain
    }
}

impl Drop for RelayChain {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn us(secs: f64, n: &str) -> f64 {
    secs * 1e6 / n.parse::<f64>().unwrap_or(1.0)
}

fn report(name: &str, ratio: f64, goal: &str, detail: String) {
    println!("{name:<62} {ratio:>8.3}x   goal {goal:<8} ({detail})");
}

/// The best of each, measured alternately so that a slow spell of the
/// machine hits both sides alike.
fn best_pair(mut baseline: impl FnMut() -> f64, mut measured: impl FnMut() -> f64) -> (f64, f64) {
    let [a, b] = best_of([&mut baseline, &mut measured]);
    (a, b)
}

/// The best of each of `K` measurements, taken in turn in each round.
fn best_of<const K: usize>(mut measures: [&mut dyn FnMut() -> f64; K]) -> [f64; K] {
    let mut best = [f64::INFINITY; K];
    for _ in 0..RUNS {
        for (b, measure) in best.iter_mut().zip(measures.iter_mut()) {
            *b = b.min(measure());
        }
    }
    best
}

fn best(mut f: impl FnMut() -> f64) -> f64 {
    (0..RUNS).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// Runs a bench mode and returns the seconds it printed.
fn seconds(cmd: &mut Command) -> f64 {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{cmd:?} printed {text:?}"))
}

/// Seconds from spawning `cmd` until the bench program (mode `now`) starts.
fn until_start(cmd: &mut Command) -> f64 {
    let spawned = monotonic();
    if cmd.get_program().to_string_lossy().ends_with("/bench") {
        cmd.arg("now");
    }
    seconds(cmd) - spawned
}

fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
