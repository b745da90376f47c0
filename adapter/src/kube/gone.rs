//! Is the target pod the CLI resolved still the one it picked? Asked just
//! before the agent is created ([`super::confirm`]) and once more after a
//! failed start (to put the reason in front of the error): a pod that was
//! deleted, is being deleted, was replaced under the same name (a new
//! UID), stopped running or runs another container than the one resolved.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::client::Cluster;
use super::error::{KubeError, Request};
use super::resolve::Resolved;

/// `Some(change)` when `resolved`'s pod is gone, going, replaced, not
/// running or runs another container; `None` when it is unchanged. The
/// change names the pod and the target it was picked for.
pub async fn target_change(
    cluster: &Cluster,
    resolved: &Resolved,
) -> Result<Option<String>, KubeError> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &resolved.namespace);
    let request = Request {
        verb: "get",
        resource: "pods",
        namespace: Some(&resolved.namespace),
        url: &cluster.url,
    };
    let pod = pods
        .get_opt(&resolved.pod)
        .await
        .map_err(|e| KubeError::from_api(e, request))?;
    Ok(change_of(resolved, pod.as_ref()))
}

/// The pure half of [`target_change`]: what differs between the pod the
/// CLI resolved and `now` (the pod of that name as the API has it).
pub fn change_of(resolved: &Resolved, now: Option<&Pod>) -> Option<String> {
    let what = format!(
        "the target pod {} in namespace \"{}\" (picked for {})",
        resolved.pod, resolved.namespace, resolved.target
    );
    let Some(pod) = now else {
        return Some(format!("{what} is gone since it was resolved"));
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(format!("{what} is being deleted"));
    }
    if let (Some(was), Some(is)) = (&resolved.pod_uid, &pod.metadata.uid) {
        if was != is {
            return Some(format!(
                "{what} was replaced by a new pod of the same name since it was resolved (uid \
                 {was}, now {is})"
            ));
        }
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some("Running") {
        return Some(format!(
            "{what} is no longer running ({})",
            phase.unwrap_or("no phase")
        ));
    }
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|list| list.iter().find(|c| c.name == resolved.container))
        .and_then(|c| c.container_id.clone());
    if id.as_deref() != Some(resolved.container_id.as_str()) {
        return Some(format!(
            "{what}: container {} is no longer {} (it restarted or was replaced)",
            resolved.container, resolved.container_id
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved() -> Resolved {
        Resolved {
            target: "statefulset/db".into(),
            namespace: "shop".into(),
            pod: "db-0".into(),
            pod_uid: Some("uid-1".into()),
            container: "postgres".into(),
            container_id: "containerd://aaa".into(),
            node: None,
            ready: 1,
            total: 1,
        }
    }

    fn pod(uid: &str, phase: &str, id: &str, deleting: bool) -> Pod {
        let mut pod = serde_json::json!({
            "metadata": {"name": "db-0", "namespace": "shop", "uid": uid},
            "status": {
                "phase": phase,
                "containerStatuses": [{
                    "name": "postgres", "image": "postgres:16", "imageID": "",
                    "ready": true, "restartCount": 0, "containerID": id,
                }],
            },
        });
        if deleting {
            pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        }
        serde_json::from_value(pod).expect("a pod")
    }

    /// Each way a pod can change, as data: (pod now, what the message says).
    #[test]
    fn every_change_of_the_picked_pod_is_named() {
        let head = "the target pod db-0 in namespace \"shop\" (picked for statefulset/db)";
        let cases = [
            (None, format!("{head} is gone since it was resolved")),
            (
                Some(pod("uid-1", "Running", "containerd://aaa", true)),
                format!("{head} is being deleted"),
            ),
            (
                Some(pod("uid-2", "Running", "containerd://aaa", false)),
                format!(
                    "{head} was replaced by a new pod of the same name since it was resolved \
                     (uid uid-1, now uid-2)"
                ),
            ),
            (
                Some(pod("uid-1", "Succeeded", "containerd://aaa", false)),
                format!("{head} is no longer running (Succeeded)"),
            ),
            (
                Some(pod("uid-1", "Running", "containerd://bbb", false)),
                format!(
                    "{head}: container postgres is no longer containerd://aaa (it restarted or \
                     was replaced)"
                ),
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(
                change_of(&resolved(), now.as_ref()).as_deref(),
                Some(expected.as_str())
            );
        }
        let same = pod("uid-1", "Running", "containerd://aaa", false);
        assert_eq!(change_of(&resolved(), Some(&same)), None);
    }
}
