//! Target resolution against the test API server (tests/src/kube), loaded
//! with tests/fixtures/cluster.yaml: every kind, the namespace from the
//! context, and each error's message.

use mirrord_config::Target;
use mirrord_tests::kube::{fixture::container_id, FakeApiServer};

use super::error::KubeError;
use super::{connect, resolve, KubeSettings};

const CLUSTER: &str = include_str!("../../../tests/fixtures/cluster.yaml");

/// A server, and settings whose kubeconfig points at it with `namespace`
/// as the context's namespace.
fn setup(fixture: &str, namespace: &str) -> (FakeApiServer, tempfile::TempDir, KubeSettings) {
    let server = FakeApiServer::start(fixture).expect("server");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&path, namespace)
        .expect("kubeconfig");
    let settings = KubeSettings {
        kubeconfig: Some(path.to_string_lossy().into_owned()),
        context: None,
    };
    (server, dir, settings)
}

async fn resolve_in(
    settings: &KubeSettings,
    target: &str,
    ns: Option<&str>,
) -> Result<super::Resolved, KubeError> {
    let cluster = connect(settings).await?;
    let target: Target = target.parse().expect("a valid target");
    Ok(resolve(&cluster, &target, ns)
        .await?
        .expect("a Kubernetes target"))
}

async fn error_of(settings: &KubeSettings, target: &str, ns: Option<&str>) -> String {
    match resolve_in(settings, target, ns).await {
        Ok(r) => panic!("{target} resolved to {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn every_kind_resolves_to_a_ready_pod_and_its_container() {
    let (_server, _dir, settings) = setup(CLUSTER, "default");
    let cases = [
        ("deployment/web", "shop", "web-7d9f-bbbbb", "main"),
        ("statefulset/db", "shop", "db-0", "postgres"),
        ("daemonset/log-agent", "shop", "log-agent-x1", "fluent"),
        ("job/migrate", "shop", "migrate-q2x", "migrate"),
        (
            "cronjob/nightly",
            "shop",
            "nightly-29000000-abcde",
            "report",
        ),
        ("rollout/checkout", "shop", "checkout-5c4b-zzzzz", "app"),
        ("service/web", "shop", "web-7d9f-bbbbb", "main"),
        ("pod/ledger", "payments", "ledger", "app"),
        (
            "pod/ledger/container/istio-proxy",
            "payments",
            "ledger",
            "istio-proxy",
        ),
    ];
    for (target, ns, pod, container) in cases {
        let r = resolve_in(&settings, target, Some(ns))
            .await
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(
            (r.pod.as_str(), r.container.as_str(), r.namespace.as_str()),
            (pod, container, ns),
            "{target}"
        );
        assert_eq!(
            r.container_id,
            format!("containerd://{}", container_id(ns, pod, container)),
            "{target}"
        );
        assert_eq!(r.node.as_deref(), Some("node-1"), "{target}");
    }
    let web = resolve_in(&settings, "deployment/web", Some("shop"))
        .await
        .unwrap();
    assert_eq!((web.ready, web.total), (1, 2));
    assert_eq!(
        web.summary(),
        "deployment/web → pod web-7d9f-bbbbb (1 of 2 pods ready), container main, namespace shop"
    );
}

#[tokio::test]
async fn the_namespace_defaults_to_the_contexts() {
    let (_server, _dir, settings) = setup(CLUSTER, "shop");
    let r = resolve_in(&settings, "deployment/web", None).await.unwrap();
    assert_eq!(r.namespace, "shop");
}

#[tokio::test]
async fn target_errors_say_what_exists_and_what_to_do() {
    let (_server, _dir, settings) = setup(CLUSTER, "shop");
    let cases = [
        (
            "deployment/wbe",
            None,
            "deployment/wbe not found in namespace \"shop\"; did you mean deployment/web?; deployments in \"shop\": web",
        ),
        ("rollout/checkout", Some("payments"), "there are no rollouts in \"payments\""),
        ("service/orphan", None, "service/orphan in namespace \"shop\" has no pods"),
        (
            "pod/web-7d9f-aaaaa",
            None,
            "has no running, ready pod: web-7d9f-aaaaa (Pending: ContainerCreating)",
        ),
        (
            "pod/ledger/container/web",
            Some("payments"),
            "pod ledger has no container \"web\"; its containers are: app, istio-proxy",
        ),
        ("cronjob/nightly", Some("payments"), "cronjob/nightly not found in namespace \"payments\""),
    ];
    for (target, ns, expected) in cases {
        let message = error_of(&settings, target, ns).await;
        assert!(message.contains(expected), "{target}: {message}");
    }
}

#[tokio::test]
async fn rbac_refusals_name_the_verb_resource_and_namespace() {
    let fixture = format!(
        "apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec:\n  user: dev@example.com\n  forbid:\n    \
         - {{verb: list, resource: pods, namespace: shop}}\n---\n{CLUSTER}"
    );
    let (_server, _dir, settings) = setup(&fixture, "shop");
    let message = error_of(&settings, "deployment/web", None).await;
    assert!(
        message.starts_with("not allowed to list pods in namespace \"shop\" (403 Forbidden: pods is forbidden: User \"dev@example.com\""),
        "{message}"
    );
    assert!(
        message.contains("`kubectl auth can-i list pods -n shop`"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_credentials_contexts_and_kubeconfigs_are_named() {
    let fixture = format!("apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec: {{token: right}}\n---\n{CLUSTER}");
    let (server, dir, settings) = setup(&fixture, "shop");
    // The written kubeconfig carries the right token; this one does not.
    let wrong = dir.path().join("wrong");
    std::fs::write(
        &wrong,
        server
            .kubeconfig("shop")
            .replace("token: right", "token: wrong"),
    )
    .unwrap();
    let wrong = KubeSettings {
        kubeconfig: Some(wrong.to_string_lossy().into_owned()),
        context: None,
    };
    let message = error_of(&wrong, "pod/db-0", None).await;
    assert!(
        message.contains("did not accept your credentials (401 Unauthorized)"),
        "{message}"
    );
    assert!(resolve_in(&settings, "pod/db-0", None).await.is_ok());

    let other_context = KubeSettings {
        context: Some("staging".into()),
        ..settings.clone()
    };
    let message = error_of(&other_context, "pod/db-0", None).await;
    assert!(
        message.starts_with(
            "kube context \"staging\" is not in the kubeconfig; its contexts are: fake."
        ),
        "{message}"
    );

    let missing = KubeSettings {
        kubeconfig: Some("/nonexistent/kubeconfig".into()),
        context: None,
    };
    let message = error_of(&missing, "pod/db-0", None).await;
    assert!(
        message.starts_with(
            "no kubeconfig found (cannot read /nonexistent/kubeconfig); set KUBECONFIG"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_named() {
    let (server, dir, _) = setup(CLUSTER, "shop");
    // A port nothing listens on: bind one, note it, close it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = dir.path().join("down");
    std::fs::write(
        &path,
        server
            .kubeconfig("shop")
            .replace(&server.url(), &format!("http://{free}")),
    )
    .unwrap();
    let down = KubeSettings {
        kubeconfig: Some(path.to_string_lossy().into_owned()),
        context: None,
    };
    let message = error_of(&down, "pod/db-0", None).await;
    assert!(
        message.starts_with(&format!(
            "cannot reach the Kubernetes API server at http://{free}"
        )),
        "{message}"
    );
    assert!(message.contains("kubectl cluster-info"), "{message}");
}

#[tokio::test]
async fn port_forward_reaches_the_pods_port_through_the_websocket() {
    use k8s_openapi::api::core::v1::Pod;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (server, _dir, settings) = setup(CLUSTER, "shop");
    // The pod's port 80 is an echo server on loopback.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut conn, _) = echo.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let n = conn.read(&mut buf).await.unwrap();
        conn.write_all(&buf[..n]).await.unwrap();
    });
    let pods = mirrord_tests::kube::kinds::Kind::by_plural("", "v1", "pods").unwrap();
    let annotation = mirrord_tests::kube::portforward::port_annotation(80);
    server
        .store()
        .update(pods, Some("shop"), "db-0", |pod| {
            pod["metadata"]["annotations"][annotation] = serde_json::json!(echo_addr.to_string());
        })
        .unwrap();

    let cluster = connect(&settings).await.unwrap();
    let api: kube::Api<Pod> = kube::Api::namespaced(cluster.client.clone(), "shop");
    let mut forwarder = api
        .portforward("db-0", &[80])
        .await
        .expect("port-forward upgrade");
    let mut stream = forwarder.take_stream(80).expect("port 80's stream");
    stream
        .write_all(b"hello through the api server")
        .await
        .unwrap();
    let mut echoed = vec![0u8; 28];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_exact(&mut echoed),
    )
    .await
    .expect("echo in time")
    .unwrap();
    assert_eq!(echoed, b"hello through the api server");

    // A port the pod does not have: the error channel says so.
    let mut forwarder = api
        .portforward("db-0", &[81])
        .await
        .expect("port-forward upgrade");
    let error = forwarder.take_error(81).expect("port 81's error").await;
    assert_eq!(
        error.as_deref(),
        Some("error forwarding port 81 to pod: port 81 is not open in the pod")
    );
}

/// How many agent Jobs (`app=mirrord`) the server holds.
fn agent_jobs(server: &FakeApiServer) -> usize {
    let jobs = mirrord_tests::kube::kinds::Kind::by_plural("batch", "v1", "jobs").unwrap();
    let agents = mirrord_tests::kube::store::Query {
        labels: mirrord_tests::kube::selector::LabelSelector::parse("app=mirrord").unwrap(),
        ..Default::default()
    };
    server.store().list(jobs, &agents).0.len()
}

/// The agent binary the test server's kubelet runs (built with the
/// workspace).
fn agent_binary() -> std::path::PathBuf {
    let path = mirrord_tests::bin_path("mirrord-agent");
    assert!(
        path.exists(),
        "build the workspace first: {} is missing",
        path.display()
    );
    path
}

async fn hello(
    pod: &super::launch::AgentPod,
    secret: Option<String>,
) -> mirrord_protocol::AgentMessage {
    use futures::{SinkExt, StreamExt};
    use mirrord_protocol::{ClientCodec, ClientHello, ClientMessage, PROTOCOL_VERSION};
    let stream = pod.connect().await.expect("port-forward to the agent");
    let mut framed = tokio_util::codec::Framed::new(stream, ClientCodec::default());
    framed
        .send(ClientMessage::Hello(ClientHello {
            version: PROTOCOL_VERSION,
            secret,
        }))
        .await
        .expect("send hello");
    framed.next().await.expect("an answer").expect("a frame")
}

#[tokio::test]
async fn the_agent_job_serves_only_its_own_session_and_is_deleted() {
    let server = FakeApiServer::start_with_agent(CLUSTER, agent_binary()).expect("server");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, "shop").unwrap();
    let settings = KubeSettings {
        kubeconfig: Some(path.to_string_lossy().into_owned()),
        context: None,
    };
    let cluster = connect(&settings).await.unwrap();
    let agent = mirrord_config::AgentConfig {
        labels: [("team".to_owned(), "a".to_owned())].into(),
        ..Default::default()
    };
    let steps = std::sync::Mutex::new(Vec::new());
    let record = |s: &str| steps.lock().unwrap().push(s.to_owned());
    let pod = super::launch::launch(&cluster, None, &agent, &record)
        .await
        .expect("the agent starts");
    assert_eq!(
        *steps.lock().unwrap(),
        ["creating the agent", "waiting for the agent pod"]
    );
    assert!(
        pod.job.starts_with("mirrord-agent-") && pod.pod.starts_with(&pod.job),
        "{} {}",
        pod.job,
        pod.pod
    );
    let jobs = mirrord_tests::kube::kinds::Kind::by_plural("batch", "v1", "jobs").unwrap();
    let job = server.store().get(jobs, Some("shop"), &pod.job).unwrap();
    assert_eq!(
        job["metadata"]["labels"],
        serde_json::json!({"app": "mirrord", "team": "a"})
    );

    let refused = hello(&pod, Some("not-the-secret".into())).await;
    assert!(
        matches!(refused, mirrord_protocol::AgentMessage::Refused { .. }),
        "{refused:?}"
    );
    let refused = hello(&pod, None).await;
    assert!(
        matches!(refused, mirrord_protocol::AgentMessage::Refused { .. }),
        "{refused:?}"
    );
    let accepted = hello(&pod, Some(pod.secret.clone())).await;
    assert!(
        matches!(
            accepted,
            mirrord_protocol::AgentMessage::HelloAck {
                target_pid: None,
                ..
            }
        ),
        "{accepted:?}"
    );

    pod.delete().await.unwrap();
    assert!(server.store().get(jobs, Some("shop"), &pod.job).is_err());
    let pods = mirrord_tests::kube::kinds::Kind::by_plural("", "v1", "pods").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.store().get(pods, Some("shop"), &pod.pod).is_ok()
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        server.store().get(pods, Some("shop"), &pod.pod).is_err(),
        "the agent pod is left"
    );
    let left = mirrord_tests::run::processes_mentioning(&pod.secret);
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_is_reported_with_its_events() {
    let (server, _dir, settings) = setup(CLUSTER, "shop");
    let cluster = connect(&settings).await.unwrap();
    let agent = mirrord_config::AgentConfig {
        image: Some("registry.example/does-not-exist:1".into()),
        ..Default::default()
    };
    let Err(err) = super::launch::launch(&cluster, None, &agent, &|_| {}).await else {
        panic!("the agent started with an image that does not exist");
    };
    let message = err.to_string();
    assert!(
        message.starts_with("the agent image \"registry.example/does-not-exist:1\" cannot be pulled (ErrImagePull, pod mirrord-agent-"),
        "{message}"
    );
    assert!(
        message.contains("Events: Failed to pull image \"registry.example/does-not-exist:1\""),
        "{message}"
    );
    assert!(message.contains("Set agent.image"), "{message}");
    assert_eq!(agent_jobs(&server), 0, "the failed Job is deleted");
}

#[tokio::test]
async fn rbac_refusing_jobs_is_named() {
    let fixture = format!(
        "apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec:\n  forbid:\n    - {{verb: create, resource: jobs}}\n---\n{CLUSTER}"
    );
    let (_server, _dir, settings) = setup(&fixture, "shop");
    let cluster = connect(&settings).await.unwrap();
    let Err(err) = super::launch::launch(&cluster, None, &Default::default(), &|_| {}).await else {
        panic!("created a Job RBAC forbids");
    };
    let message = err.to_string();
    assert!(
        message.starts_with("not allowed to create jobs.batch in namespace \"shop\""),
        "{message}"
    );
}

#[tokio::test]
async fn an_agent_that_is_not_ready_in_time_is_named_and_removed() {
    let (server, _dir, settings) = setup(CLUSTER, "shop");
    let cluster = connect(&settings).await.unwrap();
    let agent = mirrord_config::AgentConfig {
        image: Some("registry.example/never-ready:1".into()),
        startup_timeout: 1,
        ..Default::default()
    };
    let Err(err) = super::launch::launch(&cluster, None, &agent, &|_| {}).await else {
        panic!("a pod that never starts was taken as ready");
    };
    let message = err.to_string();
    assert!(
        message.starts_with("the agent (job mirrord-agent-"),
        "{message}"
    );
    assert!(
        message.contains("was not ready within 1 s: pod mirrord-agent-"),
        "{message}"
    );
    assert!(
        message.contains("(Pending); raise agent.startup_timeout"),
        "{message}"
    );
    assert_eq!(agent_jobs(&server), 0, "the Job is deleted");
}
