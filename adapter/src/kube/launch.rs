//! Starting the agent as a Job and reaching it through the API server.
//!
//! # Flow
//! 1. Create the Job ([`super::agent_job`]) with a fresh name and secret.
//! 2. Watch its pod (label `batch.kubernetes.io/job-name`) until it is
//!    running and ready, within `agent.startup_timeout`.
//! 3. [`AgentPod::connect`]: a port-forward (`Api::portforward`) to the
//!    agent's port; the caller says Hello with [`AgentPod::secret`].
//! 4. [`AgentPod::delete`] on every exit path the CLI sees; the Job's TTL
//!    covers the ones it does not (`kill -9`).
//!
//! # Errors
//! An image that cannot be pulled is reported with the pod's Warning
//! events; a pod that is not ready in time with its state; RBAC refusals
//! name `create jobs.batch` and the namespace. A Job whose start failed is
//! deleted before the error is returned.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use mirrord_config::AgentConfig;

use super::agent_job::{job, JobRequest, AGENT_PORT};
use super::client::Cluster;
use super::error::{KubeError, Request};
use super::pods;
use super::resolve::Resolved;

/// Image states of a pod that will not start without a new image.
const PULL_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// A started agent Job and its ready pod.
pub struct AgentPod {
    cluster: Cluster,
    /// The Job's name, or the ephemeral container's.
    pub job: String,
    pub namespace: String,
    pub pod: String,
    /// The agent's port in the pod.
    pub port: u16,
    /// An ephemeral container in the target pod (`agent.ephemeral`), not a Job.
    pub ephemeral: bool,
    /// What the client must present in its Hello.
    pub secret: String,
}

/// Creates the Job for `target` (`None`: targetless) and waits for its pod.
pub async fn launch(
    cluster: &Cluster,
    target: Option<&Resolved>,
    agent: &AgentConfig,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<AgentPod, KubeError> {
    let namespace = agent
        .namespace
        .clone()
        .or_else(|| target.map(|t| t.namespace.clone()))
        .unwrap_or_else(|| cluster.default_namespace.clone());
    let name = format!("mirrord-agent-{}", random_hex(5)?);
    let secret = random_hex(16)?;
    if agent.ephemeral {
        let target = target.ok_or_else(|| {
            KubeError::Target(
                "agent.ephemeral needs a target pod to add the agent to; targetless runs need a Job \
                 (set agent.ephemeral to false)"
                    .to_owned(),
            )
        })?;
        return launch_ephemeral(cluster, target, agent, name, secret, progress).await;
    }
    let spec = job(&JobRequest {
        name: &name,
        namespace: &namespace,
        target,
        agent,
        secret: &secret,
    })
    .map_err(|e| KubeError::Target(format!("cannot build the agent's Job: {e}")))?;
    progress("creating the agent");
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), &namespace);
    jobs.create(&PostParams::default(), &spec)
        .await
        .map_err(|e| {
            KubeError::from_api(
                e,
                Request {
                    verb: "create",
                    resource: "jobs.batch",
                    namespace: Some(&namespace),
                    url: &cluster.url,
                },
            )
        })?;
    let agent_pod = AgentPod {
        cluster: cluster.clone(),
        job: name,
        namespace,
        pod: String::new(),
        port: AGENT_PORT,
        ephemeral: false,
        secret,
    };
    progress("waiting for the agent pod");
    let timeout = Duration::from_secs(agent.startup_timeout);
    match wait_ready(&agent_pod, timeout).await {
        Ok(pod) => Ok(AgentPod { pod, ..agent_pod }),
        Err(e) => {
            // Best effort: the TTL does not apply to a Job that never finished.
            let _ = agent_pod.delete().await;
            Err(e)
        }
    }
}

impl AgentPod {
    /// A connection to the agent through the API server.
    pub async fn connect(&self) -> Result<tokio::io::DuplexStream, KubeError> {
        let pods: Api<Pod> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        let request = Request {
            verb: "create",
            resource: "pods/portforward",
            namespace: Some(&self.namespace),
            url: &self.cluster.url,
        };
        let mut forwarder = pods
            .portforward(&self.pod, &[self.port])
            .await
            .map_err(|e| KubeError::from_api(e, request))?;
        forwarder.take_stream(self.port).ok_or_else(|| {
            KubeError::Target(format!(
                "the port-forward to agent pod {} has no stream",
                self.pod
            ))
        })
    }

