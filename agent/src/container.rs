//! Finding a container's main process from the container ID in its pod's
//! status (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`) by
//! scanning `/proc/*/cgroup`, so the agent needs no container runtime
//! socket. It must see the node's processes (the agent's pod has
//! `hostPID: true`).
//!
//! Every runtime puts a container's processes in a cgroup whose last
//! components name the ID, in cgroup v1 (one line per hierarchy) and v2
//! (`0::/path`) alike:
//! - containerd: `…/cri-containerd-<id>.scope` (systemd driver) or
//!   `…/pod<uid>/<id>` (cgroupfs driver);
//! - CRI-O: `…/crio-<id>.scope` (not `crio-conmon-<id>.scope`: that is the
//!   monitor, outside the container);
//! - Docker: `…/docker-<id>.scope` or `/docker/<id>`.
//!
//! Of the processes found, the container's main one is the one whose
//! parent is not in the container (the lowest PID if several are).

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerError {
    #[error(
        "\"{0}\" is not a container ID; expected <runtime>://<hex id> as in a pod's \
         status.containerStatuses[].containerID (containerd, cri-o or docker)"
    )]
    BadId(String),
    #[error(
        "no process of container {id} found in {proc_root}/*/cgroup; the agent must run on the \
         target pod's node with the host PID namespace (hostPID: true), and the container must be \
         running"
    )]
    NotFound { id: String, proc_root: String },
}

/// The hex ID of a container ID with or without its `runtime://` prefix.
pub fn parse_id(container_id: &str) -> Result<&str, ContainerError> {
    let bad = || ContainerError::BadId(container_id.to_owned());
    let id = match container_id.split_once("://") {
        Some(("containerd" | "cri-o" | "docker", id)) => id,
        Some(_) => return Err(bad()),
        None => container_id,
    };
    if id.len() < 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(id)
}

/// Whether a cgroup path (one line's third field) is the container's.
fn cgroup_names(path: &str, id: &str) -> bool {
    path.split('/').any(|segment| {
        let name = segment.strip_suffix(".scope").unwrap_or(segment);
        let name = ["cri-containerd-", "crio-", "docker-"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        name == id
    })
}

/// The container's main process, from the `/proc` at `proc_root`.
pub fn find_pid(proc_root: &Path, container_id: &str) -> Result<u32, ContainerError> {
    let id = parse_id(container_id)?;
    // PID → parent PID, for every process in the container.
    let mut members: BTreeMap<u32, u32> = BTreeMap::new();
    for entry in std::fs::read_dir(proc_root).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit while we read: skip it.
        let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        let inside = cgroups
            .lines()
            .filter_map(|line| line.splitn(3, ':').nth(2))
            .any(|path| cgroup_names(path, id));
        if inside {
            members.insert(pid, parent_of(&entry.path()).unwrap_or(0));
        }
    }
    members
        .iter()
        .find(|(_, parent)| !members.contains_key(parent))
        .map(|(pid, _)| *pid)
        .ok_or_else(|| ContainerError::NotFound {
            id: container_id.to_owned(),
            proc_root: proc_root.display().to_string(),
        })
}

