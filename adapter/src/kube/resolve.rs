//! Target resolution: from `deployment/web` (or any other kind) to one
//! running, ready pod, its container and the container's runtime ID.
//!
//! # Flow
//! 1. Get the named object (`pod/`: the pod itself).
//! 2. Find its pods: a workload's `spec.selector` (a rollout's, or that of
//!    the deployment its `workloadRef` names), a service's `spec.selector`,
//!    a cronjob's newest job's selector.
//! 3. Pick the first running, ready pod by name, then the container (see
//!    [`super::pods::container`]).
//!
//! # Errors
//! A name that is not there lists the close names and what exists of that
//! kind; a workload without a ready pod says what state each pod is in; API
//! errors name the verb, resource and namespace that failed.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, ListParams};
use mirrord_config::Target;
use serde_json::Value;

use super::client::Cluster;
use super::error::{is_not_found, KubeError, Request};
use super::kinds::Kind;
use super::pods;
use super::suggest::close_names;

/// A target resolved to a pod's container. The CLI resolves once and hands
/// this (as JSON) to the intproxy, which starts the agent for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    /// What the user named: `deployment/web`.
    pub target: String,
    pub namespace: String,
    pub pod: String,
    /// The pod's `metadata.uid`: a pod replaced under the same name (a
    /// StatefulSet's) has a new one.
    #[serde(default)]
    pub pod_uid: Option<String>,
    pub container: String,
    /// `containerd://…`, `cri-o://…` or `docker://…`.
    pub container_id: String,
    /// The node the pod runs on (where the agent must run).
    pub node: Option<String>,
    /// How many of the target's pods are ready (the picked one included).
    pub ready: usize,
    pub total: usize,
}

impl Resolved {
    /// Says which pod was picked, for the terminal.
    pub fn summary(&self) -> String {
        let of = if self.target.starts_with("pod/") {
            String::new()
        } else {
            format!(" ({} of {} pods ready)", self.ready, self.total)
        };
        format!(
            "{} → pod {}{of}, container {}, namespace {}",
            self.target, self.pod, self.container, self.namespace
        )
    }
}

/// Resolves a Kubernetes target in `namespace` (default: the context's).
/// `targetless` and `pid/N` are not Kubernetes targets: `Ok(None)`.
pub async fn resolve(
    cluster: &Cluster,
    target: &Target,
    namespace: Option<&str>,
) -> Result<Option<Resolved>, KubeError> {
    let ns = namespace.unwrap_or(&cluster.default_namespace);
    let (kind, name, container) = match target {
        Target::Pid(_) | Target::Targetless => return Ok(None),
        Target::Pod { name, container } => (Kind::Pod, name, container.as_deref()),
        Target::Deployment { name, container } => (Kind::Deployment, name, container.as_deref()),
        Target::StatefulSet { name, container } => (Kind::StatefulSet, name, container.as_deref()),
        Target::DaemonSet { name, container } => (Kind::DaemonSet, name, container.as_deref()),
        Target::Job { name, container } => (Kind::Job, name, container.as_deref()),
        Target::CronJob { name, container } => (Kind::CronJob, name, container.as_deref()),
        Target::Rollout { name, container } => (Kind::Rollout, name, container.as_deref()),
        Target::Service { name } => (Kind::Service, name, None),
    };
    let label = format!("{}/{name}", kind.word());
    let object = get(cluster, kind, ns, name).await?;
    let pods = match kind {
        Kind::Pod => vec![
            serde_json::from_value::<Pod>(object_json(&object)).map_err(|e| {
                KubeError::Target(format!(
                    "{label}: the API server sent a pod that does not parse: {e}"
                ))
            })?,
        ],
        Kind::CronJob => {
            let job = newest_job_of(cluster, ns, name, &object).await?;
            let selector = selector_of(&label, Kind::Job, &job)?;
            list_pods(cluster, ns, &selector).await?
        }
        Kind::Rollout if object.data["spec"]["workloadRef"]["name"].is_string() => {
            let deployment = object.data["spec"]["workloadRef"]["name"]
                .as_str()
                .unwrap_or_default();
            let workload = get(cluster, Kind::Deployment, ns, deployment).await?;
            let selector = selector_of(&label, Kind::Deployment, &workload)?;
            list_pods(cluster, ns, &selector).await?
        }
        _ => {
            let selector = selector_of(&label, kind, &object)?;
            list_pods(cluster, ns, &selector).await?
        }
    };
    if pods.is_empty() {
        return Err(KubeError::Target(format!(
            "{label} in namespace \"{ns}\" has no pods; start one (scale it up) or pick another target \
             (`mirrord ls -n {ns}`)"
        )));
    }
    let Some(pod) = pods::pick(&pods) else {
        let states: Vec<String> = pods.iter().map(pods::describe).collect();
        return Err(KubeError::Target(format!(
            "{label} in namespace \"{ns}\" has no running, ready pod: {}; wait until one is ready \
             (`kubectl get pods -n {ns}`)",
            states.join(", ")
        )));
    };
    let chosen =
        pods::container(pod, container).map_err(|e| KubeError::Target(format!("{label}: {e}")))?;
    Ok(Some(Resolved {
        target: target.to_string(),
        namespace: ns.to_owned(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        pod_uid: pod.metadata.uid.clone(),
        container: chosen.name,
        container_id: chosen.id,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ready: pods.iter().filter(|p| pods::is_ready(p)).count(),
        total: pods.len(),
    }))
}

fn dynamic(cluster: &Cluster, kind: Kind, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(cluster.client.clone(), ns, &kind.resource())
}

fn object_json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Gets one object; a 404 becomes a message with the close names.
async fn get(
    cluster: &Cluster,
    kind: Kind,
    ns: &str,
    name: &str,
) -> Result<DynamicObject, KubeError> {
    let resource = kind.resource_name();
    let request = Request {
        verb: "get",
        resource: &resource,
        namespace: Some(ns),
        url: &cluster.url,
    };
    match dynamic(cluster, kind, ns).get(name).await {
        Ok(object) => Ok(object),
        Err(e) if is_not_found(&e) => Err(not_found(cluster, kind, ns, name).await),
        Err(e) => Err(KubeError::from_api(e, request)),
    }
}

/// `deployment/webb not found in namespace "shop"; did you mean deployment/web? ...`
async fn not_found(cluster: &Cluster, kind: Kind, ns: &str, name: &str) -> KubeError {
    let word = kind.word();
    let existing: Vec<String> = match dynamic(cluster, kind, ns)
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect(),
        Err(e) => {
            return KubeError::from_api(
                e,
                Request {
                    verb: "list",
                    resource: &kind.resource_name(),
                    namespace: Some(ns),
                    url: &cluster.url,
                },
            )
        }
    };
    let names: Vec<&str> = existing.iter().map(String::as_str).collect();
    let close = close_names(name, &names);
    let mut message = format!("{word}/{name} not found in namespace \"{ns}\"");
    if !close.is_empty() {
        let close: Vec<String> = close.iter().map(|n| format!("{word}/{n}")).collect();
        message.push_str(&format!("; did you mean {}?", close.join(" or ")));
    }
    if names.is_empty() {
        message.push_str(&format!("; there are no {word}s in \"{ns}\""));
    } else {
        message.push_str(&format!("; {word}s in \"{ns}\": {}", names.join(", ")));
    }
    message.push_str(&format!(
        " (`mirrord ls -n {ns}` lists every target; `-n` picks another namespace)"
    ));
    KubeError::Target(message)
}

