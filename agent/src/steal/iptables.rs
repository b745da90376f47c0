//! The agent's own iptables chain in the target's network namespace: one
//! `REDIRECT` rule per stolen port, jumped to from `PREROUTING` (clients
//! from outside the target) and `OUTPUT -o lo` (the target's own loopback
//! clients, which never pass `PREROUTING`'s NAT decision).
//!
//! Every change runs the `iptables` binary, or `ip6tables` for the IPv6
//! table ([`Family`]; nf_tables or legacy, whichever the system has), in
//! the target's network namespace: the child joins it between `fork` and
//! `exec`. The agent's own sockets carry [`BYPASS_MARK`]
//! and are let through, so the agent can still reach the target's real
//! servers (HTTP filter pass-through, outgoing connections).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Packets of sockets with this `SO_MARK` skip the chain.
pub const BYPASS_MARK: u32 = 0x6d69_7272;
/// Chains made by agents are named `MIRRORD_INCOMING_<agent pid>`.
pub const CHAIN_PREFIX: &str = "MIRRORD_INCOMING_";
/// The built-in chains that jump to ours, with the jump's match.
const JUMPS: [(&str, &[&str]); 2] = [("PREROUTING", &[]), ("OUTPUT", &["-o", "lo"])];

/// Which NAT table: IPv4 (`iptables`) or IPv6 (`ip6tables`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The program that edits this family's tables.
    pub fn binary(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error(
        "cannot run {binary} ({source}); install it where the agent runs (Debian: apt-get install iptables)"
    )]
    Missing {
        binary: &'static str,
        source: io::Error,
    },
    #[error("{binary} {args} failed: {stderr}")]
    Failed {
        binary: &'static str,
        args: String,
        stderr: String,
    },
}

/// Runs iptables (or ip6tables) commands in one network namespace (the
/// agent's own when `netns` is `None`).
pub struct Iptables {
    netns: Option<OwnedFd>,
    family: Family,
}

impl Iptables {
    pub fn new(netns: Option<OwnedFd>, family: Family) -> Self {
        Iptables { netns, family }
    }

    /// The namespace of process `pid`, or the agent's own.
    pub fn for_pid(pid: Option<u32>, family: Family) -> io::Result<Self> {
        let netns = match pid {
            Some(pid) => Some(std::fs::File::open(format!("/proc/{pid}/ns/net"))?.into()),
            None => None,
        };
        Ok(Iptables::new(netns, family))
    }

