//! The intproxy's agent in a Kubernetes cluster: resolve the target, start
//! the agent's Job, and connect through a port-forward with the session
//! secret; the Job is deleted when the intproxy stops the agent.

use std::time::Duration;

use anyhow::Context;

use super::agent::{self, AgentClient};
use crate::kube::{self, launch::AgentPod, KubeSettings};

/// Starts the agent for the Kubernetes target of `config_json` (the
/// resolved config `mirrord exec` passed). Returns the Job (to delete),
/// the connected client and the target PID the agent found.
pub async fn start(
    config_json: &str,
    timeout: Duration,
) -> anyhow::Result<(AgentPod, AgentClient, Option<u32>)> {
    let config = mirrord_config::from_json(config_json).context("the intproxy got a bad config")?;
    let target = config
        .target
        .path
        .as_ref()
        .context("no Kubernetes target in the config")?;
    let cluster = kube::connect(&KubeSettings::from_config(&config)).await?;
    let resolved = kube::resolve(&cluster, target, config.target.namespace.as_deref())
        .await?
        .with_context(|| format!("{target} is not a Kubernetes target"))?;
    let pod = kube::launch::launch(&cluster, Some(&resolved), &config.agent, &|_| {}).await?;
    let connected = async {
        let stream = pod.connect().await?;
        agent::connect_stream(stream, Some(pod.secret.clone())).await
    };
    match tokio::time::timeout(timeout, connected).await {
        Ok(Ok((client, target_pid))) => Ok((pod, client, target_pid)),
        failed => {
            let _ = pod.delete().await;
            match failed {
                Ok(Err(e)) => {
                    Err(e.context(format!("cannot connect to the agent pod {}", pod.pod)))
                }
                _ => anyhow::bail!(
                    "the agent pod {} did not answer within {} s",
                    pod.pod,
                    timeout.as_secs()
                ),
            }
        }
    }
}
