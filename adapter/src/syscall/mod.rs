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
//!   `sendmsg`/`recvmsg`), [`msghdr`]: the caller's `struct msghdr`;
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
pub fn install_and_hand_off(supervisor: &str, config: &MirrordConfig) -> anyhow::Result<()> {
    let sender = handoff::Sender::connect(supervisor)?;
    let listener: OwnedFd = filter::install(filter::INTERCEPTED)?;
    sender.send(listener, &mirrord_config::to_json(config))?;
    Ok(())
}
