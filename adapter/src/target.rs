//! Resolving the configured target to what this build can start an agent
//! for: a local process (`pid/N`) or nothing (`targetless`).

use mirrord_config::Target;

/// A target the agent can be started for on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTarget {
    Pid(u32),
    Targetless,
}

impl std::fmt::Display for LocalTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalTarget::Pid(pid) => write!(f, "pid/{pid}"),
            LocalTarget::Targetless => f.write_str("targetless"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "target pid/{0}: no process with that PID on this machine (check it with `ps -p {0}`)"
    )]
    NoSuchProcess(u32),
    #[error(
        "target pid/{0}: joining another process's namespaces needs root; run mirrord as root \
         (e.g. with sudo), or use --target targetless"
    )]
    NeedsRoot(u32),
    #[error(
        "target {0}: Kubernetes targets are not supported by this build yet; use pid/<PID> for a \
         local process, or targetless"
    )]
    Kubernetes(String),
}

/// Whether the target names a Kubernetes object (resolved through the API
/// server, `crate::kube`).
pub fn is_kubernetes(target: &Target) -> bool {
    !matches!(target, Target::Pid(_) | Target::Targetless)
}

/// Whether a `targetless` run (or one with no target) starts its agent in
/// the cluster, as a Job on any node: when the config names a cluster
/// (`kube_context`, `kubeconfig`) or a namespace for the agent
/// (`agent.namespace`). Otherwise the agent runs on this machine.
pub fn targetless_in_cluster(config: &mirrord_config::MirrordConfig) -> bool {
    matches!(config.target.path, None | Some(Target::Targetless))
        && (config.kube_context.is_some()
            || config.kubeconfig.is_some()
            || config.agent.namespace.is_some())
}

/// Checks the target and says what the agent will join.
pub fn resolve(target: Option<&Target>) -> Result<LocalTarget, TargetError> {
    match target {
        None | Some(Target::Targetless) => Ok(LocalTarget::Targetless),
        Some(Target::Pid(pid)) => {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Err(TargetError::NoSuchProcess(*pid));
            }
            // SAFETY: plain syscall.
            if unsafe { libc::geteuid() } != 0 {
                return Err(TargetError::NeedsRoot(*pid));
            }
            Ok(LocalTarget::Pid(*pid))
        }
        Some(other) => Err(TargetError::Kubernetes(other.to_string())),
    }
}

/// A target a user can pick.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetInfo {
    /// What goes in `target`: `pid/123`, `targetless`.
    pub path: String,
    /// What it is, for a picker.
    pub description: String,
}

/// The targets on this machine: `targetless`, and for every network
/// namespace other than ours (a container, a stand-in pod), its main
/// process: the init of its own PID namespace if it has one, else its
/// first process.
pub fn list_local() -> Vec<TargetInfo> {
    let netns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let own = netns("self");
    // Per namespace: (is a PID-namespace init, pid), the best first.
    let mut best: std::collections::BTreeMap<std::path::PathBuf, (bool, u32)> = Default::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(ns) = netns(&pid.to_string()) else {
            continue;
        };
        if Some(&ns) == own.as_ref() {
            continue;
        }
        let candidate = (is_namespace_init(pid), pid);
        best.entry(ns)
            .and_modify(|b| {
                if (candidate.0, std::cmp::Reverse(candidate.1)) > (b.0, std::cmp::Reverse(b.1)) {
                    *b = candidate;
                }
            })
            .or_insert(candidate);
    }
    let mut pids: Vec<u32> = best.into_values().map(|(_, pid)| pid).collect();
    pids.sort_unstable();
    let mut out = vec![TargetInfo {
        path: "targetless".into(),
        description: "no target: files and outgoing traffic from this machine's view".into(),
    }];
    out.extend(pids.into_iter().map(|pid| TargetInfo {
        path: format!("pid/{pid}"),
        description: format!("in its own network namespace: {}", short_command(pid)),
    }));
    out
}

/// Whether `pid` is PID 1 of a PID namespace below ours.
fn is_namespace_init(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|ids| {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            ids.len() > 1 && ids.last() == Some(&"1")
        })
        .unwrap_or(false)
}

/// The command line, shortened for a picker.
fn short_command(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let text = command.join(" ");
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targetless_runs_in_the_cluster_only_when_the_config_names_one() {
        let mut config = mirrord_config::MirrordConfig::default();
        assert!(!targetless_in_cluster(&config), "no cluster named");
        config.agent.namespace = Some("shop".into());
        assert!(targetless_in_cluster(&config));
        config.target.path = Some(Target::Targetless);
        assert!(targetless_in_cluster(&config));
        config.target.path = Some(Target::Pid(1));
        assert!(!targetless_in_cluster(&config), "a pid target is local");
        config.target.path = None;
        config.agent.namespace = None;
        config.kube_context = Some("prod".into());
        assert!(targetless_in_cluster(&config));
        config.kube_context = None;
        config.kubeconfig = Some("/k".into());
        assert!(targetless_in_cluster(&config));
    }

    #[test]
    fn missing_pid_is_named_with_the_fix() {
        let err = resolve(Some(&Target::Pid(u32::MAX - 1))).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid/{}", u32::MAX - 1)) && msg.contains("ps -p"),
            "{msg}"
        );
    }

    #[test]
    fn no_target_is_targetless() {
        assert_eq!(resolve(None).unwrap(), LocalTarget::Targetless);
        assert_eq!(
            resolve(Some(&Target::Targetless)).unwrap(),
            LocalTarget::Targetless
        );
    }

    #[test]
    fn the_list_starts_with_targetless_and_excludes_our_namespace() {
        let list = list_local();
        assert_eq!(list[0].path, "targetless");
        let me = format!("pid/{}", std::process::id());
        assert!(list.iter().all(|t| t.path != me));
    }

    #[test]
    fn own_pid_resolves_when_root() {
        let me = std::process::id();
        match resolve(Some(&Target::Pid(me))) {
            Ok(t) => assert_eq!(t, LocalTarget::Pid(me)),
            Err(TargetError::NeedsRoot(pid)) => assert_eq!(pid, me),
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}
