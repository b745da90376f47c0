//! Just before the agent is created: is the pod the CLI resolved still
//! there, the same pod (UID) and running? The CLI resolves the target once;
//! between that and the agent's start the pod may be deleted or replaced
//! (a rollout, an eviction, a StatefulSet pod recreated under its name).
//!
//! # Flow
//! 1. Get the picked pod by name ([`super::gone::target_change`]).
//! 2. Unchanged: start the agent for it.
//! 3. Changed, and the user named a workload (`deployment/web`): resolve
//!    the target once more and start the agent for the pod picked now.
//! 4. Changed, and the user named the pod (`pod/NAME`): fail, naming the
//!    change and what to target instead; no agent is created.

use mirrord_config::Target;

use super::client::Cluster;
use super::error::KubeError;
use super::gone::target_change;
use super::resolve::{resolve, Resolved};

/// What the check found.
#[derive(Debug)]
pub enum Confirmed {
    /// The pod is as the CLI resolved it.
    Unchanged(Resolved),
    /// The pod changed (`change` says how) and the workload was resolved
    /// again to `now`.
    Repicked { change: String, now: Resolved },
}

/// Checks `resolved`'s pod and, for a workload target whose pod changed,
/// picks again once.
pub async fn confirm(cluster: &Cluster, resolved: Resolved) -> Result<Confirmed, KubeError> {
    let Some(change) = target_change(cluster, &resolved).await? else {
        return Ok(Confirmed::Unchanged(resolved));
    };
    let ns = resolved.namespace.as_str();
    if resolved.target.starts_with("pod/") {
        return Err(KubeError::Target(format!(
            "{change}; no agent was started for it. Run mirrord again for the pod that is there \
             now (`mirrord ls -n {ns}` lists them), or target its workload (deployment/..., \
             statefulset/...) so that mirrord picks a running pod itself"
        )));
    }
    let target: Target = resolved.target.parse().map_err(|e| {
        KubeError::Target(format!(
            "{change}; cannot pick again: the target {} does not parse: {e}",
            resolved.target
        ))
    })?;
    match resolve(cluster, &target, Some(ns)).await {
        Ok(Some(now)) => Ok(Confirmed::Repicked { change, now }),
        Ok(None) => Err(KubeError::Target(format!(
            "{change}; cannot pick again: {} is not a Kubernetes target",
            resolved.target
        ))),
        Err(e) => Err(KubeError::Target(format!(
            "{change}; picking {} again failed: {e}",
            resolved.target
        ))),
    }
}
