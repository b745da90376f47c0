//! The seccomp user-notification ABI: receiving a stopped syscall,
//! checking that it is still pending, answering it, and installing an fd
//! in the stopped process.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// One stopped syscall.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// Unique while pending; every answer names it.
    pub id: u64,
    /// The thread that made the call (in our PID namespace).
    pub pid: u32,
    pub nr: i64,
    pub arch: u32,
    pub args: [u64; 6],
}

/// How a stopped syscall ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The kernel runs the call as the program made it.
    Continue,
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Errno(i32),
}

/// The listener of a filter installed with `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
#[derive(Debug)]
pub struct Listener(OwnedFd);

impl Listener {
    pub fn new(fd: OwnedFd) -> Self {
        Listener(fd)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }

    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// Receives the next notification. Blocks while none is queued: call it
    /// after `poll` said readable. `ENOENT` means the caller died meanwhile.
    pub fn recv(&self) -> io::Result<Notification> {
        // SAFETY: the kernel requires a zeroed struct; all-zero is valid.
        let mut raw: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `raw` is a valid seccomp_notif for the ioctl to fill.
        check(unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut raw as *mut libc::seccomp_notif,
            )
        })?;
        Ok(Notification {
            id: raw.id,
            pid: raw.pid,
            nr: i64::from(raw.data.nr),
            arch: raw.data.arch,
            args: raw.data.args,
        })
    }

    /// Whether the notification `id` is still pending: its thread has not
    /// died or been interrupted. Checked after every read of its memory,
    /// so a recycled address or PID is never acted upon.
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: `id` is a valid u64 for the ioctl to read.
        unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &mut id as *mut u64,
            ) == 0
        }
    }

    /// Ends the stopped call with `reply`. `ENOENT` means it was no longer
    /// pending (the thread died or was interrupted).
    pub fn respond(&self, id: u64, reply: Reply) -> io::Result<()> {
        let (val, error, flags) = match reply {
            Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Reply::Value(v) => (v, 0, 0),
            Reply::Errno(e) => (0, -e, 0),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: `resp` is a valid seccomp_notif_resp.
        check(unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut libc::seccomp_notif_resp,
            )
        })
        .map(drop)
    }

    /// Installs `fd` in the stopped process and makes its number the
    /// call's result, atomically (`SECCOMP_ADDFD_FLAG_SEND`): the call is
    /// answered by this.
    pub fn send_fd(&self, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
        let mut addfd = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: `addfd` is a valid seccomp_notif_addfd.
        check(unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD,
                &mut addfd as *mut libc::seccomp_notif_addfd,
            )
        })
    }
}

fn check(rc: libc::c_int) -> io::Result<i32> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}
