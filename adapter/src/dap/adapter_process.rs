//! The real debug adapter as our child: started in its own process group,
//! killed with us if we die, and stopped with everything it started. A Go
//! debugger is started under the syscall path's seccomp filter, so the
//! program it starts inherits it ([`crate::syscall::standby`]).

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::syscall::{filter, standby};

pub struct AdapterProcess {
    child: Child,
    pid: u32,
    /// The filter's listener, when started under it.
    standby: Option<standby::Standby>,
}

impl AdapterProcess {
    /// Starts `command`; with `piped`, its stdin/stdout are the DAP stream;
    /// with `filtered`, under the syscall path's filter.
    pub fn spawn(
        command: &[String],
        piped: bool,
        filtered: bool,
    ) -> anyhow::Result<(Self, Option<(ChildStdout, ChildStdin)>)> {
        let (program, args) = command
            .split_first()
            .context("no debug adapter command given")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(if piped { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0);
        let sockets = if filtered {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .context("cannot make a socket pair for the seccomp listener")?;
            Some((ours, theirs))
        } else {
            None
        };
        let filter = sockets.as_ref().map(|(_, theirs)| {
            use std::os::fd::AsRawFd;
            (filter::program(filter::INTERCEPTED), theirs.as_raw_fd())
        });
        // SAFETY: only async-signal-safe syscalls run between fork and
        // exec (prctl, seccomp, write, read); the filter program was built
        // before the fork.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if let Some((prog, socket)) = &filter {
                    let listener = filter::install_program(prog)?;
                    standby::offer_listener_from_child(*socket, listener)?;
                }
                Ok(())
            });
        }
        // The child waits, before its `exec`, until this thread has taken
        // its listener.
        let (taker, theirs) = match sockets {
            Some((ours, theirs)) => (
                Some(
                    standby::take_listener_from_child(ours)
                        .context("cannot wait for the debug adapter's seccomp listener")?,
                ),
                Some(theirs),
            ),
            None => (None, None),
        };
        let spawned = cmd.spawn();
        // Ours closed: a child that failed before offering ends the wait.
        drop(theirs);
        let mut child =
            spawned.with_context(|| format!("cannot start the debug adapter `{program}`"))?;
        let pid = child.id().context("the debug adapter exited at once")?;
        let standby = match taker {
            Some(taker) => {
                let listener = taker
                    .join()
                    .map_err(|_| anyhow::anyhow!("the seccomp listener's thread panicked"))?
                    .context("cannot take the debug adapter's seccomp listener")?;
                Some(standby::Standby::start(listener).context("cannot start the standby")?)
            }
            None => None,
        };
        let pipes = match (piped, child.stdout.take(), child.stdin.take()) {
            (true, Some(out), Some(input)) => Some((out, input)),
            _ => None,
        };
        Ok((
            AdapterProcess {
                child,
                pid,
                standby,
            },
            pipes,
        ))
    }

    /// The seccomp listener, for the session that starts.
    pub fn take_standby(&mut self) -> Option<standby::Standby> {
        self.standby.take()
    }

    /// Gives the adapter `grace` to exit on its own, then ends it and every
    /// process it started (its group and all descendants).
    pub async fn stop(mut self, grace: Duration) {
        let descendants = descendants(self.pid);
        let exited = tokio::time::timeout(grace, self.child.wait()).await.is_ok();
        if !exited {
            signal_tree(self.pid, &descendants, libc::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(1), self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
        // Whatever it left running (a debuggee, a launcher) goes too.
        signal_tree(self.pid, &descendants, libc::SIGKILL);
    }
}

fn signal_tree(pid: u32, known: &[u32], signal: i32) {
    // SAFETY: plain syscalls. The group is ours (`process_group(0)`); the
    // descendants were found by parent links just before.
    unsafe {
        libc::kill(-(pid as i32), signal);
        for d in known.iter().chain(descendants(pid).iter()) {
            libc::kill(*d as i32, signal);
        }
    }
}

/// Every live process below `root`, from the parent links in `/proc`.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may contain spaces and parentheses: parse after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_ends_the_adapter_and_what_it_started() {
        let command: Vec<String> = ["sh", "-c", "sleep 300 & sleep 300"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (adapter, _) = AdapterProcess::spawn(&command, true, false).unwrap();
        let pid = adapter.pid;
        let mut below = Vec::new();
        for _ in 0..100 {
            below = descendants(pid);
            if below.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(below.len(), 2, "{below:?}");
        adapter.stop(Duration::from_millis(100)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        for p in below.iter().chain([&pid]) {
            let state = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let zombie_or_gone = state.is_empty() || state.contains(") Z");
            assert!(zombie_or_gone, "{p} still runs: {state}");
        }
    }
}
