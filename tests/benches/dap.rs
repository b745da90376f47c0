//! `cargo bench -p mirrord-tests --bench dap` (after `cargo build --release
//! --workspace`): what the DAP proxy adds between a client and
//! `lldb-vscode`, against the same client talking to the adapter directly
//! in the same run. Timings are reported, never asserted. (lldb-vscode
//! answers `threads`/`stackTrace` itself in microseconds; debugpy forwards
//! them to the debuggee over a TCP link that takes ~40 ms per request here,
//! which would hide the proxy entirely.)
//!
//! | ratio | numerator / denominator | goal |
//! |---|---|---|
//! | latency | a `threads` + `stackTrace` pair through `mirrord dap` / direct | <= 1.1 |
//! | throughput | pipelined `stackTrace` requests answered per second, through / direct | |
//!
//! A third row runs the sequential pairs through `relay.c`, a process that
//! only copies bytes between the client and the adapter: the floor for any
//! proxy that is a process of its own. (The relay blocks on writes, so it
//! would deadlock with an adapter under a pipelined burst, as the proxy
//! once did: no throughput figure for it.)
//!
//! The three sessions run side by side, stopped at the same breakpoint,
//! and each round takes their pairs in interleaved slices, so load from
//! other work on the machine falls on all three alike; each ratio is taken
//! within a round and printed as the median with the spread over rounds.
//!
//! Why the floor is above 1.1 here: a pair is four messages, and through
//! any process in between each one is read and written once more, with
//! one more process to wake (lldb-vscode and the test client write each
//! message's header and body separately, so a relay wakes twice per
//! message). On the shared 2-vCPU machine this was measured on (load
//! average 12-16 from other builds), a direct pair took ~250 us and the
//! relay's ~300-360 us: 1.19-1.50x, the cost of the scheduler waking a
//! third process eight times a pair, not of any work in it. The proxy
//! does the same reads and writes as the relay (at most one write per
//! side per read, never a task hop between them), and measured at the
//! relay's level: 1.42-1.49x against the relay's 1.41-1.50x in the same
//! runs (it was 1.78-1.96x before). Under that load no process in the
//! path can reach 1.1x; an idle machine narrows both.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mirrord_tests::dap::DapClient;
use mirrord_tests::run::{gcc, programs_dir, Scratch};
use mirrord_tests::stats::spread;
use serde_json::{json, Value};

const PAIRS: usize = 400;
/// The sequential pairs of a round are measured in slices taken in turn
/// from the three sessions, so a burst of load on this shared machine
/// falls on all three alike.
const SLICES: usize = 20;
const PIPELINED: usize = 2000;
const ROUNDS: usize = 5;

