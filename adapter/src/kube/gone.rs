//! After a failed agent start: is the target pod the CLI resolved still the
//! one it picked? The target is resolved once (by the CLI), so a pod that
//! was deleted or replaced before the agent started is only noticed here,
//! and the error then says so first.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::client::Cluster;
use super::error::{KubeError, Request};
use super::resolve::Resolved;

/// `Some(reason)` when `resolved`'s pod is gone, going, or runs another
/// container than the one resolved; `None` when it is unchanged.
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
    let what = format!(
        "the target pod {} in namespace \"{}\" (picked for {})",
        resolved.pod, resolved.namespace, resolved.target
    );
    let again = "run mirrord again to pick a running pod";
    let Some(pod) = pod else {
        return Ok(Some(format!(
            "{what} is gone since it was resolved; {again}"
        )));
    };
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(Some(format!("{what} is being deleted; {again}")));
    }
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|list| list.iter().find(|c| c.name == resolved.container))
        .and_then(|c| c.container_id.clone());
    if id.as_deref() != Some(resolved.container_id.as_str()) {
        return Ok(Some(format!(
            "{what}: container {} is no longer {} (it restarted or was replaced); {again}",
            resolved.container, resolved.container_id
        )));
    }
    Ok(None)
}