    /// `iptables -w -t nat ARGS` (`ip6tables` for IPv6); the output on success.
    pub fn nat(&self, args: &[&str]) -> Result<String, IptablesError> {
        let binary = self.family.binary();
        let mut cmd = Command::new(binary);
        cmd.args(["-w", "-t", "nat"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(ns) = &self.netns {
            let fd = ns.as_raw_fd();
            // SAFETY: between fork and exec only `setns`, async-signal-safe.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let output = cmd
            .output()
            .map_err(|source| IptablesError::Missing { binary, source })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(IptablesError::Failed {
                binary,
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Creates `chain` (empty but for the bypass rule) and the jumps to it.
    pub fn create_chain(&self, chain: &str) -> Result<(), IptablesError> {
        self.nat(&["-N", chain])?;
        let mark = BYPASS_MARK.to_string();
        self.nat(&["-A", chain, "-m", "mark", "--mark", &mark, "-j", "RETURN"])?;
        for (builtin, matches) in JUMPS {
            let mut args = vec!["-I", builtin, "1"];
            args.extend_from_slice(matches);
            args.extend_from_slice(&["-j", chain]);
            self.nat(&args)?;
        }
        Ok(())
    }

    /// Whether a chain of another running agent redirects `port`.
    pub fn stolen_elsewhere(&self, ours: &str, port: u16) -> Result<bool, IptablesError> {
        let listing = self.nat(&["-S"])?;
        let dport = format!("--dport {port} ");
        Ok(listing.lines().any(|line| {
            let mut words = line.split_whitespace();
            let (Some("-A"), Some(chain)) = (words.next(), words.next()) else {
                return false;
            };
            chain != ours
                && chain.starts_with(CHAIN_PREFIX)
                && !stale_chain(chain)
                && line.contains(&dport)
        }))
    }

    /// Moves the jumps to `chain` above every other rule (the newest steal
    /// of a port wins: taking it over).
    pub fn raise_jumps(&self, chain: &str) -> Result<(), IptablesError> {
        for (builtin, matches) in JUMPS {
            let mut delete = vec!["-D", builtin];
            delete.extend_from_slice(matches);
            delete.extend_from_slice(&["-j", chain]);
            self.nat(&delete)?;
            let mut insert = vec!["-I", builtin, "1"];
            insert.extend_from_slice(matches);
            insert.extend_from_slice(&["-j", chain]);
            self.nat(&insert)?;
        }
        Ok(())
    }

    /// Redirects TCP port `port` to `to` (`add`), or stops it.
    pub fn redirect(
        &self,
        add: bool,
        chain: &str,
        port: u16,
        to: u16,
    ) -> Result<(), IptablesError> {
        let rule = redirect_rule(if add { "-A" } else { "-D" }, chain, port, to);
        let args: Vec<&str> = rule.iter().map(String::as_str).collect();
        self.nat(&args).map(drop)
    }

    /// Removes the jumps to `chain` and the chain; what is already gone is
    /// not an error. Returns whether anything was removed.
    pub fn remove_chain(&self, chain: &str) -> bool {
        let mut removed = false;
        for (builtin, matches) in JUMPS {
            let mut args = vec!["-D", builtin];
            args.extend_from_slice(matches);
            args.extend_from_slice(&["-j", chain]);
            // A jump added twice (never by us) is removed in full.
            while self.nat(&args).is_ok() {
                removed = true;
            }
        }
        if self.nat(&["-F", chain]).is_ok() {
            removed = true;
        }
        if self.nat(&["-X", chain]).is_ok() {
            removed = true;
        }
        removed
    }

    /// Chains of agents that are no longer running (a `kill -9`, a crash
    /// before the watchdog could act), removed. Returns their names.
    pub fn remove_stale_chains(&self) -> Result<Vec<String>, IptablesError> {
        let listing = self.nat(&["-S"])?;
        let stale: Vec<String> = listing
            .lines()
            .filter_map(|line| line.strip_prefix("-N "))
            .filter(|chain| stale_chain(chain))
            .map(str::to_owned)
            .collect();
        for chain in &stale {
            self.remove_chain(chain);
        }
        Ok(stale)
    }
}

fn redirect_rule(op: &str, chain: &str, port: u16, to: u16) -> Vec<String> {
    [
        op,
        chain,
        "-p",
        "tcp",
        "--dport",
        &port.to_string(),
        "-j",
        "REDIRECT",
        "--to-ports",
        &to.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A chain of ours whose agent (the PID in its name) is gone.
fn stale_chain(chain: &str) -> bool {
    let Some(pid) = chain.strip_prefix(CHAIN_PREFIX) else {
        return false;
    };
    match pid.parse::<u32>() {
        Ok(pid) => !agent_alive(pid),
        Err(_) => false,
    }
}

/// Whether `pid` is a running mirrord agent (a reused PID of another
/// program does not count).
fn agent_alive(pid: u32) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => cmdline
            .split(|b| *b == 0)
            .next()
            .is_some_and(|exe| exe.ends_with(b"mirrord-agent")),
        Err(_) => false,
    }
}

/// The chain name of the agent with PID `pid`.
pub fn chain_name(pid: u32) -> String {
    format!("{CHAIN_PREFIX}{pid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_chains_of_dead_agents_are_stale() {
        assert!(!stale_chain("DOCKER"));
        assert!(!stale_chain("MIRRORD_INCOMING_x"));
        // This test process is alive but is not an agent: its chain would be stale.
        assert!(stale_chain(&chain_name(std::process::id())));
        assert!(stale_chain(&chain_name(u32::MAX - 1)));
    }

    #[test]
    fn redirect_rules_name_port_and_target() {
        assert_eq!(
            redirect_rule("-A", "C", 80, 4000).join(" "),
            "-A C -p tcp --dport 80 -j REDIRECT --to-ports 4000"
        );
    }
}
