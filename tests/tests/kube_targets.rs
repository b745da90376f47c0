//! `mirrord ls` and Kubernetes targets of `mirrord exec`, end to end: the
//! real `mirrord` binary against the test API server (tests/src/kube) with
//! tests/fixtures/cluster.yaml, found through `KUBECONFIG`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mirrord_tests::kube::fixture::container_id;
use mirrord_tests::kube::kinds::Kind;
use mirrord_tests::kube::selector::LabelSelector;
use mirrord_tests::kube::store::Query;
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

/// The fixture's pod `payments/ledger`, container `app`, as a stand-in pod
/// in the cgroup its container ID names, behind a test server whose
/// kubelet runs agent Jobs as real `mirrord-agent` processes.
/// Tests using it run one at a time: they share the container's cgroup and
/// count its agent processes.
struct LedgerCluster {
    server: FakeApiServer,
    _pod: mirrord_tests::pod::Pod,
    _cgroup: mirrord_tests::kube::cgroup::ContainerCgroup,
    _serial: std::sync::MutexGuard<'static, ()>,
}

static LEDGER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

const LEDGER: &[&str] = &["--target", "pod/ledger/container/app", "-n", "payments"];

impl LedgerCluster {
    fn start() -> LedgerCluster {
        use mirrord_tests::kube::cgroup::ContainerCgroup;
        use mirrord_tests::pod::{Pod, PodSpec};
        let serial = LEDGER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let cgroup = ContainerCgroup::new(&container_id("payments", "ledger", "app"))
            .expect("cgroup (root)");
        let pod = Pod::start(&PodSpec::default()).expect("stand-in pod");
        cgroup.add(pod.pid).expect("move the pod into its cgroup");
        let server =
            FakeApiServer::start_with_agent(CLUSTER, mirrord_tests::bin_path("mirrord-agent"))
                .expect("server");
        LedgerCluster {
            server,
            _pod: pod,
            _cgroup: cgroup,
            _serial: serial,
        }
    }

    /// Agent Jobs and pods in the store.
    fn agents(&self) -> usize {
        agent_objects(&self.server).len()
    }

    /// Waits until no agent Job, pod or process is left.
    fn assert_nothing_left(&self) {
        let processes =
            || mirrord_tests::run::processes_mentioning(&container_id("payments", "ledger", "app"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while (self.agents() > 0 || !processes().is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.agents(), 0, "an agent Job or pod is left");
        let left = processes();
        assert!(left.is_empty(), "agent processes left: {left:?}");
    }
}

/// The agent Jobs and pods (`app=mirrord`) the server holds.
fn agent_objects(server: &FakeApiServer) -> Vec<serde_json::Value> {
    let jobs = Kind::by_plural("batch", "v1", "jobs").expect("jobs");
    let pods = Kind::by_plural("", "v1", "pods").expect("pods");
    let query = Query {
        labels: LabelSelector::parse("app=mirrord").expect("selector"),
        ..Default::default()
    };
    let mut objects = server.store().list(jobs, &query).0;
    objects.extend(server.store().list(pods, &query).0);
    objects
}

fn exec_args<'a>(command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["exec"];
    args.extend_from_slice(LEDGER);
    args.push("--");
    args.extend_from_slice(command);
    args
}

#[test]
fn exec_runs_in_the_pod_through_an_agent_job_and_leaves_nothing() {
    let cluster = LedgerCluster::start();
    let scratch = Scratch::new("kube-exec-job");
    let script = "echo POD_NAME=$POD_NAME; cat /app/config/message.txt";
    let out = mirrord(&cluster.server, &scratch, &exec_args(&["sh", "-c", script]));
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
    cluster.assert_nothing_left();
}

#[test]
fn two_sessions_on_one_target_run_at_once_and_ctrl_c_leaves_nothing() {
    let cluster = LedgerCluster::start();
    let scratch = Scratch::new("kube-exec-two");
    let kubeconfig = scratch.path().join("kubeconfig");
    cluster
        .server
        .write_kubeconfig(&kubeconfig, "shop")
        .expect("kubeconfig");
    let spawn = |command: &[&str]| {
        Command::new(mirrord_tests::bin_path("mirrord"))
            .args(exec_args(command))
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", scratch.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("mirrord")
    };
    /// Kills the session's program if the test fails before it does.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // A long-running session, and a second one on the same target meanwhile.
    let long = Running(spawn(&["sleep", "30"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.agents() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.agents(), 2, "the first session's Job and pod");
    let second = spawn(&["sh", "-c", "echo POD_NAME=$POD_NAME"])
        .wait_with_output()
        .expect("second");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(stdout.contains("POD_NAME=standin-pod"), "{stdout}");
    // The second session's Job goes; the first one's stays.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.agents() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        cluster.agents(),
        2,
        "the first session's agent is untouched"
    );
    // Ctrl-C: the program (which `mirrord exec` became) gets SIGINT.
    // SAFETY: plain syscall on our child.
    unsafe { libc::kill(long.0.id() as i32, libc::SIGINT) };
    drop(long);
    cluster.assert_nothing_left();
}

#[test]
fn a_killed_intproxy_leaves_the_job_to_the_agents_timeout_and_the_ttl() {
    let cluster = LedgerCluster::start();
    let scratch = Scratch::new("kube-kill-9");
    let kubeconfig = scratch.path().join("kubeconfig");
    cluster
        .server
        .write_kubeconfig(&kubeconfig, "shop")
        .expect("kubeconfig");
    let config = scratch.write(
        "mirrord.json",
        r#"{"agent": {"ttl": 1, "communication_timeout": 1, "startup_timeout": 2}}"#,
    );
    let mut args = vec!["exec", "-f", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(LEDGER);
    args.extend_from_slice(&["--", "sleep", "30"]);
    let mut program = Command::new(mirrord_tests::bin_path("mirrord"))
        .args(&args)
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", scratch.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mirrord");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.agents() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cluster.agents(), 2, "the session's Job and pod");
    // kill -9 of the intproxy: nobody deletes the Job.
    let watch = format!("--watch-pid {}", program.id());
    let intproxy: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .is_ok_and(|c| c.contains(" intproxy ") && c.contains(&watch))
        })
        .collect();
    assert_eq!(intproxy.len(), 1, "one intproxy for the session");
    // SAFETY: plain syscalls on processes this test started.
    unsafe { libc::kill(intproxy[0] as i32, libc::SIGKILL) };
    let _ = program.kill();
    let _ = program.wait();
    // The agent exits a second after its client is gone (or 3 s after its
    // start if the intproxy died before connecting); the Job's TTL (1 s)
    // then removes the Job, and with it the pod.
    cluster.assert_nothing_left();
}