fn main() {
    let mirrord = mirrord_tests::bench_binary("mirrord");
    let scratch = Scratch::new("dap-bench");
    let source = scratch.path().join("bench_debuggee.c");
    std::fs::copy(programs_dir().join("dap/bench_debuggee.c"), &source).expect("copy");
    let program = scratch.path().join("bench_debuggee");
    gcc(&source, &program, &["-g", "-O0"]);
    let relay = scratch.path().join("relay");
    gcc(&programs_dir().join("dap/relay.c"), &relay, &["-O2"]);
    let adapter = ["lldb-vscode-14"];

    // Per round: seconds per pair (direct, proxied, relayed), rates.
    let mut latency = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        let mut cmd = Command::new(adapter[0]);
        cmd.args(&adapter[1..]);
        let direct = Stopped::start(cmd, &program, &source);
        let mut cmd = Command::new(&mirrord);
        cmd.args(["dap", "--target", "targetless", "--"])
            .args(adapter);
        let proxied = Stopped::start(cmd, &program, &source);
        let mut cmd = Command::new(&relay);
        cmd.args(adapter);
        let relayed = Stopped::start(cmd, &program, &source);
        let mut sessions = [direct, proxied, relayed];
        let mut spent = [Duration::ZERO; 3];
        for _ in 0..SLICES {
            for (session, spent) in sessions.iter_mut().zip(&mut spent) {
                *spent += session.pairs(PAIRS / SLICES);
            }
        }
        let [direct, proxied, relayed] = sessions;
        let per_pair = spent.map(|d| d.as_secs_f64() / (PAIRS / SLICES * SLICES) as f64);
        latency.push(per_pair);
        let (direct, direct_rate) = direct.pipelined(PIPELINED);
        let (proxied, proxied_rate) = proxied.pipelined(PIPELINED);
        rates.push([direct_rate, proxied_rate]);
        for session in [direct, proxied, relayed] {
            session.finish();
        }
    }
    let ratio = |i: usize, j: usize, of: &[[f64; 3]]| {
        let s = spread(of.iter().map(|r| r[i] / r[j]).collect());
        (s.median, s.min, s.max)
    };
    let median_of = |i: usize| spread(latency.iter().map(|r| r[i]).collect()).median;
    let (pl, pl_min, pl_max) = ratio(1, 0, &latency);
    let (rl, rl_min, rl_max) = ratio(2, 0, &latency);
    let pipelined = spread(rates.iter().map(|r| r[1] / r[0]).collect());
    let (pr, pr_min, pr_max) = (pipelined.median, pipelined.min, pipelined.max);
    let dr = spread(rates.iter().map(|r| r[0]).collect()).median;
    println!(
        "DAP proxy vs direct (lldb-vscode; ratios measured within each of {ROUNDS} rounds: median, min-max)"
    );
    println!(
        "  latency per threads+stackTrace pair: {:>7.1} us direct, {:>7.1} us through mirrord dap: ratio {pl:.2} ({pl_min:.2}-{pl_max:.2}) (goal <= 1.1)",
        median_of(0) * 1e6,
        median_of(1) * 1e6,
    );
    println!(
        "  the floor, a byte relay process:     {:>7.1} us per pair:                          ratio {rl:.2} ({rl_min:.2}-{rl_max:.2})",
        median_of(2) * 1e6,
    );
    println!(
        "  pipelined stackTrace throughput:     {dr:>7.0} /s direct; through mirrord dap:             ratio {pr:.2} ({pr_min:.2}-{pr_max:.2})"
    );
}

/// A session stopped at the breakpoint, ready to be measured.
struct Stopped {
    client: DapClient,
    thread: Value,
}

impl Stopped {
    fn start(command: Command, program: &Path, source: &Path) -> Stopped {
        let mut client = DapClient::spawn(command);
        client.call(
            "initialize",
            json!({"clientID": "bench", "adapterID": "lldb-vscode", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"}),
        );
        client.request(
            "launch",
            json!({"type": "lldb-vscode", "request": "launch", "program": program}),
        );
        client.event("initialized", Duration::from_secs(60));
        let text = std::fs::read_to_string(source).expect("read");
        let line = text
            .lines()
            .position(|l| l.contains("BREAK"))
            .expect("BREAK")
            + 1;
        client.call(
            "setBreakpoints",
            json!({"source": {"path": source}, "breakpoints": [{"line": line}]}),
        );
        client.call("configurationDone", json!({}));
        let stopped = client.event("stopped", Duration::from_secs(60));
        let thread = stopped["body"]["threadId"].clone();
        Stopped { client, thread }
    }

    /// The time `count` sequential `threads` + `stackTrace` pairs take.
    fn pairs(&mut self, count: usize) -> Duration {
        let started = Instant::now();
        for _ in 0..count {
            self.client.call("threads", json!({}));
            self.client
                .call("stackTrace", json!({"threadId": self.thread}));
        }
        let spent = started.elapsed();
        self.client.log.clear();
        spent
    }

    /// A burst of `count` `stackTrace` requests: responses per second.
    fn pipelined(mut self, count: usize) -> (Self, f64) {
        let started = Instant::now();
        let seqs: Vec<i64> = (0..count)
            .map(|_| {
                self.client
                    .request("stackTrace", json!({"threadId": self.thread}))
            })
            .collect();
        for seq in seqs {
            self.client.response(seq, Duration::from_secs(60));
        }
        let rate = count as f64 / started.elapsed().as_secs_f64();
        self.client.log.clear();
        (self, rate)
    }

    fn finish(mut self) {
        let client = &mut self.client;
        client.call("disconnect", json!({"terminateDebuggee": true}));
        client.close();
        if let Some(mut child) = client.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