    /// Deletes the Job and, with it, its pod. An ephemeral container
    /// cannot be removed: its agent exits once its client is gone.
    pub async fn delete(&self) -> Result<(), KubeError> {
        if self.ephemeral {
            return Ok(());
        }
        let jobs: Api<Job> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        match jobs.delete(&self.job, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if super::error::is_not_found(&e) => Ok(()),
            Err(e) => Err(KubeError::from_api(
                e,
                Request {
                    verb: "delete",
                    resource: "jobs.batch",
                    namespace: Some(&self.namespace),
                    url: &self.cluster.url,
                },
            )),
        }
    }
}

/// Watches the Job's pod until it is ready; returns its name.
async fn wait_ready(agent: &AgentPod, timeout: Duration) -> Result<String, KubeError> {
    let ns = agent.namespace.as_str();
    let pods: Api<Pod> = Api::namespaced(agent.cluster.client.clone(), ns);
    let params = WatchParams::default().timeout(timeout.as_secs().clamp(1, 290) as u32);
    let params = if agent.ephemeral {
        params.fields(&format!("metadata.name={}", agent.pod))
    } else {
        params.labels(&format!("batch.kubernetes.io/job-name={}", agent.job))
    };
    let request = Request {
        verb: "watch",
        resource: "pods",
        namespace: Some(ns),
        url: &agent.cluster.url,
    };
    let mut last: Option<Pod> = None;
    let watching = async {
        let mut events = pods
            .watch(&params, "0")
            .await
            .map_err(|e| KubeError::from_api(e, request))?
            .boxed();
        while let Some(event) = events
            .try_next()
            .await
            .map_err(|e| KubeError::from_api(e, request))?
        {
            let pod = match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => pod,
                WatchEvent::Error(status) => {
                    return Err(KubeError::Target(format!(
                        "watching the agent pod failed: {} ({})",
                        status.message, status.code
                    )))
                }
                _ => continue,
            };
            let ready = match agent.ephemeral {
                true => ephemeral_state(&pod, &agent.job).is_some_and(|s| s.running.is_some()),
                false => pods::is_ready(&pod),
            };
            if ready {
                return Ok(pod.metadata.name.unwrap_or_default());
            }
            let failure = match agent.ephemeral {
                true => ephemeral_state(&pod, &agent.job)
                    .and_then(|s| s.waiting.as_ref()?.reason.clone())
                    .filter(|r| PULL_FAILURES.contains(&r.as_str())),
                false => pull_failure(&pod),
            };
            if let Some(reason) = failure {
                return Err(image_error(agent, &pod, &reason).await);
            }
            if !agent.ephemeral {
                if let Some(ended) = ended_early(agent, &pod) {
                    return Err(ended);
                }
            }
            last = Some(pod);
        }
        Err(KubeError::Target(String::new()))
    };
    match tokio::time::timeout(timeout, watching).await {
        Ok(Err(KubeError::Target(m))) if m.is_empty() => {
            Err(not_ready(agent, last.as_ref(), timeout))
        }
        Ok(result) => result,
        Err(_) => Err(not_ready(agent, last.as_ref(), timeout)),
    }
}

/// An agent pod that finished before it was ever ready: the agent exited
/// at start (it found no target container, say); the pod's message says why.
fn ended_early(agent: &AgentPod, pod: &Pod) -> Option<KubeError> {
    let status = pod.status.as_ref()?;
    let phase = status.phase.as_deref()?;
    if phase != "Failed" && phase != "Succeeded" {
        return None;
    }
    let why = status
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Some(KubeError::Target(format!(
        "the agent (job {} in namespace \"{}\") exited before it was ready ({phase}){why}; see \
         `kubectl logs job/{} -n {}`",
        agent.job, agent.namespace, agent.job, agent.namespace
    )))
}