fn parent_of(proc_dir: &Path) -> Option<u32> {
    let status = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|p| p.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4a9c0e5b6d7e8f3f4a9c0e5b6d7e8f3f4a9c0e5b6d7e8f3f4a9c0e5b6d7e8f";
    const OTHER: &str = "0123456789ab0123456789ab0123456789ab0123456789ab0123456789ab0123";

    /// A fake `/proc`: (pid, ppid, cgroup file).
    fn proc_tree(processes: &[(u32, u32, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (pid, ppid, cgroup) in processes {
            let p = dir.path().join(pid.to_string());
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("cgroup"), cgroup).unwrap();
            std::fs::write(p.join("status"), format!("Name:\tx\nPPid:\t{ppid}\n")).unwrap();
        }
        std::fs::create_dir(dir.path().join("self")).unwrap();
        dir
    }

    fn v2(path: &str) -> String {
        format!("0::{path}\n")
    }

    fn v1(path: &str) -> String {
        format!("12:pids:{path}\n11:memory:{path}\n1:name=systemd:{path}\n0::/\n")
    }

    fn check(runtime: &str, cgroup: &dyn Fn(&str) -> String, path_of: &dyn Fn(&str) -> String) {
        let tree = proc_tree(&[
            (1, 0, cgroup("/init.scope")),
            (
                40,
                1,
                cgroup(&format!("/system.slice/crio-conmon-{ID}.scope")),
            ),
            (41, 40, cgroup(&path_of(ID))),
            (57, 41, cgroup(&path_of(ID))),
            (60, 1, cgroup(&path_of(OTHER))),
        ]);
        let id = format!("{runtime}://{ID}");
        assert_eq!(
            find_pid(tree.path(), &id),
            Ok(41),
            "{runtime}: {}",
            path_of(ID)
        );
    }

    #[test]
    fn the_main_process_is_found_for_every_runtime_and_cgroup_version() {
        let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice";
        let containerd_systemd = |id: &str| format!("{pod}/cri-containerd-{id}.scope");
        let containerd_cgroupfs = |id: &str| format!("/kubepods/burstable/pod1234/{id}");
        let crio = |id: &str| format!("{pod}/crio-{id}.scope");
        let docker_systemd = |id: &str| format!("/system.slice/docker-{id}.scope");
        let docker_cgroupfs = |id: &str| format!("/docker/{id}");
        for cgroup in [&v1 as &dyn Fn(&str) -> String, &v2] {
            check("containerd", cgroup, &containerd_systemd);
            check("containerd", cgroup, &containerd_cgroupfs);
            check("cri-o", cgroup, &crio);
            check("docker", cgroup, &docker_systemd);
            check("docker", cgroup, &docker_cgroupfs);
        }
    }

    #[test]
    fn a_missing_container_and_a_bad_id_are_named() {
        let tree = proc_tree(&[(1, 0, v2("/init.scope"))]);
        let err = find_pid(tree.path(), &format!("containerd://{ID}")).unwrap_err();
        assert!(err.to_string().contains("hostPID: true"), "{err}");
        assert_eq!(
            parse_id("rkt://abc").unwrap_err(),
            ContainerError::BadId("rkt://abc".into())
        );
        assert!(parse_id("containerd://../../etc").is_err());
        assert_eq!(parse_id(ID), Ok(ID));
    }

    /// A real process in a real cgroup v1 `pids` hierarchy named like a
    /// kubelet's (root only; the hierarchy is writable on these machines).
    #[test]
    fn a_process_in_a_real_cgroup_is_found() {
        let base = Path::new("/sys/fs/cgroup/pids");
        assert!(
            base.join("cgroup.procs").exists(),
            "this test needs the cgroup v1 pids hierarchy at {}",
            base.display()
        );
        let id = format!("{:064x}", u128::from(std::process::id()) << 64 | 0xfeed);
        let pod = base.join(format!(
            "kubepods/besteffort/pod-mirrord-test-{}",
            std::process::id()
        ));
        let scope = pod.join(format!("cri-containerd-{id}.scope"));
        std::fs::create_dir_all(&scope).expect("create a cgroup (needs root)");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(scope.join("cgroup.procs"), child.id().to_string()).unwrap();
        let found = find_pid(Path::new("/proc"), &format!("containerd://{id}"));
        let _ = child.kill();
        let _ = child.wait();
        // Empty now: remove the cgroups we made, innermost first.
        let besteffort = base.join("kubepods/besteffort");
        let kubepods = base.join("kubepods");
        // The shared parents go only when no other test still uses them.
        for dir in [&scope, &pod, &besteffort, &kubepods] {
            let _ = std::fs::remove_dir(dir);
        }
        assert_eq!(found, Ok(child.id()));
    }
}
