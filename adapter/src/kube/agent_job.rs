//! The agent's Job: on the target pod's node, in the host PID namespace
//! (to find the container's process), with the capabilities the agent
//! needs, `app=mirrord`, sidecar injection off, a TTL, the per-session
//! secret in its environment, and every `agent.*` setting honoured.

use k8s_openapi::api::batch::v1::Job;
use mirrord_config::AgentConfig;
use serde_json::{json, Value};

use super::resolve::Resolved;

/// The image when `agent.image` is not set.
pub fn default_image() -> String {
    format!("mirrord-agent:{}", env!("CARGO_PKG_VERSION"))
}

/// Seconds a finished Job is kept when `agent.ttl` is not set.
pub const DEFAULT_TTL: u32 = 60;
/// Seconds the agent waits for a lost client when
/// `agent.communication_timeout` is not set.
pub const DEFAULT_COMMUNICATION_TIMEOUT: u64 = 30;
/// The agent's port inside its pod.
pub const AGENT_PORT: u16 = 44_128;
/// The label every agent Job and pod carries.
pub const APP_LABEL: (&str, &str) = ("app", "mirrord");

/// What the agent needs to join a container: network admin and raw
/// sockets (steal, capture), ptrace and sys_admin (namespaces, /proc).
const CAPABILITIES: &[&str] = &["NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_ADMIN"];

/// Turns service-mesh sidecar injection off for the agent.
const NO_SIDECARS: &[(&str, &str)] = &[
    ("sidecar.istio.io/inject", "false"),
    ("linkerd.io/inject", "disabled"),
    ("kuma.io/sidecar-injection", "disabled"),
];

/// The Job for one session.
pub struct JobRequest<'a> {
    /// `mirrord-agent-<random>`.
    pub name: &'a str,
    pub namespace: &'a str,
    /// `None`: targetless (any node, no container to join).
    pub target: Option<&'a Resolved>,
    pub agent: &'a AgentConfig,
    /// The secret a client must present; only the agent's env carries it.
    pub secret: &'a str,
}

/// The agent's container listening on `port`, without name, ports or
/// resources (what a Job's container and an ephemeral one share).
fn agent_container(request: &JobRequest<'_>, port: u16) -> Value {
    let agent = request.agent;
    let timeout = agent
        .communication_timeout
        .unwrap_or(DEFAULT_COMMUNICATION_TIMEOUT);
    let mut args = vec![
        "--listen".to_owned(),
        format!("0.0.0.0:{port}"),
        "--idle-timeout".to_owned(),
        timeout.to_string(),
        // The CLI gives up (and deletes the Job) after its startup timeout;
        // if it died instead, the agent must not wait forever.
        "--first-client-timeout".to_owned(),
        (agent.startup_timeout + timeout).to_string(),
        "--log-level".to_owned(),
        agent.log_level.to_string(),
    ];
    if let Some(target) = request.target {
        args.extend(["--container-id".to_owned(), target.container_id.clone()]);
    }
    json!({
        "image": agent.image.clone().unwrap_or_else(default_image),
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": [{"name": "MIRRORD_AGENT_SECRET", "value": request.secret}],
        "securityContext": {
            "privileged": agent.privileged,
            "capabilities": {"add": CAPABILITIES},
        },
    })
}

/// The ephemeral container (`agent.ephemeral`) for the target pod: named
/// `request.name`, sharing the target container's process namespace,
/// listening on `port` (ephemeral containers declare no ports, and two
/// sessions in one pod need two).
pub fn ephemeral_container(request: &JobRequest<'_>, target: &Resolved, port: u16) -> Value {
    let mut container = agent_container(request, port);
    container["name"] = json!(request.name);
    container["targetContainerName"] = json!(target.container);
    container
}

