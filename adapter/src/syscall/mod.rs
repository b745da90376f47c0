//! The syscall interception path, for programs the layer cannot enter (Go,
//! statically linked binaries): `mirrord exec` installs a seccomp filter
//! with user notification on itself just before it execs the program, and
//! hands the listener to a supervisor task in the intproxy, which answers
//! the stopped calls with the same config policy as the layer.
//!
//! - [`detect`]: which path a program gets (`feature.interception`);
//! - [`filter`]: the BPF program and its installation;
//! - [`handoff`]: the listener and config from `exec` to the intproxy;
//! - [`standby`]: a listener answered "continue" until its session starts
//!   (a debugger started before the launch);
//! - [`notify`]: the kernel's user-notification ABI;
//! - [`memory`]: the stopped process's memory and paths;
//! - [`calls`]: the stopped calls decoded from their raw arguments;
//! - [`supervisor`], [`fs`], [`net`], [`stat`]: answering the calls;
//! - [`datagrams`]: unconnected UDP (`sendto`/`recvfrom` with addresses,
//!   `sendmsg`/`recvmsg`), [`msghdr`]: the caller's `struct msghdr`,
//!   [`mmsg`]: `sendmmsg`/`recvmmsg`, message by message;
//! - [`signals`]: a waiting caller's signals (a receive restarted for them);
//! - [`unlisten`], [`sockdiag`]: a closed listener's port back to the target;
//! - [`callers`]: whose calls are left alone (skipped programs, debuggers);
//! - [`layered`]: processes whose layer is connected (their calls continue);
//! - [`writeback`]: remote files opened for writing, written back on close;
//! - [`listings`]: remote directories, laid out locally for `getdents64`;
//! - [`fdlinks`]: `/proc/self/fd/N` and `/dev/fd/N` of remote files.

pub mod callers;
pub mod calls;
pub mod datagrams;
pub mod detect;
pub mod fdlinks;
pub mod filter;
pub mod fs;
pub mod handoff;
pub mod layered;
pub mod listings;
pub mod memory;
pub mod mmsg;
pub mod msghdr;
pub mod net;
pub mod notify;
pub mod signals;
pub mod sockdiag;
pub mod standby;
pub mod stat;
pub mod supervisor;
pub mod unlisten;
pub mod writeback;

use std::os::fd::OwnedFd;

use mirrord_config::MirrordConfig;

/// `mirrord exec`'s side, run last before `exec`: connects to the
/// supervisor, installs the filter on this thread, hands the listener over
/// and waits until the supervisor has it. Fails, with nothing installed,
/// when the kernel has no user notification.
///
/// The listener leaves from a thread started before the filter exists, so
/// outside it: every call that can carry an fd (`sendmsg`, `sendmmsg`)
/// stops under the filter, and nobody would answer it before the
/// supervisor has the listener. The thread has ended when this returns,
/// so the `exec` that follows runs in a process of one thread again, the
/// filtered one.
pub fn install_and_hand_off(supervisor: &str, config: &MirrordConfig) -> anyhow::Result<()> {
    let sender = handoff::Sender::connect(supervisor)?;
    let config_json = mirrord_config::to_json(config);
    let (give, take) = std::sync::mpsc::channel::<OwnedFd>();
    let outside = std::thread::Builder::new()
        .name("seccomp-handoff".into())
        .spawn(move || match take.recv() {
            Ok(listener) => sender
                .send(listener, &config_json)
                .map_err(anyhow::Error::from),
            // The filter was not installed: nothing to hand over.
            Err(_) => Ok(()),
        })?;
    let installed = filter::install(filter::INTERCEPTED).map(|listener| {
        // The thread is alive until it has received: the send succeeds.
        let _ = give.send(listener);
    });
    drop(give);
    let handed = outside
        .join()
        .map_err(|_| anyhow::anyhow!("the seccomp hand-off thread panicked"))?;
    installed?;
    handed
}
