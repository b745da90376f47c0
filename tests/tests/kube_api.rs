//! The test API server speaks the real Kubernetes protocol: a real
//! `kubectl` (discovery, server-side tables, JSON lists, watch) drives it
//! and its output is checked.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::run::Scratch;

const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");

/// `kubectl ARGS` against `server` with a fresh HOME and cache.
fn kubectl(server: &FakeApiServer, scratch: &Path, args: &[&str]) -> (bool, String, String) {
    let config = scratch.join("kubeconfig");
    server
        .write_kubeconfig(&config, "default")
        .expect("kubeconfig");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--cache-dir")
        .arg(scratch.join("cache"))
        .args(["--request-timeout", "10s"])
        .args(args)
        .env("HOME", scratch)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kubectl_lists_pods_in_every_namespace_as_a_table() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kubectl-table");
    let (ok, out, err) = kubectl(&server, scratch.path(), &["get", "pods", "-A"]);
    assert!(ok, "kubectl failed: {err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r[..5] == ["shop", "web-7d9f-bbbbb", "1/1", "Running", "0"]),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r[..4] == ["shop", "web-7d9f-aaaaa", "0/1", "Pending"]),
        "{out}"
    );
    assert!(
        rows.iter()
            .any(|r| r[..4] == ["payments", "ledger", "2/2", "Running"]),
        "{out}"
    );
    assert_eq!(rows.len(), 1 + 8, "{out}");
}

#[test]
fn kubectl_reads_deployments_as_json_and_names_what_is_missing() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kubectl-json");
    let (ok, out, err) = kubectl(
        &server,
        scratch.path(),
        &["get", "deploy", "-n", "shop", "-o", "json"],
    );
    assert!(ok, "kubectl failed: {err}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("kubectl printed JSON");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{out}");
    assert_eq!(items[0]["kind"], "Deployment");
    assert_eq!(items[0]["metadata"]["name"], "web");
    assert_eq!(items[0]["spec"]["selector"]["matchLabels"]["app"], "web");

    let (ok, _, err) = kubectl(
        &server,
        scratch.path(),
        &["get", "rollout", "nope", "-n", "shop"],
    );
    assert!(!ok);
    assert!(
        err.contains("rollouts.argoproj.io \"nope\" not found")
            || err.contains("rollouts \"nope\" not found"),
        "{err}"
    );

    // A label selector and a custom resource found through discovery.
    let (ok, out, err) = kubectl(
        &server,
        scratch.path(),
        &["get", "pods", "-n", "shop", "-l", "app=web", "-o", "name"],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["pod/web-7d9f-aaaaa", "pod/web-7d9f-bbbbb"]
    );
    let (ok, out, err) = kubectl(
        &server,
        scratch.path(),
        &["get", "ro", "-n", "shop", "-o", "name"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "rollout.argoproj.io/checkout");
}

#[test]
fn kubectl_creates_watches_and_deletes() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kubectl-watch");
    let manifest = scratch.write(
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: probe, namespace: shop, labels: {app: mirrord}}\n\
         spec: {template: {spec: {containers: [{name: a, image: x}], restartPolicy: Never}}}\n",
    );
    let manifest = manifest.to_str().expect("utf-8 path");
    // The server serves no OpenAPI document, so client-side validation is off.
    let create = ["create", "--validate=false", "-f", manifest];
    let (ok, out, err) = kubectl(&server, scratch.path(), &create);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "job.batch/probe created");
    let (ok, _, err) = kubectl(&server, scratch.path(), &create);
    assert!(!ok && err.contains("already exists"), "{err}");

    // A watch (list, then the stream from the list's resourceVersion)
    // sees the job, then its deletion.
    let config = scratch.path().join("kubeconfig");
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--cache-dir")
        .arg(scratch.path().join("cache"))
        .args([
            "get",
            "jobs",
            "-n",
            "shop",
            "-l",
            "app=mirrord",
            "-w",
            "-o",
            "name",
        ])
        .env("HOME", scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_default()
    };
    // The listed object (kubectl prints it without an event type).
    let first = next();
    assert!(first.ends_with("job.batch/probe"), "{first}");
    let (ok, out, err) = kubectl(
        &server,
        scratch.path(),
        &["delete", "job", "probe", "-n", "shop", "--wait=false"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "job.batch \"probe\" deleted");
    // `-o name` drops the event type: a second line is the streamed
    // deletion, the only change after the list.
    assert_eq!(next(), "job.batch/probe");
    let _ = watch.kill();
    let _ = watch.wait();
    let (ok, out, _) = kubectl(
        &server,
        scratch.path(),
        &["get", "jobs", "-n", "shop", "-o", "name"],
    );
    assert!(ok);
    assert!(!out.contains("probe"), "{out}");
}