/// Builds the Job.
pub fn job(request: &JobRequest<'_>) -> Result<Job, serde_json::Error> {
    let agent = request.agent;
    let mut labels: serde_json::Map<String, Value> = agent
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    labels.insert(APP_LABEL.0.into(), json!(APP_LABEL.1));
    let mut annotations: serde_json::Map<String, Value> = agent
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    for (k, v) in NO_SIDECARS {
        annotations.insert((*k).into(), json!(v));
    }
    let mut container = agent_container(request, AGENT_PORT);
    container["name"] = json!("mirrord-agent");
    container["ports"] = json!([{"containerPort": AGENT_PORT, "name": "agent"}]);
    if let Some(resources) = &agent.resources {
        container["resources"] = resources.clone();
    }
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "containers": [container],
        "tolerations": agent.tolerations,
    });
    if let Some(target) = request.target {
        pod_spec["hostPID"] = json!(true);
        if let Some(node) = &target.node {
            pod_spec["nodeName"] = json!(node);
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "ttlSecondsAfterFinished": agent.ttl.unwrap_or(DEFAULT_TTL),
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Resolved {
        Resolved {
            target: "deployment/web".into(),
            namespace: "shop".into(),
            pod: "web-1".into(),
            pod_uid: Some("uid-1".into()),
            container: "main".into(),
            container_id: "containerd://abc123abc123".into(),
            node: Some("node-7".into()),
            ready: 1,
            total: 1,
        }
    }

    #[test]
    fn the_job_runs_on_the_targets_node_with_what_the_agent_needs() {
        let target = target();
        let agent = AgentConfig::default();
        let job = job(&JobRequest {
            name: "mirrord-agent-x",
            namespace: "shop",
            target: Some(&target),
            agent: &agent,
            secret: "s3cret",
        })
        .unwrap();
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["metadata"]["labels"], json!({"app": "mirrord"}));
        assert_eq!(
            v["metadata"]["annotations"]["sidecar.istio.io/inject"],
            "false"
        );
        assert_eq!(v["spec"]["ttlSecondsAfterFinished"], 60);
        let pod = &v["spec"]["template"]["spec"];
        assert_eq!(pod["nodeName"], "node-7");
        assert_eq!(pod["hostPID"], true);
        assert_eq!(pod["restartPolicy"], "Never");
        let c = &pod["containers"][0];
        assert_eq!(c["image"], default_image());
        assert_eq!(
            c["args"],
            json!([
                "--listen",
                "0.0.0.0:44128",
                "--idle-timeout",
                "30",
                "--first-client-timeout",
                "60",
                "--log-level",
                "info",
                "--container-id",
                "containerd://abc123abc123"
            ])
        );
        assert_eq!(
            c["env"],
            json!([{"name": "MIRRORD_AGENT_SECRET", "value": "s3cret"}])
        );
        assert_eq!(
            c["securityContext"],
            json!({"privileged": false, "capabilities": {"add": ["NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_ADMIN"]}})
        );
    }

    #[test]
    fn the_ephemeral_container_joins_the_target_container() {
        let target = target();
        let agent = AgentConfig::default();
        let request = JobRequest {
            name: "mirrord-agent-e",
            namespace: "shop",
            target: Some(&target),
            agent: &agent,
            secret: "s3cret",
        };
        let c = ephemeral_container(&request, &target, 40_001);
        assert_eq!(c["name"], "mirrord-agent-e");
        assert_eq!(c["targetContainerName"], "main");
        assert_eq!(c["args"][1], "0.0.0.0:40001");
        assert!(
            c.get("ports").is_none() && c.get("resources").is_none(),
            "{c}"
        );
        assert_eq!(c["env"][0]["value"], "s3cret");
    }

    #[test]
    fn agent_settings_are_honoured() {
        let agent: AgentConfig = serde_json::from_value(json!({
            "image": "registry.example/mirrord-agent:1",
            "ttl": 5,
            "communication_timeout": 7,
            "privileged": true,
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
            "tolerations": [{"operator": "Exists"}],
            "resources": {"limits": {"memory": "128Mi"}},
        }))
        .unwrap();
        let job = job(&JobRequest {
            name: "n",
            namespace: "agents",
            target: None,
            agent: &agent,
            secret: "s",
        })
        .unwrap();
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["metadata"]["namespace"], "agents");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"app": "mirrord", "team": "a"})
        );
        assert_eq!(
            v["spec"]["template"]["metadata"]["annotations"]["note"],
            "x"
        );
        assert_eq!(v["spec"]["ttlSecondsAfterFinished"], 5);
        let pod = &v["spec"]["template"]["spec"];
        assert!(
            pod.get("hostPID").is_none() && pod.get("nodeName").is_none(),
            "targetless: {pod}"
        );
        assert_eq!(pod["tolerations"], json!([{"operator": "Exists"}]));
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "registry.example/mirrord-agent:1");
        assert_eq!(c["args"][3], "7");
        assert_eq!(c["securityContext"]["privileged"], true);
        assert_eq!(c["resources"], json!({"limits": {"memory": "128Mi"}}));
    }
}