#[test]
fn every_workload_kind_runs_the_program_in_its_picked_pod() {
    use mirrord_tests::kube::cgroup::ContainerCgroup;
    use mirrord_tests::pod::{Pod, PodSpec};
    let server = FakeApiServer::start_with_agent(CLUSTER, mirrord_tests::bin_path("mirrord-agent"))
        .expect("server");
    let scratch = Scratch::new("kube-kinds");
    // Each picked pod's container is a stand-in pod that says its name.
    let pods = [
        ("web-7d9f-bbbbb", "main"),
        ("db-0", "postgres"),
        ("log-agent-x1", "fluent"),
        ("migrate-q2x", "migrate"),
        ("nightly-29000000-abcde", "report"),
        ("checkout-5c4b-zzzzz", "app"),
    ];
    let mut running = Vec::new();
    for (pod, container) in pods {
        let cgroup =
            ContainerCgroup::new(&container_id("shop", pod, container)).expect("cgroup (root)");
        let spec = PodSpec {
            env: vec![("POD_NAME".into(), pod.into())],
            ..PodSpec::default()
        };
        let standin = Pod::start(&spec).expect("stand-in pod");
        cgroup
            .add(standin.pid)
            .expect("move the pod into its cgroup");
        running.push((standin, cgroup));
    }
    for (target, pod, object) in [
        (
            "deployment/web",
            "web-7d9f-bbbbb",
            "/apis/apps/v1/namespaces/shop/deployments/web",
        ),
        (
            "service/web",
            "web-7d9f-bbbbb",
            "/api/v1/namespaces/shop/services/web",
        ),
        (
            "statefulset/db",
            "db-0",
            "/apis/apps/v1/namespaces/shop/statefulsets/db",
        ),
        (
            "daemonset/log-agent",
            "log-agent-x1",
            "/apis/apps/v1/namespaces/shop/daemonsets/log-agent",
        ),
        (
            "job/migrate",
            "migrate-q2x",
            "/apis/batch/v1/namespaces/shop/jobs/migrate",
        ),
        (
            "cronjob/nightly",
            "nightly-29000000-abcde",
            "/apis/batch/v1/namespaces/shop/cronjobs/nightly",
        ),
        (
            "rollout/checkout",
            "checkout-5c4b-zzzzz",
            "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout",
        ),
    ] {
        let before = server.requests().len();
        let out = mirrord(
            &server,
            &scratch,
            &[
                "exec",
                "--target",
                target,
                "--",
                "sh",
                "-c",
                "echo POD_NAME=$POD_NAME",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), format!("POD_NAME={pod}"), "{target}");
        // Resolved once (by the CLI): the intproxy started the agent for
        // the CLI's pod without looking the target up again.
        let session = &server.requests()[before..];
        let gets = session
            .iter()
            .filter(|r| r.strip_prefix("GET ").map(|u| u.split('?').next()) == Some(Some(object)))
            .count();
        assert_eq!(gets, 1, "{target}: {session:#?}");
    }
    // Pods before their cgroups: a cgroup goes only once it is empty.
    for (standin, cgroup) in running {
        drop(standin);
        drop(cgroup);
    }
}

