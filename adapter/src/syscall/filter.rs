//! The seccomp filter `mirrord exec` installs on itself just before it
//! execs the program: the listed syscalls stop and notify a listener, the
//! rest run untouched (the cost of the path stays on the listed calls).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The syscalls that stop in the supervisor. `sendmsg`/`recvmsg` and
/// `sendmmsg`/`recvmmsg` stop always (their addresses are inside the
/// `msghdr`s, out of BPF's reach); those without a remote address continue
/// from the receiver thread (glibc's resolver uses `sendmmsg` on a
/// connected socket).
#[cfg(target_arch = "x86_64")]
pub const INTERCEPTED: &[i64] = &[
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_access,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_connect,
    libc::SYS_getpeername,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
];

#[cfg(target_arch = "aarch64")]
pub const INTERCEPTED: &[i64] = &[
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_connect,
    libc::SYS_getpeername,
    libc::SYS_listen,
    libc::SYS_accept4,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
];

/// `AUDIT_ARCH_*` of this build: calls of another ABI (x32, compat) pass.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error(
        "the syscall interception path (for Go and statically linked programs) needs \
         seccomp user notification (SECCOMP_RET_USER_NOTIF with \
         SECCOMP_FILTER_FLAG_NEW_LISTENER, Linux 5.0 or later built with \
         CONFIG_SECCOMP_FILTER), and this system refuses it ({0}); run a \
         dynamically linked program with `--interception layer`, or use a \
         kernel that allows seccomp user notification"
    )]
    Unavailable(io::Error),
    #[error("cannot install the seccomp filter: {0}")]
    Install(io::Error),
}

/// Checks, without installing anything, that the kernel offers user
/// notification.
pub fn check_available() -> Result<(), FilterError> {
    let action: u32 = libc::SECCOMP_RET_USER_NOTIF;
    // SAFETY: plain syscall reading a u32.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(FilterError::Unavailable(io::Error::last_os_error()))
    }
}

/// Calls that stop only when they name an address (argument 4, the
/// `sockaddr` pointer, is not `NULL`): `sendto` to a destination and
/// `recvfrom` asking for the source. `send`/`recv` on a connected socket
/// (glibc makes them `sendto`/`recvfrom` with `NULL`) stay in the kernel.
pub const ADDRESSED: &[i64] = &[libc::SYS_sendto, libc::SYS_recvfrom];

/// `offsetof(struct seccomp_data, args[4])`, low and high words (both
/// supported architectures are little-endian).
const ARG4_LOW: u32 = 16 + 4 * 8;
const ARG4_HIGH: u32 = ARG4_LOW + 4;

/// The BPF program: calls of `syscalls` on [`AUDIT_ARCH`] notify (those of
/// [`ADDRESSED`] only with a non-`NULL` argument 4), everything else is
/// allowed.
pub fn program(syscalls: &[i64]) -> Vec<libc::sock_filter> {
    let (addressed, plain): (Vec<i64>, Vec<i64>) =
        syscalls.iter().partition(|nr| ADDRESSED.contains(nr));
    let (n, m) = (plain.len(), addressed.len());
    assert!(n + m < 240, "BPF jump offsets are 8 bits");
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: usize, jf: usize| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: jt as u8,
        jf: jf as u8,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    // The argument check: 4 instructions, present when there are
    // addressed calls.
    let check = if m > 0 { 4 } else { 0 };
    // Instructions from the plain jumps' start to `allow`.
    let body = n + m + check;
    // offsetof(struct seccomp_data, arch) and (…, nr).
    let mut prog = vec![stmt(load, 4), jump(AUDIT_ARCH, 0, body + 1), stmt(load, 0)];
    for (i, nr) in plain.iter().enumerate() {
        // To `notify`, one past `allow`.
        prog.push(jump(*nr as u32, body - i, 0));
    }
    for (j, nr) in addressed.iter().enumerate() {
        // Taken: to the check; the last one's miss: to `allow`.
        let miss = if j + 1 == m { check } else { 0 };
        prog.push(jump(*nr as u32, m - 1 - j, miss));
    }
    if m > 0 {
        // Both words zero (`NULL`): allow; otherwise notify.
        prog.push(stmt(load, ARG4_LOW));
        prog.push(jump(0, 0, 3));
        prog.push(stmt(load, ARG4_HIGH));
        prog.push(jump(0, 0, 1));
    }
    prog.push(stmt(ret, libc::SECCOMP_RET_ALLOW));
    prog.push(stmt(ret, libc::SECCOMP_RET_USER_NOTIF));
    prog
}

