//! `cargo bench -p mirrord-tests --bench kube` (after `cargo build --release
//! --workspace`, as root): the time from `mirrord exec` to the program's
//! first instruction for a Kubernetes target, against the test API server
//! (tests/src/kube) whose kubelet runs the agent Job as a local
//! `mirrord-agent`, split by phase (resolve, by the CLI; agent ready and
//! connected, by the intproxy; read from their `mirrord::timing` log
//! lines), as a ratio to starting
//! the same program without mirrord. Timings are reported, never asserted.
//!
//! The agent's pod start here is a local process start: a real cluster adds
//! scheduling and an image pull to "agent ready".

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirrord_tests::kube::cgroup::ContainerCgroup;
use mirrord_tests::kube::fixture::container_id;
use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::Scratch;

const RUNS: usize = 7;
const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");
const PHASES: [&str; 3] = ["resolve", "agent ready", "connected"];

fn main() {
    let mirrord = mirrord_tests::bin_path("mirrord");
    assert!(
        mirrord.exists(),
        "{} is missing: run `cargo build --release --workspace` first",
        mirrord.display()
    );
    let cgroup =
        ContainerCgroup::new(&container_id("payments", "ledger", "app")).expect("cgroup (root)");
    let pod = Pod::start(&PodSpec::default()).expect("stand-in pod");
    cgroup.add(pod.pid).expect("move the pod into its cgroup");
    let server = FakeApiServer::start_with_agent(CLUSTER, mirrord_tests::bin_path("mirrord-agent"))
        .expect("server");
    let scratch = Scratch::new("bench-kube");
    let kubeconfig = scratch.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, "payments")
        .expect("kubeconfig");

    let plain = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new("true").status().expect("true");
            assert!(status.success());
            start.elapsed()
        })
        .min()
        .unwrap_or_default();

    let mut totals = Vec::new();
    let mut phases: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
    for run in 0..RUNS {
        let log = scratch.path().join(format!("stderr-{run}"));
        let start = Instant::now();
        let status = Command::new(&mirrord)
            .args([
                "exec",
                "--target",
                "pod/ledger/container/app",
                "-n",
                "payments",
                "--",
                "true",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", scratch.path())
            .env("MIRRORD_LOG", "warn,mirrord::timing=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .status()
            .expect("mirrord");
        totals.push(start.elapsed());
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for (i, name) in PHASES.iter().enumerate() {
            if let Some(ms) = phase_ms(&text, name) {
                phases[i].push(ms);
            }
        }
    }
    // Let the last session delete its Job before the server goes.
    std::thread::sleep(Duration::from_secs(1));

    let best = totals.iter().min().copied().unwrap_or_default();
    println!(
        "mirrord Kubernetes start-up (test API server; best of {RUNS} runs, phases as medians)\n"
    );
    println!(
        "  exec to first instruction: {:.1} ms; without mirrord {:.2} ms; ratio {:.0}x",
        ms(best),
        ms(plain),
        ms(best) / ms(plain).max(0.001)
    );
    let mut accounted = 0.0;
    for (name, values) in PHASES.iter().zip(&phases) {
        let median = median(values);
        accounted += median;
        println!(
            "    {name:<12} {median:>7.1} ms  ({:.0}% of the total)",
            100.0 * median / ms(best)
        );
    }
    println!(
        "    {:<12} {:>7.1} ms  (process starts, the intproxy's handshake, environment)",
        "rest",
        (ms(best) - accounted).max(0.0)
    );
    drop(server);
    drop(pod);
    drop(cgroup);
}

/// `phase NAME: 12.3 ms` in the log (the CLI's and the intproxy's).
fn phase_ms(log: &str, name: &str) -> Option<f64> {
    let needle = format!("phase {name}: ");
    let line = log.lines().find(|l| l.contains(&needle))?;
    let rest = &line[line.find(&needle)? + needle.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
