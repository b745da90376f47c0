//! A target pod replaced between the CLI's resolution and the agent's
//! start, end to end: the real `mirrord` binary against the test API
//! server, whose request hook replaces the pod right after the CLI's last
//! resolution request. Both the old and the new pod's containers run as
//! stand-in pods, so an agent started for the old pod would work: only the
//! check before the Job is created tells the two apart.

use std::process::Command;
use std::time::Duration;

use mirrord_tests::kube::cgroup::ContainerCgroup;
use mirrord_tests::kube::fixture::{complete_pod_status, container_id};
use mirrord_tests::kube::kinds::Kind;
use mirrord_tests::kube::selector::LabelSelector;
use mirrord_tests::kube::store::{Query, Store};
use mirrord_tests::kube::FakeApiServer;
use mirrord_tests::pod::{Pod, PodSpec};
use mirrord_tests::run::{run, Output, Scratch};
use serde_json::{json, Value};

const CLUSTER: &str = include_str!("../fixtures/cluster.yaml");

/// A one-pod deployment `api` in `shop` beside the shared fixture.
const API: &str = "
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {app: api}}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: main, image: \"shop/api:1\"}]}
status: {replicas: 1, readyReplicas: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: shop, labels: {app: api}}
spec: {containers: [{name: main, image: \"shop/api:1\"}]}
";

/// The tests share the cgroups of `api-1` and `api-2`: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The server and a stand-in pod, saying its name, for each of `api-1`'s
/// and `api-2`'s container.
struct ApiCluster {
    server: FakeApiServer,
    /// Pods before their cgroups: a cgroup goes only once it is empty.
    standins: Vec<(Pod, ContainerCgroup)>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl ApiCluster {
    fn start() -> ApiCluster {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let mut standins = Vec::new();
        for name in ["api-1", "api-2"] {
            let cgroup =
                ContainerCgroup::new(&container_id("shop", name, "main")).expect("cgroup (root)");
            let spec = PodSpec {
                env: vec![("POD_NAME".into(), name.into())],
                ..PodSpec::default()
            };
            let standin = Pod::start(&spec).expect("stand-in pod");
            cgroup
                .add(standin.pid)
                .expect("move the pod into its cgroup");
            standins.push((standin, cgroup));
        }
        let server = FakeApiServer::start_with_agent(
            &format!("{CLUSTER}{API}"),
            mirrord_tests::bin_path("mirrord-agent"),
        )
        .expect("server");
        ApiCluster {
            server,
            standins,
            _serial: serial,
        }
    }

    /// `mirrord exec --target TARGET -- sh -c 'echo POD_NAME=$POD_NAME'`.
    fn exec(&self, scratch: &Scratch, target: &str) -> Output {
        let kubeconfig = scratch.path().join("kubeconfig");
        self.server
            .write_kubeconfig(&kubeconfig, "shop")
            .expect("kubeconfig");
        let mut command = Command::new(mirrord_tests::bin_path("mirrord"));
        command
            .args(["exec", "--target", target, "--"])
            .args(["sh", "-c", "echo POD_NAME=$POD_NAME"])
            .current_dir(scratch.path())
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", scratch.path());
        run(command, Duration::from_secs(60))
    }

    /// The UID of pod `name` as the server holds it now.
    fn uid_of(&self, name: &str) -> String {
        let pod = self
            .server
            .store()
            .get(kind("", "pods"), Some("shop"), name)
            .expect("the pod");
        pod["metadata"]["uid"].as_str().expect("a uid").to_owned()
    }

    /// The agent Jobs the server has been asked to create so far.
    fn job_creations(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("POST /apis/batch/v1/namespaces/shop/jobs"))
            .collect()
    }

    /// Waits until no agent Job or pod is left in the store.
    fn assert_no_agent_left(&self) {
        let query = Query {
            labels: LabelSelector::parse("app=mirrord").expect("selector"),
            ..Default::default()
        };
        let left = || {
            let mut objects = self.server.store().list(kind("batch", "jobs"), &query).0;
            objects.extend(self.server.store().list(kind("", "pods"), &query).0);
            objects
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !left().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(left(), Vec::<Value>::new());
    }
}

impl Drop for ApiCluster {
    fn drop(&mut self) {
        for (standin, cgroup) in self.standins.drain(..) {
            drop(standin);
            drop(cgroup);
        }
    }
}

fn kind(group: &str, plural: &str) -> &'static Kind {
    Kind::by_plural(group, "v1", plural).expect("a served kind")
}

/// What a controller does: `old` goes, a running, ready pod `new` of the
/// same template comes (a new UID even when the name is the same).
fn replace_pod(store: &Store, old: &str, new: &str) {
    let pods = kind("", "pods");
    store
        .delete(pods, Some("shop"), old)
        .expect("delete the old pod");
    let mut pod = json!({
        "metadata": {"name": new, "namespace": "shop", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "main", "image": "shop/api:1"}]},
    });
    complete_pod_status(&mut pod);
    store
        .create(pods, Some("shop"), pod)
        .expect("create the new pod");
}

/// `deployment/api`: its pod `api-1` is replaced by `api-2` right after the
/// CLI listed the deployment's pods. The agent must be started for
/// `api-2` (the program sees its environment), and the user told so.
#[test]
fn a_workload_pod_replaced_before_the_job_is_created_is_picked_again() {
    let cluster = ApiCluster::start();
    let scratch = Scratch::new("kube-repick");
    cluster
        .server
        .after_request("GET /api/v1/namespaces/shop/pods?", |store| {
            replace_pod(store, "api-1", "api-2")
        });
    let out = cluster.exec(&scratch, "deployment/api");
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "POD_NAME=api-2", "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "mirrord: the target pod api-1 in namespace \"shop\" (picked for deployment/api) is \
             gone since it was resolved; picked again: deployment/api → pod api-2 (1 of 1 pods \
             ready), container main, namespace shop"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(cluster.job_creations().len(), 1);
    cluster.assert_no_agent_left();
}

/// `pod/api-1`: the pod is replaced by a new `api-1` (a new UID, the same
/// container ID, as a StatefulSet recreates its pods) right after the CLI
/// got it. The user named that pod: mirrord refuses, naming the change and
/// the fix, and creates no Job.
#[test]
fn a_pod_target_replaced_under_its_name_before_the_job_is_created_is_refused() {
    let cluster = ApiCluster::start();
    let scratch = Scratch::new("kube-replaced");
    let old_uid = cluster.uid_of("api-1");
    cluster
        .server
        .after_request("GET /api/v1/namespaces/shop/pods/api-1", |store| {
            replace_pod(store, "api-1", "api-1")
        });
    let out = cluster.exec(&scratch, "pod/api-1");
    assert!(!out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let new_uid = cluster.uid_of("api-1");
    assert_ne!(old_uid, new_uid);
    assert!(
        out.stderr.contains(&format!(
            "the target pod api-1 in namespace \"shop\" (picked for pod/api-1) was replaced by a \
             new pod of the same name since it was resolved (uid {old_uid}, now {new_uid}); no \
             agent was started for it. Run mirrord again for the pod that is there now \
             (`mirrord ls -n shop` lists them), or target its workload"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("POD_NAME"), "{}", out.stdout);
    assert_eq!(cluster.job_creations(), Vec::<String>::new());
    cluster.assert_no_agent_left();
}