/// Installs the filter on the calling thread (inherited by what it execs
/// and forks) and returns its listener. Waiting calls can then only be
/// interrupted by fatal signals once the supervisor has them
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`, Linux 5.19, where
/// available): a Go program's preemption signals do not restart them.
pub fn install(syscalls: &[i64]) -> Result<OwnedFd, FilterError> {
    check_available()?;
    let prog = program(syscalls);
    match install_program(&prog) {
        // SAFETY: the kernel returned a new fd that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            Err(FilterError::Unavailable(e))
        }
        Err(e) => Err(FilterError::Install(e)),
    }
}

/// Installs a built program; returns the listener's fd number. Allocates
/// nothing (usable between `fork` and `exec`).
pub fn install_program(prog: &[libc::sock_filter]) -> io::Result<i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let attempt = |flags: libc::c_ulong| {
        // SAFETY: `fprog` points at `prog`, alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as i32)
        }
    };
    let new_listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    let killable = new_listener | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    let mut result = attempt(killable);
    if result.as_ref().is_err_and(is_errno(libc::EACCES)) {
        // Without CAP_SYS_ADMIN a filter needs no_new_privs.
        // SAFETY: plain prctl.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        result = attempt(killable);
    }
    if result.as_ref().is_err_and(is_errno(libc::EINVAL)) {
        result = attempt(new_listener);
    }
    result
}

fn is_errno(errno: i32) -> impl Fn(&io::Error) -> bool {
    move |e| e.raw_os_error() == Some(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the BPF program on a `seccomp_data` (the few instructions it
    /// uses), as the kernel would.
    fn verdict(prog: &[libc::sock_filter], nr: i64, arch: u32, arg4: u64) -> u32 {
        let mut data = [0u8; 64];
        data[..4].copy_from_slice(&(nr as u32).to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[48..56].copy_from_slice(&arg4.to_ne_bytes());
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let insn = prog[pc];
            let code = u32::from(insn.code);
            if code == libc::BPF_RET | libc::BPF_K {
                return insn.k;
            }
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                let at = insn.k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                pc += 1;
            } else {
                assert_eq!(code, libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
                let skip = if acc == insn.k { insn.jt } else { insn.jf };
                pc += 1 + usize::from(skip);
            }
        }
    }

    #[test]
    fn listed_calls_notify_addressed_ones_only_with_an_address() {
        let prog = program(INTERCEPTED);
        let (allow, notify) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_USER_NOTIF);
        for nr in INTERCEPTED {
            if ADDRESSED.contains(nr) {
                assert_eq!(verdict(&prog, *nr, AUDIT_ARCH, 0), allow, "{nr}");
                assert_eq!(verdict(&prog, *nr, AUDIT_ARCH, 0x7fff_0000), notify);
                assert_eq!(verdict(&prog, *nr, AUDIT_ARCH, 1 << 40), notify);
            } else {
                assert_eq!(verdict(&prog, *nr, AUDIT_ARCH, 0), notify, "{nr}");
            }
            // Another ABI passes.
            assert_eq!(verdict(&prog, *nr, 0x4000_0003, 1), allow);
        }
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_close] {
            assert_eq!(verdict(&prog, nr, AUDIT_ARCH, 1), allow, "{nr}");
        }
        // Without addressed calls, the plain ones still notify.
        let plain = program(&[libc::SYS_openat]);
        assert_eq!(verdict(&plain, libc::SYS_openat, AUDIT_ARCH, 0), notify);
        assert_eq!(verdict(&plain, libc::SYS_sendto, AUDIT_ARCH, 1), allow);
    }

    #[test]
    fn this_kernel_offers_user_notification() {
        check_available().unwrap();
    }
}
