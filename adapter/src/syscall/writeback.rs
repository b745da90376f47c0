//! Remote files a program on the syscall path opens for writing. The
//! program gets a memfd holding the file's content (empty after
//! `O_TRUNC`) as an open file description of its own; reads, writes and
//! seeks stay in the kernel. When the program's last reference to it is
//! closed the kernel reports `IN_CLOSE_WRITE` (inotify on the memfd's
//! inode), and the content is written back to the target: `Write`s from
//! offset 0, `Truncate` to its length, `Close`.
//!
//! Order: the close event is queued before `close(2)` returns, so a later
//! call of the program on the same path first [`Writebacks::settle`]s it:
//! what the program wrote is in the target before it looks again.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use mirrord_protocol::{Handle, Request};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::intproxy::agent::AgentClient;

/// The largest `Write` sent at once.
const CHUNK: usize = 1 << 20;

pub struct Writebacks {
    inotify: AsyncFd<OwnedFd>,
    /// Watch descriptor → the file it writes back.
    open: Mutex<HashMap<i32, Entry>>,
    /// Path → write-backs in flight (`true` once done).
    inflight: Mutex<Vec<(Vec<u8>, watch::Receiver<bool>)>>,
}

struct Entry {
    path: Vec<u8>,
    handle: Handle,
    memfd: File,
}

impl Writebacks {
    /// Needs a runtime (the inotify fd is registered with it).
    pub fn new() -> io::Result<Writebacks> {
        // SAFETY: plain syscall; the fd is owned at once.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the same
        // descriptor, until the AsyncFd is dropped.
        let inotify = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(Writebacks {
            inotify,
            open: Mutex::new(HashMap::new()),
            inflight: Mutex::new(Vec::new()),
        })
    }

    /// Writes `memfd` back to the remote `handle` of `path` once every
    /// description of it but ours is closed. Returns the watch, for
    /// [`Writebacks::forget`].
    pub fn track(&self, path: Vec<u8>, handle: Handle, memfd: File) -> io::Result<i32> {
        let link = format!("/proc/self/fd/{}\0", memfd.as_raw_fd());
        // SAFETY: `link` is NUL-terminated; plain syscall.
        let wd = unsafe {
            libc::inotify_add_watch(
                self.inotify.get_ref().as_raw_fd(),
                link.as_ptr().cast(),
                libc::IN_CLOSE_WRITE,
            )
        };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        if let Ok(mut open) = self.open.lock() {
            open.insert(
                wd,
                Entry {
                    path,
                    handle,
                    memfd,
                },
            );
        }
        Ok(wd)
    }

    /// Drops a tracked file without writing it back (the program never got
    /// it); its remote handle is closed.
    pub fn forget(&self, wd: i32, agent: &AgentClient) {
        if let Some(entry) = self.take(wd) {
            drop(agent.request(Request::Close {
                handle: entry.handle,
            }));
        }
    }

    fn take(&self, wd: i32) -> Option<Entry> {
        let entry = self.open.lock().ok()?.remove(&wd)?;
        // SAFETY: plain syscall on our inotify fd.
        unsafe { libc::inotify_rm_watch(self.inotify.get_ref().as_raw_fd(), wd) };
        Some(entry)
    }

    /// Starts the write-back of every file whose close is queued.
    fn drain(&self, agent: &AgentClient) {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe {
                libc::read(
                    self.inotify.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n <= 0 {
                return;
            }
            let mut at = 0;
            let header = std::mem::size_of::<libc::inotify_event>();
            while at + header <= n as usize {
                // SAFETY: the kernel wrote a whole event at `at`.
                let event: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                at += header + event.len as usize;
                if event.mask & libc::IN_CLOSE_WRITE != 0 {
                    if let Some(entry) = self.take(event.wd) {
                        self.start(entry, agent.clone());
                    }
                }
            }
        }
    }

    fn start(&self, entry: Entry, agent: AgentClient) {
        let (done, finished) = watch::channel(false);
        if let Ok(mut inflight) = self.inflight.lock() {
            inflight.retain(|(_, rx)| !*rx.borrow());
            inflight.push((entry.path.clone(), finished));
        }
        tokio::spawn(async move {
            if let Err(e) = write_back(&entry, &agent).await {
                warn!(path = %String::from_utf8_lossy(&entry.path), "cannot write the file back to the target: {e}");
            }
            let _ = done.send(true);
        });
    }

    /// Waits until what the program wrote to `path` and closed is in the
    /// target.
    pub async fn settle(&self, path: &[u8], agent: &AgentClient) {
        let idle = self.open.lock().map(|o| o.is_empty()).unwrap_or(true)
            && self.inflight.lock().map(|i| i.is_empty()).unwrap_or(true);
        if idle {
            return;
        }
        self.drain(agent);
        let waits: Vec<_> = match self.inflight.lock() {
            Ok(inflight) => inflight
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, rx)| rx.clone())
                .collect(),
            Err(_) => return,
        };
        for mut rx in waits {
            let _ = rx.wait_for(|done| *done).await;
        }
    }

    /// Writes back files as their programs close them, until dropped.
    pub async fn run(&self, agent: &AgentClient) {
        loop {
            let Ok(mut ready) = self.inotify.readable().await else {
                return;
            };
            self.drain(agent);
            ready.clear_ready();
        }
    }

    /// At the end: what was closed is written back, and waited for.
    pub async fn finish(&self, agent: &AgentClient) {
        self.drain(agent);
        let waits: Vec<_> = match self.inflight.lock() {
            Ok(inflight) => inflight.iter().map(|(_, rx)| rx.clone()).collect(),
            Err(_) => return,
        };
        for mut rx in waits {
            let _ = rx.wait_for(|done| *done).await;
        }
        let left: Vec<i32> = match self.open.lock() {
            Ok(open) => open.keys().copied().collect(),
            Err(_) => return,
        };
        // Still open when the last process under the filter exited: the
        // kernel closed them, with the process.
        for wd in left {
            if let Some(entry) = self.take(wd) {
                let _ = write_back(&entry, agent).await;
            }
        }
    }
}

async fn write_back(entry: &Entry, agent: &AgentClient) -> Result<(), String> {
    let mut content = Vec::new();
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = entry
            .memfd
            .read_at(&mut buf, offset)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        content.extend_from_slice(&buf[..n]);
        offset += n as u64;
    }
    debug!(path = %String::from_utf8_lossy(&entry.path), len = content.len(), "write back");
    let handle = entry.handle;
    // Queued at once, answered in order: pipelined.
    let writes: Vec<_> = content
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            agent.request(Request::Write {
                handle,
                offset: Some((i * CHUNK) as u64),
                data: chunk.to_vec(),
            })
        })
        .collect();
    let truncate = agent.request(Request::Truncate {
        handle,
        len: content.len() as u64,
    });
    let close = agent.request(Request::Close { handle });
    let mut result = Ok(());
    for write in writes {
        if let Err(e) = write.await {
            result = Err(e.to_string());
        }
    }
    if let Err(e) = truncate.await {
        result = Err(e.to_string());
    }
    let _ = close.await;
    result
}
