//! The stand-in pod: a process in new network, mount, UTS, IPC and PID
//! namespaces with a small root of its own, its own environment, hosts file
//! and services on its loopback. Tests, benchmarks and the quick start all
//! use it through [`Pod`], which runs the `standin-pod` binary.

pub mod init;
pub mod launch;
pub mod services;
pub mod spec;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{bail, Context};

pub use spec::PodSpec;

/// A running stand-in pod; dropping it removes every trace of it.
pub struct Pod {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The pod's PID 1 as the host sees it: the `--target pid/N`.
    pub pid: u32,
}

impl Pod {
    pub fn start(spec: &PodSpec) -> anyhow::Result<Pod> {
        let mut child = Command::new(crate::bin_path("standin-pod"))
            .arg("--spec")
            .arg(serde_json::to_string(spec)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start standin-pod (build the workspace first)")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("standin-pod stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(pid) = line
            .strip_prefix("pid ")
            .and_then(|p| p.trim().parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("standin-pod did not start: {line:?}");
        };
        Ok(Pod { child, stdin, pid })
    }

    pub fn target(&self) -> String {
        format!("pid/{}", self.pid)
    }

    /// `program` run in the pod's network namespace (a client on the pod's
    /// loopback), with the host's files.
    pub fn net_command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid.to_string(), "-n", program]);
        cmd
    }

    /// The pod's NAT rules that mention mirrord, IPv4 and IPv6
    /// (`iptables-save -t nat`, then `ip6tables-save -t nat`, each line
    /// prefixed with the program's name).
    pub fn mirrord_nat_rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        for save in ["iptables-save", "ip6tables-save"] {
            let out = self
                .net_command(save)
                .args(["-t", "nat"])
                .output()
                .expect("iptables-save runs (the test set-up installs iptables)");
            assert!(out.status.success(), "{save} failed: {out:?}");
            rules.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.to_ascii_uppercase().contains("MIRRORD"))
                    .map(|l| format!("{save}: {l}")),
            );
        }
        rules
    }

    /// Stops the pod now (as a target that exits mid-run).
    pub fn stop(&mut self) {
        self.stdin = None;
        let _ = self.child.wait();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.stop();
    }
}
