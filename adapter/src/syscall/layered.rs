//! The processes whose layer is connected to this intproxy, for the
//! supervisors: a dynamic program exec'd under a seccomp filter loads the
//! layer (`mirrord exec` sets `LD_PRELOAD` on the syscall path too), and
//! from then on the layer does what the supervisor would. The filter is
//! inherited and cannot be removed, so the supervisor answers each stopped
//! call of such a process with "continue" at once.
//!
//! A process is registered under the PID of its connection's peer
//! (`SO_PEERCRED`, in the intproxy's PID namespace, as the notifications'
//! PIDs are) before its hello is acknowledged, so before the layer's first
//! hooked call. A stopped thread is matched by its name in the process's
//! `/proc/PID/task` directory, opened at registration: a directory of a
//! process that is gone answers nothing, even when its PID is reused. The
//! layer's connection is close-on-exec, and the kernel closes it before
//! an `exec`'d program runs its first instruction, so every lookup checks
//! that the connection is still open (`POLLRDHUP` on the intproxy's end): a
//! process that exec'd another program (a Go binary, where the layer stays
//! inert) is the supervisor's again from its first call, even before the
//! intproxy has read the end of the connection.

use std::ffi::{CStr, CString};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::info;

/// The registered processes. A std mutex: held for a few `fstatat`/`poll`
/// calls, never across an await.
#[derive(Default)]
pub struct Layered {
    entries: Mutex<Vec<Entry>>,
    /// Whether any process is registered: a lookup costs one atomic load
    /// when none is (a Go program with no dynamic child).
    any: AtomicBool,
    next: AtomicU64,
}

struct Entry {
    key: u64,
    pid: u32,
    /// `/proc/PID/task`, opened at registration.
    task: OwnedFd,
    /// A copy of the intproxy's end of the layer's connection.
    connection: OwnedFd,
    /// Stopped calls of the process answered "continue" for its layer.
    continued: Arc<AtomicU64>,
}

/// Keeps a process registered while it lives; dropped when its layer's
/// connection ends.
pub struct Registration {
    layered: Arc<Layered>,
    key: u64,
    pid: u32,
    continued: Arc<AtomicU64>,
}

impl Layered {
    /// Registers process `pid`, whose layer is connected through
    /// `connection` (the intproxy's end).
    pub fn register(
        self: &Arc<Self>,
        pid: u32,
        connection: BorrowedFd<'_>,
    ) -> io::Result<Registration> {
        let task = open_dir(&format!("/proc/{pid}/task"))?;
        let connection = connection.try_clone_to_owned()?;
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let continued = Arc::new(AtomicU64::new(0));
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| io::Error::other("the registry's lock is poisoned"))?;
        entries.push(Entry {
            key,
            pid,
            task,
            connection,
            continued: continued.clone(),
        });
        self.any.store(true, Ordering::Release);
        Ok(Registration {
            layered: self.clone(),
            key,
            pid,
            continued,
        })
    }

    /// Whether thread `tid` belongs to a process whose layer is connected;
    /// counts the call for that process when it does.
    pub fn has_layer(&self, tid: u32) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        // The thread's name in a task directory, NUL-terminated, without
        // allocating: this runs for every stopped call.
        let mut digits = [0u8; 12];
        let _ = write!(&mut digits[..], "{tid}");
        let Ok(name) = CStr::from_bytes_until_nul(&digits) else {
            return false;
        };
        // The main thread first: most processes have only that one.
        let main_first = entries
            .iter()
            .filter(|e| e.pid == tid)
            .chain(entries.iter().filter(|e| e.pid != tid));
        for entry in main_first {
            if is_task_of(entry, name) {
                if !connected(entry.connection.as_raw_fd()) {
                    return false;
                }
                entry.continued.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }

    fn remove(&self, key: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|e| e.key != key);
            self.any.store(!entries.is_empty(), Ordering::Release);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.layered.remove(self.key);
        let continued = self.continued.load(Ordering::Relaxed);
        if continued > 0 {
            info!(
                pid = self.pid,
                continued,
                "under a seccomp filter, served by its layer: its stopped calls continued"
            );
        }
    }
}

/// Whether `name` (a thread id) is in the entry's task directory.
fn is_task_of(entry: &Entry, name: &CStr) -> bool {
    // SAFETY: all-zero is a valid stat buffer for fstatat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid directory fd, a NUL-terminated name and a buffer.
    let rc = unsafe {
        libc::fstatat(
            entry.task.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0
}

/// Whether the other end of the connection `fd` is still open.
fn connected(fd: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no waiting.
    let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
    rc >= 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) == 0
}

fn open_dir(path: &str) -> io::Result<OwnedFd> {
    let path = CString::new(path).map_err(io::Error::other)?;
    // SAFETY: a NUL-terminated path; the returned fd is owned at once.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    fn gettid() -> u32 {
        // SAFETY: plain syscall.
        unsafe { libc::syscall(libc::SYS_gettid) as u32 }
    }

    #[test]
    fn threads_of_a_registered_process_are_known_while_its_connection_lasts() {
        let layered = Arc::new(Layered::default());
        assert!(!layered.has_layer(std::process::id()));
        let (ours, theirs) = UnixStream::pair().unwrap();
        let registration = layered.register(std::process::id(), ours.as_fd()).unwrap();
        assert!(layered.has_layer(std::process::id()));
        // Another thread of this process.
        let other = std::thread::spawn(gettid).join().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            tx.send(gettid()).unwrap();
            let _ = stop_rx.recv();
        });
        let live = rx.recv().unwrap();
        assert!(layered.has_layer(live), "a live thread of the process");
        drop(stop_tx);
        thread.join().unwrap();
        assert!(!layered.has_layer(other), "a thread that is gone");
        // Not a thread of ours (PID 1 is init).
        assert!(!layered.has_layer(1));
        assert_eq!(registration.continued.load(Ordering::Relaxed), 2);
        // The layer's end closes (an exec): no longer layered, at once.
        drop(theirs);
        assert!(!layered.has_layer(std::process::id()));
        drop(registration);
        assert!(!layered.any.load(Ordering::Relaxed));
    }

    #[test]
    fn a_process_that_is_gone_is_not_matched() {
        let layered = Arc::new(Layered::default());
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let _registration = layered.register(pid, ours.as_fd()).unwrap();
        child.wait().unwrap();
        assert!(!layered.has_layer(pid));
    }
}