fn not_ready(agent: &AgentPod, pod: Option<&Pod>, timeout: Duration) -> KubeError {
    let state = match pod {
        Some(pod) => format!("pod {}", pods::describe(pod)),
        None => "no pod was created for it".to_owned(),
    };
    KubeError::Target(format!(
        "the agent (job {} in namespace \"{}\") was not ready within {} s: {state}; raise \
         agent.startup_timeout, or look with `kubectl describe job {} -n {}`",
        agent.job,
        agent.namespace,
        timeout.as_secs(),
        agent.job,
        agent.namespace
    ))
}

/// The state of the ephemeral container `name` of `pod`.
fn ephemeral_state<'a>(
    pod: &'a Pod,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerState> {
    pod.status
        .as_ref()?
        .ephemeral_container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)?
        .state
        .as_ref()
}

/// Adds the agent as an ephemeral container of the target pod and waits
/// until it runs.
async fn launch_ephemeral(
    cluster: &Cluster,
    target: &Resolved,
    agent: &AgentConfig,
    name: String,
    secret: String,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<AgentPod, KubeError> {
    let port = 30_000 + u16::from_str_radix(&random_hex(2)?, 16).unwrap_or(0) % 30_000;
    let request = JobRequest {
        name: &name,
        namespace: &target.namespace,
        target: Some(target),
        agent,
        secret: &secret,
    };
    let container = super::agent_job::ephemeral_container(&request, target, port);
    progress("adding the agent to the target pod");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &target.namespace);
    let patch = serde_json::json!({"spec": {"ephemeralContainers": [container]}});
    pods.patch_ephemeral_containers(
        &target.pod,
        &PatchParams::default(),
        &Patch::Strategic(patch),
    )
    .await
    .map_err(|e| {
        KubeError::from_api(
            e,
            Request {
                verb: "patch",
                resource: "pods/ephemeralcontainers",
                namespace: Some(&target.namespace),
                url: &cluster.url,
            },
        )
    })?;
    let agent_pod = AgentPod {
        cluster: cluster.clone(),
        job: name,
        namespace: target.namespace.clone(),
        pod: target.pod.clone(),
        port,
        ephemeral: true,
        secret,
    };
    progress("waiting for the agent container");
    wait_ready(&agent_pod, Duration::from_secs(agent.startup_timeout)).await?;
    Ok(agent_pod)
}

fn pull_failure(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .find(|r| PULL_FAILURES.contains(&r.as_str()))
}

/// The pull failure with the pod's Warning events.
async fn image_error(agent: &AgentPod, pod: &Pod, reason: &str) -> KubeError {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let image = match agent.ephemeral {
        true => spec
            .and_then(|s| s.ephemeral_containers.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == agent.job))
            .and_then(|c| c.image.clone()),
        false => spec
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone()),
    }
    .unwrap_or_default();
    let events: Api<Event> = Api::namespaced(agent.cluster.client.clone(), &agent.namespace);
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let messages: Vec<String> = match events.list(&params).await {
        Ok(list) => list
            .items
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .filter_map(|e| e.message)
            .collect(),
        Err(e) => {
            tracing::debug!("cannot read the agent pod's events: {e}");
            Vec::new()
        }
    };
    let events = if messages.is_empty() {
        String::new()
    } else {
        format!(" Events: {}.", messages.join("; "))
    };
    KubeError::Target(format!(
        "the agent image \"{image}\" cannot be pulled ({reason}, pod {name} in namespace \"{}\").{events} \
         Set agent.image to an image your nodes can pull (build it from agent/Dockerfile).",
        agent.namespace
    ))
}

/// `bytes` random bytes as hex, from the kernel's CSPRNG.
fn random_hex(bytes: usize) -> Result<String, KubeError> {
    let mut buf = vec![0u8; bytes];
    // SAFETY: the buffer is valid for `bytes` bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if usize::try_from(n).ok() != Some(bytes) {
        return Err(KubeError::Target(format!(
            "cannot make a session secret: getrandom failed ({})",
            std::io::Error::last_os_error()
        )));
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
