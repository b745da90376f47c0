//! The intproxy's agent in a Kubernetes cluster: start the agent for the
//! pod the CLI resolved (the target is resolved once, by the CLI; or no pod:
//! targetless in the cluster), and connect through a port-forward with the
//! session secret; the Job is deleted when the intproxy stops the agent.

use std::time::Duration;

use anyhow::Context;

use super::agent::{self, AgentClient};
use crate::kube::{self, launch::AgentPod, KubeSettings, Resolved};

/// Logs how long each start-up phase took (`MIRRORD_LOG=mirrord::timing=info`;
/// the Kubernetes benchmark reads these lines; `resolve` is the CLI's).
struct Phase(std::time::Instant);

impl Phase {
    fn start() -> Phase {
        Phase(std::time::Instant::now())
    }

    fn done(&mut self, name: &str) {
        let ms = self.0.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(target: "mirrord::timing", "phase {name}: {ms:.1} ms");
        self.0 = std::time::Instant::now();
    }
}

/// Starts the agent for `resolved_json` (the CLI's `kube::Resolved`; `None`:
/// targetless, the agent as a Job on any node) with the config of
/// `config_json`. Returns the Job (to delete), the connected client and the
/// target PID the agent found.
pub async fn start(
    config_json: &str,
    resolved_json: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<(AgentPod, AgentClient, Option<u32>)> {
    let config = mirrord_config::from_json(config_json).context("the intproxy got a bad config")?;
    let resolved: Option<Resolved> = resolved_json
        .map(serde_json::from_str)
        .transpose()
        .context("the intproxy got a bad resolved target")?;
    let mut phase = Phase::start();
    let cluster = kube::connect(&KubeSettings::from_config(&config)).await?;
    let progress = |step: &str| {
        super::print_ready(&super::Announce::Progress {
            step: step.to_owned(),
        });
    };
    let resolved = match resolved {
        Some(resolved) => Some(confirm(&cluster, resolved).await?),
        None => None,
    };
    let started = async {
        let pod =
            kube::launch::launch(&cluster, resolved.as_ref(), &config.agent, &progress).await?;
        phase.done("agent ready");
        progress("connecting to the agent");
        Ok::<_, anyhow::Error>(pod)
    };
    let pod = match started.await {
        Ok(pod) => pod,
        Err(e) => return Err(explain(&cluster, resolved.as_ref(), e).await),
    };
    let connected = async {
        let stream = pod.connect().await?;
        agent::connect_stream(stream, Some(pod.secret.clone())).await
    };
    match tokio::time::timeout(timeout, connected).await {
        Ok(Ok((client, target_pid))) => {
            phase.done("connected");
            Ok((pod, client, target_pid))
        }
        failed => {
            let _ = pod.delete().await;
            let e = match failed {
                Ok(Err(e)) => e.context(format!("cannot connect to the agent pod {}", pod.pod)),
                _ => anyhow::anyhow!(
                    "the agent pod {} did not answer within {} s",
                    pod.pod,
                    timeout.as_secs()
                ),
            };
            Err(explain(&cluster, resolved.as_ref(), e).await)
        }
    }
}

/// The CLI's pod, checked just before the agent is created; a workload's
/// pod that changed is picked again, and the CLI told which
/// ([`super::Announce::Repicked`]).
async fn confirm(cluster: &kube::client::Cluster, resolved: Resolved) -> anyhow::Result<Resolved> {
    match kube::confirm::confirm(cluster, resolved).await? {
        kube::confirm::Confirmed::Unchanged(resolved) => Ok(resolved),
        kube::confirm::Confirmed::Repicked { change, now } => {
            tracing::info!("{change}; picked again: {}", now.summary());
            super::print_ready(&super::Announce::Repicked {
                change,
                summary: now.summary(),
            });
            Ok(now)
        }
    }
}

/// A start-up failure, with the reason in front when the target pod the
/// CLI picked is gone or was replaced since (checked only on failure, so a
/// session that starts looks the target up once).
async fn explain(
    cluster: &kube::client::Cluster,
    resolved: Option<&Resolved>,
    error: anyhow::Error,
) -> anyhow::Error {
    let Some(resolved) = resolved else {
        return error;
    };
    match kube::gone::target_change(cluster, resolved).await {
        Ok(None) => error,
        Ok(Some(change)) => {
            error.context(format!("{change}; run mirrord again to pick a running pod"))
        }
        Err(check) => {
            tracing::debug!("cannot check the target pod after a failed start: {check}");
            error
        }
    }
}

#[cfg(test)]
mod tests {
    use mirrord_config::{MirrordConfig, Target};
    use mirrord_tests::kube::{kinds::Kind, FakeApiServer};

    use super::*;

    const CLUSTER: &str = include_str!("../../../tests/fixtures/cluster.yaml");

    /// The CLI's half: resolve `target` and the config JSON it passes on.
    async fn resolved_by_the_cli(
        server: &FakeApiServer,
        dir: &std::path::Path,
        target: &str,
    ) -> (String, Resolved) {
        let path = dir.join("kubeconfig");
        server.write_kubeconfig(&path, "shop").expect("kubeconfig");
        let defaults = MirrordConfig::default();
        let config = MirrordConfig {
            kubeconfig: Some(path.to_string_lossy().into_owned()),
            agent: mirrord_config::AgentConfig {
                startup_timeout: 20,
                ..defaults.agent.clone()
            },
            ..defaults
        };
        let cluster = kube::connect(&KubeSettings::from_config(&config))
            .await
            .expect("client");
        let target: Target = target.parse().expect("target");
        let resolved = kube::resolve(&cluster, &target, None)
            .await
            .expect("resolves")
            .expect("a Kubernetes target");
        (mirrord_config::to_json(&config), resolved)
    }

    async fn start_error(config: &str, resolved: &Resolved) -> String {
        let json = serde_json::to_string(resolved).expect("json");
        match start(config, Some(&json), Duration::from_secs(20)).await {
            Ok((pod, ..)) => {
                let _ = pod.delete().await;
                panic!("the agent started for {resolved:?}");
            }
            Err(e) => format!("{e:#}"),
        }
    }

    fn agent_jobs(server: &FakeApiServer) -> Vec<serde_json::Value> {
        let jobs = Kind::by_plural("batch", "v1", "jobs").expect("jobs");
        let mut left = server.store().list(jobs, &Default::default()).0;
        left.retain(|j| {
            j["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("mirrord-agent")
        });
        left
    }

    /// No process runs `web-7d9f-bbbbb`'s container here, so its agent
    /// exits at once. The pod vanishing after the check (once the Job is
    /// created) is named in front of the agent's error; before it, the
    /// workload is picked again (and here has no other ready pod), so no
    /// Job is created at all.
    #[tokio::test]
    async fn a_target_pod_gone_before_or_after_the_job_is_created_is_named() {
        let agent = mirrord_tests::bin_path("mirrord-agent");
        assert!(agent.exists(), "build the workspace first");
        let server = FakeApiServer::start_with_agent(CLUSTER, agent).expect("server");
        let dir = tempfile::tempdir().expect("tempdir");
        let (config, resolved) = resolved_by_the_cli(&server, dir.path(), "deployment/web").await;
        assert_eq!(resolved.pod, "web-7d9f-bbbbb");
        assert!(resolved.pod_uid.is_some(), "{resolved:?}");

        let still_there = start_error(&config, &resolved).await;
        assert!(
            still_there.contains("exited before it was ready"),
            "{still_there}"
        );
        assert!(!still_there.contains("is gone"), "{still_there}");

        let pods = Kind::by_plural("", "v1", "pods").expect("pods");
        server.after_request("POST /apis/batch/v1/namespaces/shop/jobs", move |store| {
            store
                .delete(pods, Some("shop"), "web-7d9f-bbbbb")
                .expect("delete the pod");
        });
        let gone_after = start_error(&config, &resolved).await;
        assert!(
            gone_after.starts_with(
                "the target pod web-7d9f-bbbbb in namespace \"shop\" (picked for deployment/web) \
                 is gone since it was resolved; run mirrord again to pick a running pod: "
            ),
            "{gone_after}"
        );
        assert!(
            gone_after.contains("exited before it was ready"),
            "{gone_after}"
        );

        let before = server.requests().len();
        let gone_before = start_error(&config, &resolved).await;
        assert_eq!(
            gone_before,
            "the target pod web-7d9f-bbbbb in namespace \"shop\" (picked for deployment/web) is \
             gone since it was resolved; picking deployment/web again failed: deployment/web in \
             namespace \"shop\" has no running, ready pod: web-7d9f-aaaaa (Pending: \
             ContainerCreating); wait until one is ready (`kubectl get pods -n shop`)"
        );
        let session = &server.requests()[before..];
        assert!(
            !session.iter().any(|r| r.starts_with("POST ")),
            "{session:#?}"
        );
        // The failed starts left no Job behind.
        assert_eq!(agent_jobs(&server), Vec::<serde_json::Value>::new());
    }
}
