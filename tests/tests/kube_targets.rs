//! `mirrord ls` and Kubernetes targets of `mirrord exec`, end to end: the
//! real `mirrord` binary against the test API server (tests/src/kube) with
//! tests/fixtures/cluster.yaml, found through `KUBECONFIG`.

use std::process::{Command, Output};

use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::run::Scratch;

const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");

/// `mirrord ARGS` with `KUBECONFIG` pointing at `server` (context
/// namespace `shop`) and a HOME without a kubeconfig.
fn mirrord(server: &FakeApiServer, scratch: &Scratch, args: &[&str]) -> Output {
    let kubeconfig = scratch.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, "shop")
        .expect("kubeconfig");
    Command::new(mirrord_tests::bin_path("mirrord"))
        .args(args)
        .current_dir(scratch.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", scratch.path())
        .output()
        .expect("run mirrord (build the workspace first)")
}

fn paths(listing: &serde_json::Value) -> Vec<String> {
    listing["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["path"].as_str().expect("path").to_owned())
        .collect()
}

#[test]
fn ls_json_lists_every_kind_of_the_contexts_namespace() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kube-ls");
    let out = mirrord(&server, &scratch, &["ls", "-o", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listing["namespace"], "shop");
    assert_eq!(
        listing["namespaces"],
        serde_json::json!(["default", "payments", "shop"])
    );
    assert_eq!(listing["warnings"], serde_json::json!([]));
    assert_eq!(
        paths(&listing),
        [
            "targetless",
            "pod/checkout-5c4b-zzzzz",
            "pod/db-0",
            "pod/log-agent-x1",
            "pod/migrate-q2x",
            "pod/nightly-29000000-abcde",
            "pod/web-7d9f-aaaaa",
            "pod/web-7d9f-bbbbb",
            "deployment/web",
            "statefulset/db",
            "daemonset/log-agent",
            "job/migrate",
            "job/nightly-29000000",
            "cronjob/nightly",
            "rollout/checkout",
            "service/orphan",
            "service/web",
        ]
    );
    let entry = |path: &str| {
        listing["targets"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["path"] == path).cloned())
            .expect(path)
    };
    assert_eq!(
        entry("pod/web-7d9f-aaaaa"),
        serde_json::json!({"path": "pod/web-7d9f-aaaaa", "kind": "pod", "namespace": "shop", "ready": false})
    );
    assert_eq!(entry("rollout/checkout")["ready"], true);
    assert_eq!(entry("service/web")["ready"], serde_json::Value::Null);
}

#[test]
fn ls_all_namespaces_lists_containers_of_multi_container_pods() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kube-ls-all");
    let out = mirrord(&server, &scratch, &["ls", "-A"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAMESPACE", "TARGET", "READY"]);
    assert_eq!(rows[1], ["-", "targetless", "yes"]);
    for expected in [
        ["payments", "pod/ledger", "yes"],
        ["payments", "pod/ledger/container/app", "yes"],
        ["payments", "pod/ledger/container/istio-proxy", "yes"],
        ["shop", "deployment/web", "yes"],
        ["shop", "pod/web-7d9f-aaaaa", "no"],
    ] {
        assert!(
            rows.iter().any(|r| r[..] == expected),
            "{expected:?} in\n{stdout}"
        );
    }
}

#[test]
fn ls_warns_about_kinds_rbac_refuses_and_lists_the_rest() {
    let fixture = format!(
        "apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec:\n  forbid:\n    \
         - {{verb: list, resource: cronjobs, namespace: shop}}\n---\n{CLUSTER}"
    );
    let server = FakeApiServer::start(&fixture).expect("server");
    let scratch = Scratch::new("kube-ls-rbac");
    let out = mirrord(&server, &scratch, &["ls", "-o", "json", "-n", "shop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let warnings = listing["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].as_str().unwrap_or_default();
    assert!(
        warning
            .starts_with("not allowed to list cronjobs.batch in namespace \"shop\" (403 Forbidden"),
        "{warning}"
    );
    let paths = paths(&listing);
    assert!(
        !paths.iter().any(|p| p.starts_with("cronjob/")),
        "{paths:?}"
    );
    assert!(paths.contains(&"deployment/web".to_owned()), "{paths:?}");
}

#[test]
fn exec_names_the_picked_pod_or_the_close_names() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kube-exec");
    let out = mirrord(
        &server,
        &scratch,
        &["exec", "--target", "deployment/wbe", "--", "true"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "deployment/wbe not found in namespace \"shop\"; did you mean deployment/web?"
        ),
        "{stderr}"
    );
    let out = mirrord(
        &server,
        &scratch,
        &[
            "exec",
            "--target",
            "pod/ledger",
            "-n",
            "payments",
            "--",
            "true",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("pod/ledger → pod ledger, container app, namespace payments"),
        "{stderr}"
    );
}

#[test]
fn exec_runs_in_the_pod_through_an_agent_job_and_leaves_nothing() {
    use mirrord_tests::kube::cgroup::ContainerCgroup;
    use mirrord_tests::kube::fixture::container_id;
    use mirrord_tests::pod::{Pod, PodSpec};

    // The container `app` of pod `ledger` is a stand-in pod in the cgroup
    // its container ID names; the agent Job finds it by that ID.
    let cgroup =
        ContainerCgroup::new(&container_id("payments", "ledger", "app")).expect("cgroup (root)");
    let pod = Pod::start(&PodSpec::default()).expect("stand-in pod");
    cgroup.add(pod.pid).expect("move the pod into its cgroup");
    let server = FakeApiServer::start_with_agent(CLUSTER, mirrord_tests::bin_path("mirrord-agent"))
        .expect("server");
    let scratch = Scratch::new("kube-exec-job");
    let out = mirrord(
        &server,
        &scratch,
        &[
            "exec",
            "--target",
            "pod/ledger/container/app",
            "-n",
            "payments",
            "--",
            "sh",
            "-c",
            "echo POD_NAME=$POD_NAME; cat /app/config/message.txt",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("POD_NAME=standin-pod"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("this file exists only in the pod"),
        "{stdout}\n{stderr}"
    );

    // The intproxy deletes the Job when the program is done; the kubelet
    // then removes its pod and ends the agent.
    let jobs = mirrord_tests::kube::kinds::Kind::by_plural("batch", "v1", "jobs").expect("jobs");
    let pods = mirrord_tests::kube::kinds::Kind::by_plural("", "v1", "pods").expect("pods");
    let mirrord_app = mirrord_tests::kube::store::Query {
        labels: mirrord_tests::kube::selector::LabelSelector::parse("app=mirrord")
            .expect("selector"),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let left = || {
        server.store().list(jobs, &mirrord_app).0.len()
            + server.store().list(pods, &mirrord_app).0.len()
    };
    while left() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left(), 0, "the agent's Job or pod is left");
    let agents =
        mirrord_tests::run::processes_mentioning(&container_id("payments", "ledger", "app"));
    assert!(agents.is_empty(), "agent processes left: {agents:?}");
    drop(pod);
}
