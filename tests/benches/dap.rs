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

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mirrord_tests::dap::DapClient;
use mirrord_tests::run::{programs_dir, Scratch};
use serde_json::{json, Value};

const PAIRS: usize = 400;
const PIPELINED: usize = 2000;
const ROUNDS: usize = 3;

fn main() {
    let mirrord = mirrord_tests::bench_binary("mirrord");
    let scratch = Scratch::new("dap-bench");
    let source = scratch.path().join("bench_debuggee.c");
    std::fs::copy(programs_dir().join("dap/bench_debuggee.c"), &source).expect("copy");
    let program = scratch.path().join("bench_debuggee");
    let status = Command::new("gcc")
        .args(["-g", "-O0", "-o"])
        .arg(&program)
        .arg(&source)
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc failed");
    let relay = scratch.path().join("relay");
    let status = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&relay)
        .arg(programs_dir().join("dap/relay.c"))
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc failed");
    let adapter = ["lldb-vscode-14"];

    let mut direct = (Vec::new(), Vec::new());
    let mut proxied = (Vec::new(), Vec::new());
    let mut relayed = (Vec::new(), ());
    for _ in 0..ROUNDS {
        let mut cmd = Command::new(&relay);
        cmd.args(adapter);
        let (latency, _) = storm(cmd, &program, &source, 0);
        relayed.0.push(latency);
        let mut cmd = Command::new(adapter[0]);
        cmd.args(&adapter[1..]);
        let (latency, rate) = storm(cmd, &program, &source, PIPELINED);
        direct.0.push(latency);
        direct.1.push(rate);
        let mut cmd = Command::new(&mirrord);
        cmd.args(["dap", "--target", "targetless", "--"])
            .args(adapter);
        let (latency, rate) = storm(cmd, &program, &source, PIPELINED);
        proxied.0.push(latency);
        proxied.1.push(rate);
    }
    let (dl, pl) = (median(&mut direct.0), median(&mut proxied.0));
    let (dr, pr) = (median(&mut direct.1), median(&mut proxied.1));
    let rl = median(&mut relayed.0);
    println!("DAP proxy vs direct (lldb-vscode, median of {ROUNDS} rounds)");
    println!(
        "  latency per threads+stackTrace pair: {:>8.1} us direct, {:>8.1} us through mirrord dap: ratio {:.2} (goal <= 1.1)",
        dl * 1e6,
        pl * 1e6,
        pl / dl
    );
    println!(
        "  pipelined stackTrace throughput:     {dr:>8.0} /s direct, {pr:>8.0} /s through mirrord dap: ratio {:.2}",
        pr / dr
    );
    println!(
        "  the floor, a byte relay process:      {:>8.1} us per pair: ratio {:.2}",
        rl * 1e6,
        rl / dl
    );
}

/// Runs to the breakpoint, then measures sequential pairs and a pipelined
/// burst; returns (seconds per pair, responses per second).
fn storm(command: Command, program: &Path, source: &Path, pipelined: usize) -> (f64, f64) {
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
    let thread: Value = stopped["body"]["threadId"].clone();

    let started = Instant::now();
    for _ in 0..PAIRS {
        client.call("threads", json!({}));
        client.call("stackTrace", json!({"threadId": thread}));
    }
    let per_pair = started.elapsed().as_secs_f64() / PAIRS as f64;

    let started = Instant::now();
    let seqs: Vec<i64> = (0..pipelined)
        .map(|_| client.request("stackTrace", json!({"threadId": thread})))
        .collect();
    for seq in seqs {
        client.response(seq, Duration::from_secs(60));
    }
    let rate = pipelined as f64 / started.elapsed().as_secs_f64();
    client.log.clear();

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
    (per_pair, rate)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}
