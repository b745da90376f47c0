//! mirrord inside a pod: no kubeconfig anywhere, `KUBERNETES_SERVICE_HOST`
//! and `KUBERNETES_SERVICE_PORT` pointing at the test API server over
//! HTTPS, and a service account's `token`, `ca.crt` and `namespace` at
//! `/var/run/secrets/kubernetes.io/serviceaccount/`. That directory exists
//! only in a private mount namespace (`unshare -m`, a tmpfs over `/run`
//! and a bind mount of a temporary directory), so the host's `/run` is
//! never touched. The server requires the token as a bearer token (401
//! otherwise) and its CA is the one in `ca.crt`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mirrord_tests::kube::cgroup::ContainerCgroup;
use mirrord_tests::kube::fixture::container_id;
use mirrord_tests::kube::kinds::Kind;
use mirrord_tests::kube::selector::LabelSelector;
use mirrord_tests::kube::store::Query;
use mirrord_tests::kube::tls::TlsIdentity;
use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{run, Output, Scratch};

const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");

const TOKEN: &str = "sa-token-for-the-in-cluster-test";

/// The server's settings (the token it requires) and a pod of its own, so
/// that no other test's cgroup is shared.
fn fixture() -> String {
    format!(
        "apiVersion: test.mirrord.dev/v1\nkind: FakeApiServer\nspec:\n  token: {TOKEN}\n---\n\
         {CLUSTER}\n---\napiVersion: v1\nkind: Pod\n\
         metadata: {{name: sa-pod, namespace: shop}}\n\
         spec: {{containers: [{{name: main, image: \"shop/sa:1\"}}]}}\n"
    )
}

/// The service account's files, as the kubelet mounts them, except for a
/// trailing newline in `namespace` (as a hand-made one often has), which
/// kubectl trims and so must mirrord.
fn service_account(scratch: &Scratch, token: &str, ca_pem: &str) -> std::path::PathBuf {
    let dir = scratch.path().join("serviceaccount");
    std::fs::create_dir_all(&dir).expect("service account dir");
    std::fs::write(dir.join("token"), token).expect("token");
    std::fs::write(dir.join("ca.crt"), ca_pem).expect("ca.crt");
    std::fs::write(dir.join("namespace"), "shop\n").expect("namespace");
    dir
}

/// `mirrord ARGS` in a private mount namespace where `account` is the
/// service account directory, with the in-cluster environment and no
/// kubeconfig (HOME is the scratch directory, `KUBECONFIG` unset).
fn mirrord_in_pod(
    server: &FakeApiServer,
    scratch: &Scratch,
    account: &Path,
    args: &[&str],
) -> Output {
    let mount = "set -e; mount -t tmpfs tmpfs /run; \
                 mkdir -p /run/secrets/kubernetes.io/serviceaccount; \
                 mount --bind \"$0\" /run/secrets/kubernetes.io/serviceaccount; \
                 exec \"$@\"";
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", mount])
        .arg(account)
        .arg(mirrord_tests::bin_path("mirrord"))
        .args(args)
        .current_dir(scratch.path())
        .env_remove("KUBECONFIG")
        .env("HOME", scratch.path())
        .env("KUBERNETES_SERVICE_HOST", server.addr().ip().to_string())
        .env("KUBERNETES_SERVICE_PORT", server.addr().port().to_string());
    run(command, Duration::from_secs(60))
}

fn agents_left(server: &FakeApiServer) -> Vec<serde_json::Value> {
    let query = Query {
        labels: LabelSelector::parse("app=mirrord").expect("selector"),
        ..Default::default()
    };
    let mut left = Vec::new();
    for (group, plural) in [("batch", "jobs"), ("", "pods")] {
        let kind = Kind::by_plural(group, "v1", plural).expect("kind");
        left.extend(server.store().list(kind, &query).0);
    }
    left
}

/// `mirrord ls` and `mirrord exec` find the cluster from the service
/// account alone: the namespace from its file, the API server over HTTPS
/// trusted through `ca.crt`, the token sent as a bearer token (the server
/// refuses every request without it). The session's agent Job is created,
/// port-forwarded to over TLS and deleted.
#[test]
fn ls_and_exec_find_the_cluster_through_the_service_account() {
    let agent = mirrord_tests::bin_path("mirrord-agent");
    let server = FakeApiServer::start_tls(&fixture(), Some(agent)).expect("server");
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let scratch = Scratch::new("kube-incluster");
    let account = service_account(&scratch, TOKEN, server.ca_pem().expect("a CA"));

    let out = mirrord_in_pod(&server, &scratch, &account, &["ls", "-o", "json"]);
    assert!(out.status.success(), "{}", out.stderr);
    let listing: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(listing["namespace"], "shop", "{listing}");
    let paths: Vec<&str> = listing["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["path"].as_str())
        .collect();
    assert!(paths.contains(&"pod/sa-pod"), "{paths:?}");
    assert!(paths.contains(&"deployment/web"), "{paths:?}");

    let cgroup = ContainerCgroup::new(&container_id("shop", "sa-pod", "main")).expect("cgroup");
    let spec = PodSpec {
        env: vec![("POD_NAME".into(), "sa-pod".into())],
        ..PodSpec::default()
    };
    let standin = Pod::start(&spec).expect("stand-in pod");
    cgroup
        .add(standin.pid)
        .expect("move the pod into its cgroup");
    let out = mirrord_in_pod(
        &server,
        &scratch,
        &account,
        &[
            "exec",
            "--target",
            "pod/sa-pod",
            "--",
            "sh",
            "-c",
            "echo POD_NAME=$POD_NAME",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "POD_NAME=sa-pod", "{}", out.stderr);
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("POST /apis/batch/v1/namespaces/shop/jobs")),
        "{requests:#?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !agents_left(&server).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(agents_left(&server), Vec::<serde_json::Value>::new());
    drop(standin);
    drop(cgroup);
}

/// The token is what authenticates: another one gets the server's 401,
/// which mirrord names; a `ca.crt` of another CA fails the TLS handshake,
/// which mirrord reports as the server being unreachable, with the cause.
#[test]
fn a_wrong_token_or_ca_of_the_service_account_is_named() {
    let server = FakeApiServer::start_tls(&fixture(), None).expect("server");
    let ca = server.ca_pem().expect("a CA").to_owned();

    let scratch = Scratch::new("kube-incluster-token");
    let account = service_account(&scratch, "not-the-token", &ca);
    let out = mirrord_in_pod(&server, &scratch, &account, &["ls"]);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "the API server at {} did not accept your credentials (401 Unauthorized)",
            server.url()
        )),
        "{}",
        out.stderr
    );

    let scratch = Scratch::new("kube-incluster-ca");
    let other = TlsIdentity::generate().expect("another CA").ca_pem;
    let account = service_account(&scratch, TOKEN, &other);
    let before = server.requests().len();
    let out = mirrord_in_pod(&server, &scratch, &account, &["ls"]);
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "cannot reach the Kubernetes API server at {}",
            server.url()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    // Nothing got past the handshake.
    assert_eq!(server.requests().len(), before);
}
