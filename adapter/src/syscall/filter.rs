//! The seccomp filter `mirrord exec` installs on itself just before it
//! execs the program: the listed syscalls stop and notify a listener, the
//! rest run untouched (the cost of the path stays on the listed calls).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The syscalls that stop in the supervisor.
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

/// The BPF program: calls of [`INTERCEPTED`] on [`AUDIT_ARCH`] notify,
/// everything else is allowed.
pub fn program(syscalls: &[i64]) -> Vec<libc::sock_filter> {
    let n = syscalls.len();
    assert!(n < 250, "BPF jump offsets are 8 bits");
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
    // offsetof(struct seccomp_data, arch) and (…, nr).
    let mut prog = vec![stmt(load, 4), jump(AUDIT_ARCH, 0, n + 1), stmt(load, 0)];
    for (i, nr) in syscalls.iter().enumerate() {
        prog.push(jump(*nr as u32, n - i, 0));
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

    #[test]
    fn every_listed_call_jumps_to_the_notify_return() {
        let prog = program(INTERCEPTED);
        let notify = prog.len() - 1;
        let allow = prog.len() - 2;
        assert_eq!(prog[notify].k, libc::SECCOMP_RET_USER_NOTIF);
        assert_eq!(prog[allow].k, libc::SECCOMP_RET_ALLOW);
        // Another architecture jumps straight to allow.
        assert_eq!(2 + usize::from(prog[1].jf), allow);
        for (i, insn) in prog[3..allow].iter().enumerate() {
            assert_eq!(insn.k, INTERCEPTED[i] as u32);
            assert_eq!(3 + i + 1 + usize::from(insn.jt), notify);
            assert_eq!(insn.jf, 0);
        }
    }

    #[test]
    fn this_kernel_offers_user_notification() {
        check_available().unwrap();
    }
}
