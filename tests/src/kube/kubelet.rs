//! The test server's kubelet and Job controller, for agent Jobs: a created
//! Job gets a pod; when the server was given an agent binary, the pod's
//! container runs as a real local `mirrord-agent` process with the Job's
//! args and env (listening on loopback, which the pod's port-forward
//! annotation points at). An image named `…does-not-exist…` fails to pull,
//! with the Warning event a kubelet writes; one named `…never-ready…`
//! stays `Pending`. Deleting the Job deletes its
//! pod and kills the process; a process that exits marks the pod
//! `Succeeded`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::kinds::Kind;
use super::portforward::port_annotation;
use super::server::State;
use super::store::{EventType, Query};

/// Plays kubelet for Jobs until the server stops (its processes are killed
/// when the runtime drops them).
pub async fn run(state: Arc<State>, agent: Option<PathBuf>) {
    let jobs = kind("batch", "v1", "jobs");
    let mut changes = state.store.subscribe();
    let mut running: HashMap<(String, String), Child> = HashMap::new();
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        if change.kind != jobs {
            continue;
        }
        let job = change.object;
        let ns = job["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        let name = job["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match change.event {
            EventType::Added => {
                if let Some(child) = start_pod(&state, &job, &ns, &name, agent.as_ref()).await {
                    running.insert((ns, name), child);
                }
            }
            EventType::Deleted => {
                if let Some(mut child) = running.remove(&(ns.clone(), name.clone())) {
                    let _ = child.kill().await;
                }
                for pod in pods_of(&state, &ns, &name) {
                    let _ = state.store.delete(kind("", "v1", "pods"), Some(&ns), &pod);
                }
            }
            EventType::Modified => {}
        }
    }
}

fn kind(group: &str, version: &str, plural: &str) -> &'static Kind {
    Kind::by_plural(group, version, plural).expect("a served kind")
}

fn pods_of(state: &State, ns: &str, job: &str) -> Vec<String> {
    let query = Query {
        namespace: Some(ns.to_owned()),
        labels: super::selector::LabelSelector::parse(&format!(
            "batch.kubernetes.io/job-name={job}"
        ))
        .unwrap_or_default(),
        ..Default::default()
    };
    state
        .store
        .list(kind("", "v1", "pods"), &query)
        .0
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Creates the Job's pod and starts its container; returns the process.
async fn start_pod(
    state: &Arc<State>,
    job: &Value,
    ns: &str,
    name: &str,
    agent: Option<&PathBuf>,
) -> Option<Child> {
    let pods = kind("", "v1", "pods");
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["batch.kubernetes.io/job-name"] = json!(name);
    labels["job-name"] = json!(name);
    let pod = json!({
        "metadata": {
            "generateName": format!("{name}-"),
            "labels": labels,
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                 "uid": job["metadata"]["uid"], "controller": true}],
        },
        "spec": template["spec"],
        "status": {"phase": "Pending"},
    });
    let pod = state.store.create(pods, Some(ns), pod).ok()?;
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let container = &template["spec"]["containers"][0];
    let image = container["image"].as_str().unwrap_or_default().to_owned();
    if image.contains("does-not-exist") {
        fail_pull(state, ns, &pod_name, &image);
        return None;
    }
    if image.contains("never-ready") {
        // Scheduled, never started (a full node, a slow pull): stays Pending.
        return None;
    }
    let Some(agent) = agent else {
        let _ = state.store.update(
            pods,
            Some(ns),
            &pod_name,
            super::fixture::complete_pod_status,
        );
        return None;
    };
    let (mut child, addr) = match spawn_agent(agent, container).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("fake kubelet: cannot run the agent of {ns}/{pod_name}: {e}");
            let _ = state.store.update(pods, Some(ns), &pod_name, |p| {
                p["status"] = json!({"phase": "Failed", "message": e.to_string()});
            });
            return None;
        }
    };
    let ports: Vec<u64> = container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    let _ = state.store.update(pods, Some(ns), &pod_name, |p| {
        for port in &ports {
            p["metadata"]["annotations"][port_annotation(*port as u16)] = json!(addr);
        }
        super::fixture::complete_pod_status(p);
    });
    // The process's exit ends the pod (the agent's idle timeout).
    let (state, ns, pod_name) = (state.clone(), ns.to_owned(), pod_name.clone());
    let pid = child.id();
    let exited = async move {
        if let Some(pid) = pid {
            // Poll /proc: the Child stays with the kubelet so a Job delete can kill it.
            while std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        let _ = state.store.update(pods, Some(&ns), &pod_name, |p| {
            p["status"]["phase"] = json!("Succeeded");
            p["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        });
    };
    tokio::spawn(exited);
    let _ = child.stdout.take();
    Some(child)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The Warning event and the waiting state of an image that cannot be pulled.
fn fail_pull(state: &State, ns: &str, pod: &str, image: &str) {
    let message = format!(
        "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
    );
    // The event first: whoever sees the pod's state can read why.
    let _ = state.store.create(
        kind("", "v1", "events"),
        Some(ns),
        json!({
            "metadata": {"generateName": format!("{pod}.")},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": ns},
            "reason": "Failed",
            "message": message,
            "type": "Warning",
        }),
    );
    let _ = state.store.update(kind("", "v1", "pods"), Some(ns), pod, |p| {
        p["status"] = json!({
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "mirrord-agent", "ready": false, "restartCount": 0, "image": image,
                "imageID": "", "state": {"waiting": {"reason": "ErrImagePull", "message": message}}}],
        });
    });
}

/// Runs the container's args with the local agent binary, listening on
/// loopback instead of the pod's address; returns it and its address.
async fn spawn_agent(agent: &PathBuf, container: &Value) -> std::io::Result<(Child, String)> {
    let mut args: Vec<String> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--listen") {
        if i + 1 < args.len() {
            args[i + 1] = "127.0.0.1:0".to_owned();
        }
    }
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut child = Command::new(agent)
        .args(&args)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| std::io::Error::other("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let addr = line
        .trim()
        .strip_prefix("mirrord-agent listening on ")
        .map(str::to_owned)
        .ok_or_else(|| std::io::Error::other(format!("the agent did not start: {line:?}")))?;
    Ok((child, addr))
}
