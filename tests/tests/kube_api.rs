//! The test API server speaks the real Kubernetes protocol: a real
//! `kubectl` (discovery, server-side tables, JSON lists, watch, and
//! `port-forward` over SPDY) drives it and its output is checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mirrord_tests::kube::portforward::port_annotation;
use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::pod::spec::TCP_ECHO_PORT;
use mirrord_tests::pod::{Pod, PodSpec};
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
    // kubectl's default (strict) validation: the server's OpenAPI
    // documents say it validates fields itself.
    let create = ["create", "-f", manifest];
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

/// kubectl reads the server's OpenAPI v3 documents: `create -f` leaves
/// field validation to the server (`fieldValidation=Strict`), which
/// refuses an unknown field by its path as the API server does, and
/// `explain` shows the real schema's descriptions.
#[test]
fn kubectl_validates_on_the_server_and_explains_from_the_openapi_documents() {
    let server = FakeApiServer::start(CLUSTER).expect("server");
    let scratch = Scratch::new("kubectl-openapi");
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: shop}}\n\
             spec: {{containers: [{{name: c, image: \"x:1\"{extra}}}]}}\n"
        )
    };
    let good = scratch.write("good.yaml", &pod("fresh", ""));
    let bad = scratch.write("bad.yaml", &pod("typo", ", imagePullPolicyy: Always"));
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    let (ok, out, err) = kubectl(&server, scratch.path(), &["create", "-f", &path(&good)]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pod/fresh created");
    let (ok, _, err) = kubectl(&server, scratch.path(), &["create", "-f", &path(&bad)]);
    assert!(!ok);
    assert!(
        err.contains("Error from server (BadRequest): error when creating \"",)
            && err.contains(
                "strict decoding error: unknown field \"spec.containers[0].imagePullPolicyy\""
            ),
        "{err}"
    );
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /openapi/v3/api/v1?hash="))
            && requests
                .iter()
                .any(|r| r.contains("/pods?") && r.contains("fieldValidation=Strict")),
        "{requests:#?}"
    );
    let pods = mirrord_tests::kube::kinds::Kind::by_plural("", "v1", "pods").expect("pods");
    assert!(server.store().get(pods, Some("shop"), "typo").is_err());

    let (ok, out, err) = kubectl(&server, scratch.path(), &["explain", "pod"]);
    assert!(ok, "{err}");
    assert!(out.contains("KIND:       Pod"), "{out}");
    assert!(
        out.contains("Pod is a collection of containers that can run on a host."),
        "{out}"
    );
    let (ok, out, err) = kubectl(
        &server,
        scratch.path(),
        &["explain", "deployment.spec.replicas"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("FIELD: replicas <integer>"), "{out}");
}

/// A pod `echo` in `shop` whose port 7001 is the stand-in pod's TCP echo
/// service (dialled inside the pod's network namespace), on a server
/// claiming Kubernetes 1.`minor`.
fn echo_fixture(pod: &Pod, minor: u32) -> String {
    format!(
        "apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec: {{minorVersion: {minor}}}\n---\n\
         {CLUSTER}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: echo\n  namespace: shop\n  \
         annotations: {{\"{annotation}\": \"netns:{pid}:127.0.0.1:{TCP_ECHO_PORT}\"}}\n\
         spec: {{containers: [{{name: main, image: \"echo:1\"}}]}}\n",
        annotation = port_annotation(TCP_ECHO_PORT),
        pid = pod.pid,
    )
}

/// `kubectl port-forward pod/echo :7001` until it says where it listens;
/// returns the process and the local port.
fn port_forward(server: &FakeApiServer, scratch: &Path) -> (Child, u16, mpsc::Receiver<String>) {
    let config = scratch.join("kubeconfig");
    server
        .write_kubeconfig(&config, "shop")
        .expect("kubeconfig");
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--cache-dir")
        .arg(scratch.join("cache"))
        .args(["port-forward", "--address", "127.0.0.1", "pod/echo"])
        .arg(format!(":{TCP_ECHO_PORT}"))
        .env("HOME", scratch)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let (lines_tx, lines) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(30)) {
        // "Forwarding from 127.0.0.1:PORT -> 7001"
        let port = line
            .strip_prefix("Forwarding from 127.0.0.1:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok());
        if let Some(port) = port {
            return (child, port, lines);
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kubectl port-forward did not start: {seen:?}");
}

/// Bytes through the forwarded port come back from the pod's echo service
/// (written from a thread of their own, so that a payload larger than
/// every buffer on the way cannot block its own echo).
fn echo_through(port: u16, payload: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to kubectl");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut writer = conn.try_clone().expect("clone");
    let sent = payload.to_vec();
    let sending = std::thread::spawn(move || writer.write_all(&sent));
    let mut echoed = vec![0u8; payload.len()];
    conn.read_exact(&mut echoed).expect("echo");
    sending.join().expect("writer").expect("send");
    echoed
}

/// kubectl 1.33 (picked by the server's `/version`) tunnels SPDY in a
/// WebSocket; 1.30 upgrades the HTTP connection to SPDY/3.1 itself. Both
/// forward to the stand-in pod's echo service and stop cleanly on SIGINT.
#[test]
fn kubectl_port_forwards_to_a_standin_pods_echo_service() {
    let pod = Pod::start(&PodSpec::default()).expect("stand-in pod");
    let transports = [
        (
            33,
            "GET /api/v1/namespaces/shop/pods/echo/portforward upgrade: websocket \
             (SPDY/3.1+portforward.k8s.io)",
        ),
        (
            30,
            "POST /api/v1/namespaces/shop/pods/echo/portforward upgrade: SPDY/3.1",
        ),
    ];
    for (minor, transport) in transports {
        let server = FakeApiServer::start(&echo_fixture(&pod, minor)).expect("server");
        let scratch = Scratch::new("kubectl-port-forward");
        let (mut kubectl, port, lines) = port_forward(&server, scratch.path());
        assert_eq!(
            echo_through(port, b"hello, pod"),
            b"hello, pod",
            "{transport}"
        );
        // A second connection (a second stream pair): 3 MiB each way, far
        // past SPDY's 64 KiB windows. kubectl does no flow control (it
        // sends no WINDOW_UPDATE and ignores the server's), so the server
        // must neither hold it to windows nor stall after 64 KiB.
        let big: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        assert!(echo_through(port, &big) == big, "{transport}: 3 MiB echoed");

        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(kubectl.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("SIGINT");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = kubectl.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = kubectl.kill();
                let _ = kubectl.wait();
                panic!("{transport}: kubectl did not stop on SIGINT");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let said: Vec<String> = lines.try_iter().collect();
        assert!(status.success(), "{transport}: kubectl {status}: {said:?}");
        assert!(
            !said.iter().any(|l| l.contains("error")),
            "{transport}: {said:?}"
        );
        // One upgrade per session, of the kind this kubectl speaks.
        let upgrades: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|r| r.contains("portforward"))
            .collect();
        assert_eq!(upgrades, [transport]);
        // kubectl is gone and its port is closed.
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{transport}: port {port} still open"
        );
    }
}
