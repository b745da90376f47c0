//! The steal watchdog: a small process that outlives the agent and removes
//! its chain (in the IPv4 and IPv6 NAT tables) when the agent dies in a way it could not clean up
//! after (`kill -9`, a crash, the OOM killer).
//!
//! The agent starts it (its own binary with `--watchdog-chain NAME`) with
//! a pipe as stdin and never writes to it. The watchdog blocks reading;
//! when the agent is gone the kernel closes the pipe's write end, the read
//! returns end of file, and the watchdog removes the chain and exits. After
//! a clean exit the agent has already removed the chain, and the watchdog
//! finds nothing to do.

use std::io::Read;
use std::process::{Child, Command, Stdio};

use super::dual_stack::DualStack;

/// The running watchdog; dropping it closes the pipe, which also makes the
/// watchdog clean up and exit.
pub struct Watchdog {
    child: Child,
}

impl Watchdog {
    /// Starts the watchdog for `chain` in the network namespace of
    /// `target_pid` (the agent's own when `None`).
    pub fn start(chain: &str, target_pid: Option<u32>) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(["--watchdog-chain", chain])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(pid) = target_pid {
            cmd.args(["--target-pid", &pid.to_string()]);
        }
        let child = cmd.spawn()?;
        Ok(Watchdog { child })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing stdin is the signal; reap it so no zombie stays.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The watchdog's `main`: waits for the agent to go, then removes `chain`.
pub fn run(chain: &str, target_pid: Option<u32>) -> i32 {
    // Leave the agent's process group: a signal to the agent's group (a
    // terminal's Ctrl-C) must not take the watchdog along before it acts.
    // SAFETY: plain syscall.
    unsafe { libc::setpgid(0, 0) };
    // Opened now, while the target is surely alive.
    let iptables = match DualStack::for_pid(target_pid) {
        Ok(iptables) => iptables,
        Err(e) => {
            eprintln!("mirrord-agent watchdog: cannot open the target's network namespace: {e}");
            return 1;
        }
    };
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if iptables.remove_chain(chain) {
        eprintln!("mirrord-agent watchdog: the agent is gone; removed iptables chain {chain}");
    }
    0
}
