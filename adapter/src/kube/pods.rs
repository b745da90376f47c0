//! Choosing among pods and containers, without the network: which pods are
//! running and ready, how to describe one that is not, which container of
//! a pod is the target, and its runtime container ID.

use k8s_openapi::api::core::v1::Pod;

/// Sidecars that are never the container a user means when a pod has more
/// than one and none is named.
const SIDECARS: &[&str] = &[
    "istio-proxy",
    "istio-init",
    "linkerd-proxy",
    "linkerd-init",
    "envoy",
    "envoy-sidecar",
    "vault-agent",
    "cloud-sql-proxy",
    "datadog-agent",
];

/// The annotation kubectl reads for a pod's default container.
const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";

/// Whether the pod is running, ready and not being deleted.
pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    running && ready && pod.metadata.deletion_timestamp.is_none()
}

/// `web-1 (Pending: ContainerCreating)`, for saying why a pod was not picked.
pub fn describe(pod: &Pod) -> String {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    if pod.metadata.deletion_timestamp.is_some() {
        return format!("{name} (terminating)");
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let waiting: Vec<String> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .collect();
    match (phase, waiting.is_empty()) {
        ("Running", true) => format!("{name} (Running, not ready)"),
        (phase, true) => format!("{name} ({phase})"),
        (phase, false) => format!("{name} ({phase}: {})", waiting.join(", ")),
    }
}

/// The first ready pod by name (a stable choice between sessions).
pub fn pick(pods: &[Pod]) -> Option<&Pod> {
    let mut ready: Vec<&Pod> = pods.iter().filter(|p| is_ready(p)).collect();
    ready.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    ready.into_iter().next()
}

/// The target container of a pod and its runtime ID (`containerd://…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub id: String,
}

/// Picks the container: the named one, else the only one, else the
/// `default-container` annotation, else the only one that is not a known
/// sidecar. The message of an error names the containers there are.
pub fn container(pod: &Pod, wanted: Option<&str>) -> Result<Container, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("?");
    let names: Vec<&str> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    let name = match wanted {
        Some(w) if names.contains(&w) => w,
        Some(w) => {
            return Err(format!(
                "pod {pod_name} has no container \"{w}\"; its containers are: {}",
                names.join(", ")
            ))
        }
        None => {
            let annotated = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CONTAINER))
                .map(String::as_str)
                .filter(|a| names.contains(a));
            let apps: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| !SIDECARS.contains(n))
                .collect();
            match (names.as_slice(), annotated, apps.as_slice()) {
                ([only], _, _) => only,
                (_, Some(annotated), _) => annotated,
                (_, None, [only]) => only,
                _ => {
                    return Err(format!(
                        "pod {pod_name} has several containers ({}); name one with \
                         pod/{pod_name}/container/<name> (or <kind>/<name>/container/<name>)",
                        names.join(", ")
                    ))
                }
            }
        }
    };
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name));
    let id = status
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()) || c.ready)
        .and_then(|c| c.container_id.clone())
        .ok_or_else(|| format!("container \"{name}\" of pod {pod_name} is not running"))?;
    Ok(Container {
        name: name.to_owned(),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    fn running(name: &str, containers: &[&str]) -> Pod {
        let specs: Vec<_> = containers
            .iter()
            .map(|c| serde_json::json!({"name": c}))
            .collect();
        let statuses: Vec<_> = containers
            .iter()
            .map(|c| {
                serde_json::json!({"name": c, "ready": true, "restartCount": 0, "image": "i", "imageID": "",
                    "containerID": format!("containerd://{c}-id"), "state": {"running": {}}})
            })
            .collect();
        pod(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": specs},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": statuses}
        }))
    }

    #[test]
    fn the_first_ready_pod_is_picked_and_others_are_described() {
        let pending = pod(serde_json::json!({
            "metadata": {"name": "a"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "m", "ready": false, "restartCount": 0,
                "image": "i", "imageID": "", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}
        }));
        let pods = vec![running("c", &["m"]), pending.clone(), running("b", &["m"])];
        assert_eq!(
            pick(&pods).and_then(|p| p.metadata.name.clone()).as_deref(),
            Some("b")
        );
        assert_eq!(describe(&pending), "a (Pending: ImagePullBackOff)");
        assert!(pick(&[pending]).is_none());
    }

    #[test]
    fn containers_are_chosen_like_kubectl_and_sidecars_are_skipped() {
        let one = running("p", &["main"]);
        assert_eq!(
            container(&one, None).unwrap(),
            Container {
                name: "main".into(),
                id: "containerd://main-id".into()
            }
        );
        let meshed = running("p", &["app", "istio-proxy"]);
        assert_eq!(container(&meshed, None).unwrap().name, "app");
        assert_eq!(
            container(&meshed, Some("istio-proxy")).unwrap().name,
            "istio-proxy"
        );
        let two = running("p", &["api", "worker"]);
        let err = container(&two, None).unwrap_err();
        assert!(
            err.contains("several containers (api, worker)")
                && err.contains("pod/p/container/<name>"),
            "{err}"
        );
        let err = container(&two, Some("web")).unwrap_err();
        assert_eq!(
            err,
            "pod p has no container \"web\"; its containers are: api, worker"
        );
        let mut annotated = two.clone();
        annotated.metadata.annotations =
            Some([(DEFAULT_CONTAINER.to_owned(), "worker".to_owned())].into());
        assert_eq!(container(&annotated, None).unwrap().name, "worker");
    }
}