/// The label selector string of a workload, service or job.
fn selector_of(label: &str, kind: Kind, object: &DynamicObject) -> Result<String, KubeError> {
    let spec = &object.data["spec"];
    let selector = match kind {
        Kind::Service => {
            let labels = spec["selector"]
                .as_object()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    KubeError::Target(format!(
                        "{label} has no pod selector (it fronts something outside the cluster); \
                     target one of its pods or a workload instead"
                    ))
                })?;
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        }
        Kind::Job if spec["selector"].is_null() => {
            let name = object.metadata.name.as_deref().unwrap_or_default();
            format!("batch.kubernetes.io/job-name={name}")
        }
        _ => {
            let selector: LabelSelector = serde_json::from_value(spec["selector"].clone())
                .map_err(|e| {
                    KubeError::Target(format!("{label}: its spec.selector does not parse: {e}"))
                })?;
            selector_string(&selector)
        }
    };
    if selector.is_empty() {
        return Err(KubeError::Target(format!(
            "{label} has an empty pod selector"
        )));
    }
    Ok(selector)
}

/// `app=web,tier in (a,b),!canary`.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

async fn list_pods(cluster: &Cluster, ns: &str, selector: &str) -> Result<Vec<Pod>, KubeError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|e| {
            KubeError::from_api(
                e,
                Request {
                    verb: "list",
                    resource: "pods",
                    namespace: Some(ns),
                    url: &cluster.url,
                },
            )
        })
}

/// The newest job a cronjob owns.
async fn newest_job_of(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    cronjob: &DynamicObject,
) -> Result<DynamicObject, KubeError> {
    let jobs = dynamic(cluster, Kind::Job, ns)
        .list(&ListParams::default())
        .await
        .map_err(|e| {
            KubeError::from_api(
                e,
                Request {
                    verb: "list",
                    resource: &Kind::Job.resource_name(),
                    namespace: Some(ns),
                    url: &cluster.url,
                },
            )
        })?;
    jobs.items
        .into_iter()
        .filter(|j| {
            j.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "CronJob" && o.name == name)
        })
        .max_by(|a, b| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
        .ok_or_else(|| {
            let schedule = cronjob.data["spec"]["schedule"].as_str().unwrap_or("?");
            KubeError::Target(format!(
                "cronjob/{name} in namespace \"{ns}\" has no job now (it runs on schedule \"{schedule}\"); \
                 target it while a job runs, or target job/<name>"
            ))
        })
}
