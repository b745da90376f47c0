//! A cgroup named like the kubelet's for a containerd container
//! (`kubepods/besteffort/pod…/cri-containerd-<id>.scope`) in the cgroup v1
//! `pids` hierarchy, which is writable on these machines: a stand-in pod
//! placed in it is found by the agent's `--container-id`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The cgroup; removed, with its parents when empty, on drop.
pub struct ContainerCgroup {
    /// Innermost first.
    dirs: Vec<PathBuf>,
}

impl ContainerCgroup {
    /// Creates the cgroup of container `id` (64 hex digits).
    pub fn new(id: &str) -> anyhow::Result<ContainerCgroup> {
        let base = Path::new("/sys/fs/cgroup/pids");
        anyhow::ensure!(
            base.join("cgroup.procs").exists(),
            "no cgroup v1 pids hierarchy at {}",
            base.display()
        );
        let kubepods = base.join("kubepods");
        let besteffort = kubepods.join("besteffort");
        let pod = besteffort.join(format!(
            "pod-mirrord-test-{}-{}",
            std::process::id(),
            &id[..12]
        ));
        let scope = pod.join(format!("cri-containerd-{id}.scope"));
        std::fs::create_dir_all(&scope)?;
        Ok(ContainerCgroup {
            dirs: vec![scope, pod, besteffort, kubepods],
        })
    }

    /// Moves a process (and its future children) into the cgroup.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        std::fs::write(self.dirs[0].join("cgroup.procs"), pid.to_string())?;
        Ok(())
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        // Killed processes may take a moment to leave it.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dirs[0]).is_ok() || !self.dirs[0].exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The shared parents go only when no other test still uses them.
        for dir in &self.dirs[1..] {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
