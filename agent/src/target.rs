//! The target: its PID, the descriptors of its root and network namespace
//! (opened once at start and held), and the watch for its exit.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target process {0} not found (is the PID right, and is it on this machine?)")]
    NotFound(u32),
    #[error(
        "cannot open {what} of target process {pid}; the agent needs root \
         (or CAP_SYS_ADMIN and CAP_SYS_PTRACE) to join the target"
    )]
    NeedsRoot {
        pid: u32,
        what: String,
        source: io::Error,
    },
    #[error("cannot open {what}")]
    Io { what: String, source: io::Error },
}

/// What the agent serves from: the target's root and network namespace.
pub struct Target {
    /// `None` when targetless.
    pub pid: Option<u32>,
    /// The root directory every file request is resolved in.
    pub root: OwnedFd,
    /// The network namespace sockets are created in (`None`: the agent's own).
    pub netns: Option<OwnedFd>,
    /// The target's exit (`None` when targetless).
    pub exit: Option<ExitWatch>,
}

impl Target {
    /// Targetless: the agent's own root and network namespace.
    pub fn targetless() -> Result<Self, TargetError> {
        let root =
            open_path("/", libc::O_PATH | libc::O_DIRECTORY).map_err(|source| TargetError::Io {
                what: "/".into(),
                source,
            })?;
        Ok(Self {
            pid: None,
            root,
            netns: None,
            exit: None,
        })
    }

    /// Opens and holds a pidfd, `/proc/N/root` and `/proc/N/ns/net`.
    pub fn attach(pid: u32) -> Result<Self, TargetError> {
        if pid == 0
            || pid > i32::MAX as u32
            || !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(TargetError::NotFound(pid));
        }
        let exit = ExitWatch::open(pid)?;
        let open = |what: &str, flags| {
            let path = format!("/proc/{pid}/{what}");
            open_path(&path, flags).map_err(|source| match source.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ESRCH) => TargetError::NotFound(pid),
                Some(libc::EPERM) | Some(libc::EACCES) => TargetError::NeedsRoot {
                    pid,
                    what: path,
                    source,
                },
                _ => TargetError::Io { what: path, source },
            })
        };
        let root = open("root", libc::O_PATH | libc::O_DIRECTORY)?;
        let netns = open("ns/net", libc::O_RDONLY)?;
        Ok(Self {
            pid: Some(pid),
            root,
            netns: Some(netns),
            exit: Some(exit),
        })
    }
}

/// Watches the target for its exit. The pidfd is opened before anything
/// else of the target, so a PID reused later cannot be mistaken for it.
pub struct ExitWatch {
    pid: u32,
    /// `None` where `pidfd_open` is unavailable: `/proc/N` is polled then.
    pidfd: Option<OwnedFd>,
}

impl ExitWatch {
    pub fn open(pid: u32) -> Result<Self, TargetError> {
        match pidfd_open(pid) {
            Ok(fd) => Ok(Self {
                pid,
                pidfd: Some(fd),
            }),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(TargetError::NotFound(pid)),
            Err(e) => {
                tracing::warn!(error = %e, "pidfd_open failed; the target's exit will be polled");
                Ok(Self { pid, pidfd: None })
            }
        }
    }

    /// Resolves when the target has exited: the pidfd turns readable, watched
    /// by the tokio reactor; without one, `/proc/N` is polled twice a second.
    pub async fn wait(self) {
        if let Some(fd) = self.pidfd {
            // SAFETY: the OwnedFd is moved into the AsyncFd and stays open, the
            // same descriptor, until the AsyncFd is dropped.
            match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
                Ok(fd) => {
                    let _ = fd.readable().await;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the pidfd; polling /proc"),
            }
        }
        let path = format!("/proc/{}", self.pid);
        while std::path::Path::new(&path).exists() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // pidfds are close-on-exec already; make sure of it for older kernels.
    // SAFETY: valid descriptor.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(fd)
}

fn open_path(path: &str, flags: i32) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_pid_is_not_found() {
        let err = Target::attach(u32::MAX - 1).err().unwrap();
        assert!(matches!(err, TargetError::NotFound(_)));
        assert!(err.to_string().contains("not found (is the PID right"));
    }

    #[test]
    fn attaches_to_itself() {
        let t = Target::attach(std::process::id()).unwrap();
        assert!(t.netns.is_some());
    }

    #[tokio::test]
    async fn sees_a_child_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id();
        // The child stays a zombie until reaped, which a pidfd still reports
        // as exited.
        let watch = ExitWatch::open(pid).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.wait())
            .await
            .unwrap();
        child.wait().unwrap();
    }
}