#[test]
fn the_ephemeral_container_mode_runs_the_agent_in_the_target_pod() {
    let cluster = LedgerCluster::start();
    let scratch = Scratch::new("kube-ephemeral");
    let config = scratch.write(
        "mirrord.json",
        r#"{"agent": {"ephemeral": true, "communication_timeout": 1}}"#,
    );
    let mut args = vec!["exec", "-f", config.to_str().expect("utf-8 path")];
    args.extend_from_slice(LEDGER);
    args.extend_from_slice(&["--", "sh", "-c", "echo POD_NAME=$POD_NAME"]);
    let out = mirrord(&cluster.server, &scratch, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "POD_NAME=standin-pod");
    // No Job: the agent was a container added to the target pod.
    assert_eq!(cluster.agents(), 0);
    let pods = Kind::by_plural("", "v1", "pods").expect("pods");
    let ledger = cluster
        .server
        .store()
        .get(pods, Some("payments"), "ledger")
        .expect("ledger");
    let added = ledger["spec"]["ephemeralContainers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(added.len(), 1, "{ledger}");
    assert!(
        added[0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("mirrord-agent-")),
        "{ledger}"
    );
    assert_eq!(added[0]["targetContainerName"], "app");
    // Its agent exits a second after the session (it cannot be removed).
    cluster.assert_nothing_left();
}

/// `targetless` with `agent.namespace` set runs the agent in the cluster:
/// a Job in that namespace with no target (no node, no host PID, no
/// container to join); the program's outgoing connections go through it,
/// and the Job is gone after the session.
#[test]
fn targetless_with_an_agent_namespace_runs_the_agent_as_a_job_without_a_target() {
    let server = FakeApiServer::start_with_agent(CLUSTER, mirrord_tests::bin_path("mirrord-agent"))
        .expect("server");
    let scratch = Scratch::new("kube-targetless");
    let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("echo");
    let echo_port = echo.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        while let Ok((mut conn, _)) = echo.accept() {
            let mut buf = [0u8; 64];
            if let Ok(n) = conn.read(&mut buf) {
                let _ = conn.write_all(&buf[..n]);
            }
        }
    });
    let config = scratch.write(
        "mirrord.json",
        r#"{"agent": {"namespace": "payments", "communication_timeout": 1}}"#,
    );
    let kubeconfig = scratch.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, "shop")
        .expect("kubeconfig");
    let script = format!(
        "import socket, time\n\
         c = socket.create_connection(('127.0.0.1', {echo_port}))\n\
         c.sendall(b'through the agent'); print(c.recv(64).decode())\n\
         time.sleep(1.5)\n"
    );
    let child = Command::new(mirrord_tests::bin_path("mirrord"))
        .args(["exec", "-f"])
        .arg(&config)
        .args(["--target", "targetless", "--", "python3", "-c", &script])
        .current_dir(scratch.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", scratch.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mirrord");
    // While the program runs: the agent's Job, as the server holds it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let found = agent_objects(&server)
            .into_iter()
            .find(|o| o["kind"] == "Job");
        if let Some(job) = found {
            break job;
        }
        assert!(Instant::now() < deadline, "no agent Job was created");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("mirrord");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "through the agent"
    );

    assert_eq!(job["metadata"]["namespace"], "payments", "{job}");
    let pod = &job["spec"]["template"]["spec"];
    assert!(
        pod.get("nodeName").is_none() && pod.get("hostPID").is_none(),
        "{pod}"
    );
    let args = pod["containers"][0]["args"].to_string();
    assert!(!args.contains("--container-id"), "{args}");
    // No target was looked up, and nothing is left.
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/shop/pods")),
        "{:#?}",
        server.requests()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent_objects(&server).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(agent_objects(&server), Vec::<serde_json::Value>::new());
}
