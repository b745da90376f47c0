//! The stopped calls, decoded once from their number and raw arguments:
//! the supervisor's quick "continue" check and its dispatch read the same
//! decoding, so a call cannot be routed by one and answered by the other
//! with different arguments.

use super::fs::StatOut;
use super::notify::Notification;

/// A stopped call with its arguments (pointers still in the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `open`, `openat`.
    Open {
        dirfd: i32,
        path: u64,
        flags: i32,
        mode: u32,
    },
    /// `openat2`: flags and mode are in the caller's `open_how` at `how`.
    OpenHow {
        dirfd: i32,
        path: u64,
        how: u64,
    },
    /// `stat`, `lstat`, `newfstatat`, `statx`.
    Stat {
        dirfd: i32,
        path: u64,
        follow: bool,
        out: StatOut,
    },
    /// `access`, `faccessat`, `faccessat2`.
    Access {
        dirfd: i32,
        path: u64,
        mode: i32,
    },
    /// `readlink`, `readlinkat`.
    ReadLink {
        dirfd: i32,
        path: u64,
        buf: u64,
        size: i64,
    },
    Connect,
    GetPeerName,
    Listen,
    /// `accept` (flags 0), `accept4`.
    Accept {
        flags: i32,
    },
    SendTo,
    RecvFrom,
    SendMsg,
    RecvMsg,
    SendMmsg,
    RecvMmsg,
    /// Not one the supervisor answers: it continues.
    Other,
}

impl Call {
    pub fn decode(n: &Notification) -> Call {
        let a = n.args;
        let at = libc::AT_FDCWD;
        let int = |v: u64| v as i32;
        let follows = |flags: u64| int(flags) & libc::AT_SYMLINK_NOFOLLOW == 0;
        match n.nr {
            #[cfg(target_arch = "x86_64")]
            libc::SYS_open => Call::Open {
                dirfd: at,
                path: a[0],
                flags: int(a[1]),
                mode: a[2] as u32,
            },
            libc::SYS_openat => Call::Open {
                dirfd: int(a[0]),
                path: a[1],
                flags: int(a[2]),
                mode: a[3] as u32,
            },
            libc::SYS_openat2 => Call::OpenHow {
                dirfd: int(a[0]),
                path: a[1],
                how: a[2],
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_stat | libc::SYS_lstat => Call::Stat {
                dirfd: at,
                path: a[0],
                follow: n.nr == libc::SYS_stat,
                out: StatOut::Stat(a[1]),
            },
            libc::SYS_newfstatat => Call::Stat {
                dirfd: int(a[0]),
                path: a[1],
                follow: follows(a[3]),
                out: StatOut::Stat(a[2]),
            },
            libc::SYS_statx => Call::Stat {
                dirfd: int(a[0]),
                path: a[1],
                follow: follows(a[2]),
                out: StatOut::Statx(a[4]),
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_access => Call::Access {
                dirfd: at,
                path: a[0],
                mode: int(a[1]),
            },
            libc::SYS_faccessat | libc::SYS_faccessat2 => Call::Access {
                dirfd: int(a[0]),
                path: a[1],
                mode: int(a[2]),
            },
            #[cfg(target_arch = "x86_64")]
            libc::SYS_readlink => Call::ReadLink {
                dirfd: at,
                path: a[0],
                buf: a[1],
                size: a[2] as i64,
            },
            libc::SYS_readlinkat => Call::ReadLink {
                dirfd: int(a[0]),
                path: a[1],
                buf: a[2],
                size: a[3] as i64,
            },
            libc::SYS_connect => Call::Connect,
            libc::SYS_getpeername => Call::GetPeerName,
            libc::SYS_listen => Call::Listen,
            #[cfg(target_arch = "x86_64")]
            libc::SYS_accept => Call::Accept { flags: 0 },
            libc::SYS_accept4 => Call::Accept { flags: int(a[3]) },
            libc::SYS_sendto => Call::SendTo,
            libc::SYS_recvfrom => Call::RecvFrom,
            libc::SYS_sendmsg => Call::SendMsg,
            libc::SYS_recvmsg => Call::RecvMsg,
            libc::SYS_sendmmsg => Call::SendMmsg,
            libc::SYS_recvmmsg => Call::RecvMmsg,
            _ => Call::Other,
        }
    }

    /// The path the call names and whether it may write there, when that
    /// can be known without reading the caller's memory (`openat2`'s flags
    /// are in it).
    pub fn path(&self) -> Option<(i32, u64, bool)> {
        match *self {
            Call::Open {
                dirfd, path, flags, ..
            } => Some((dirfd, path, super::fs::wants_write(flags))),
            Call::Stat { dirfd, path, .. }
            | Call::Access { dirfd, path, .. }
            | Call::ReadLink { dirfd, path, .. } => Some((dirfd, path, false)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(nr: i64, args: [u64; 6]) -> Notification {
        Notification {
            id: 1,
            pid: 1,
            nr,
            arch: super::super::filter::AUDIT_ARCH,
            args,
        }
    }

    #[test]
    fn arguments_land_in_their_places() {
        let at = libc::AT_FDCWD as u32 as u64;
        let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
        let rows = [
            (
                stopped(
                    libc::SYS_openat,
                    [at, 0x10, libc::O_WRONLY as u64, 0o600, 0, 0],
                ),
                Call::Open {
                    dirfd: libc::AT_FDCWD,
                    path: 0x10,
                    flags: libc::O_WRONLY,
                    mode: 0o600,
                },
                Some((libc::AT_FDCWD, 0x10, true)),
            ),
            (
                stopped(libc::SYS_newfstatat, [5, 0x20, 0x30, nofollow, 0, 0]),
                Call::Stat {
                    dirfd: 5,
                    path: 0x20,
                    follow: false,
                    out: StatOut::Stat(0x30),
                },
                Some((5, 0x20, false)),
            ),
            (
                stopped(libc::SYS_statx, [5, 0x20, 0, 0x7ff, 0x40, 0]),
                Call::Stat {
                    dirfd: 5,
                    path: 0x20,
                    follow: true,
                    out: StatOut::Statx(0x40),
                },
                Some((5, 0x20, false)),
            ),
            (
                stopped(libc::SYS_readlinkat, [at, 0x20, 0x50, 64, 0, 0]),
                Call::ReadLink {
                    dirfd: libc::AT_FDCWD,
                    path: 0x20,
                    buf: 0x50,
                    size: 64,
                },
                Some((libc::AT_FDCWD, 0x20, false)),
            ),
            (
                stopped(libc::SYS_openat2, [3, 0x20, 0x60, 24, 0, 0]),
                Call::OpenHow {
                    dirfd: 3,
                    path: 0x20,
                    how: 0x60,
                },
                None,
            ),
            (
                stopped(
                    libc::SYS_accept4,
                    [3, 0, 0, libc::SOCK_CLOEXEC as u64, 0, 0],
                ),
                Call::Accept {
                    flags: libc::SOCK_CLOEXEC,
                },
                None,
            ),
            (stopped(libc::SYS_read, [0; 6]), Call::Other, None),
        ];
        for (n, call, path) in rows {
            assert_eq!(Call::decode(&n), call, "{}", n.nr);
            assert_eq!(call.path(), path, "{}", n.nr);
        }
    }
}
