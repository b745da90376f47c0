//! Remote files and directories: the fd table, the close/dup bookkeeping
//! that [`crate::fdhooks`] drives, and the fork handlers.
//!
//! # How a remote file looks to the program
//!
//! A remote file opened for reading is fetched whole at `open` and placed
//! in a `memfd` at the fd number `open` would have returned. From then on
//! `read`, `pread`, `lseek`, `mmap`, `poll`, `dup` and `fork` are the
//! kernel's: no hook, no round trip per byte. The table remembers the
//! remote path and stat (for `fstat`, and for `openat` relative to a remote
//! directory).
//!
//! A remote file opened for writing keeps its remote handle: every write
//! lands in the memfd (so offsets and reads stay right) and the same bytes
//! are sent to the agent at the same offset, pipelined (no round trip per
//! write); `fsync` and the last `close` wait for the answers. See
//! [`ops`] for stdio (`fopen`), whose writes never reach our `write` hook.
//!
//! A remote directory is a `memfd` placeholder marked [`fdbits::DIR`]; its
//! entries are fetched once and served by `readdir`/`getdents64` ([`dir`]).
//!
//! # Choices and limits
//!
//! - Paths are made absolute against the *local* cwd and normalised
//!   lexically (`..` before symlinks); `chdir` into a remote directory is
//!   not followed, `realpath(3)` (glibc-internal calls) stays local.
//! - A remote file opened for reading is fetched whole (a non-regular one
//!   up to [`ops::NON_REGULAR_CAP`]); later changes in the target are not
//!   seen until the next `open`. Very large files cost their size in memory.
//! - `/proc/self/fd/N` of a remote file reads `/memfd:mirrord:NAME
//!   (deleted)`; `fstatfs` says tmpfs; `read` on a directory placeholder
//!   returns 0 rather than `EISDIR`.
//! - Written remotely: `write`, `pwrite*`, `writev`, `pwritev*`,
//!   `ftruncate`, `sendfile`/`copy_file_range` into the file, and stdio
//!   (write-back). Not mirrored: `mmap(MAP_SHARED)` stores, `splice`,
//!   `fallocate`, `fchmod`/`fchown`/`futimens`, and path calls the protocol
//!   has no message for (`chmod`, `chown`, `utimes`, `link`, `symlink`):
//!   those stay local. `mkstemp` and other glibc functions that open
//!   internally stay local too.
//! - An `exec`'d program inherits a remote fd as a plain memfd: it reads
//!   the content, but its writes stay local.
//!
//! # Where to start reading
//!
//! - [`hooks`]: the `extern "C"` detours, a few lines each.
//! - [`ops`]: routing a path, opening, writing, stat, directory changes.
//! - [`dir`]: remote directory streams; [`stdio`]: `fopen` and write-back.
//! - [`path`], [`stat`]: pure helpers with their unit tests.

pub mod dir;
pub mod hooks;
pub mod ops;
pub mod path;
pub mod stat;
pub mod stdio;
pub(crate) mod sys;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};

use mirrord_protocol::{DirEntry, FileStat, Handle};
use parking_lot::Mutex;

use crate::error::HookError;
use crate::fdbits;

/// What the layer knows about one open remote file or directory (shared by
/// every fd that `dup` made from the same `open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The remote handle, kept only while writes may still be sent.
    pub handle: Option<Handle>,
    /// The absolute path in the target.
    pub path: Vec<u8>,
    /// The remote stat at open (`None` for a directory opened with
    /// `opendir`, fetched on the first `fstat`).
    pub stat: Option<FileStat>,
    /// Writes go to the target.
    pub writable: bool,
    /// The memfd holds the whole content (false for a write-only file
    /// opened without `O_TRUNC`: only its size is reproduced).
    pub materialised: bool,
    /// Opened through stdio (`fopen`): written back whole at `fflush`,
    /// `fclose` and exit (see [`stdio::write_back`]).
    pub stdio: bool,
    /// Set for a directory placeholder.
    pub dir: Option<DirCursor>,
}

/// A remote directory's entries and the read position (shared by the
/// placeholder fd, its `DIR*` and `getdents64`, like a kernel file offset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirCursor {
    /// `None` until fetched (and again after `rewinddir`).
    pub entries: Option<Vec<DirEntry>>,
    /// Index into `.`, `..`, then `entries`.
    pub pos: usize,
}

impl RemoteFile {
    /// The fd bit for this kind of object.
    pub fn bit(&self) -> u8 {
        if self.dir.is_some() {
            fdbits::DIR
        } else {
            fdbits::FILE
        }
    }
}

/// The fd table: fds point to shared objects, counted so that the remote
/// side is released when the last copy closes.
#[derive(Debug, Default)]
pub struct Table {
    fds: BTreeMap<i32, u64>,
    objects: BTreeMap<u64, Object>,
    next_id: u64,
    /// Addresses of the `DIR*` streams we handed out.
    pub streams: BTreeSet<usize>,
}

#[derive(Debug)]
struct Object {
    refs: usize,
    file: RemoteFile,
}

/// What `remove` found (returned by value, once per close).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    /// The fd was not ours.
    Absent,
    /// Other fds still share the object.
    Shared,
    /// That was the last fd: release the remote side.
    Last(RemoteFile),
}

impl Table {
    pub const fn new() -> Self {
        Table {
            fds: BTreeMap::new(),
            objects: BTreeMap::new(),
            next_id: 0,
            streams: BTreeSet::new(),
        }
    }

    /// Records `fd` as a new object; returns what `fd` held before (a stale
    /// entry whose close we missed).
    pub fn insert(&mut self, fd: i32, file: RemoteFile) -> Removed {
        let old = self.remove(fd);
        self.next_id += 1;
        self.objects.insert(self.next_id, Object { refs: 1, file });
        self.fds.insert(fd, self.next_id);
        old
    }

    /// `new` now refers to what `old` does; returns what `new` held before
    /// and whether `old` was ours.
    pub fn dup(&mut self, old: i32, new: i32) -> (Removed, bool) {
        if old == new {
            return (Removed::Absent, self.fds.contains_key(&old));
        }
        let replaced = self.remove(new);
        let Some(&id) = self.fds.get(&old) else {
            return (replaced, false);
        };
        if let Some(object) = self.objects.get_mut(&id) {
            object.refs += 1;
        }
        self.fds.insert(new, id);
        (replaced, true)
    }

    pub fn remove(&mut self, fd: i32) -> Removed {
        let Some(id) = self.fds.remove(&fd) else {
            return Removed::Absent;
        };
        match self.objects.get_mut(&id) {
            Some(object) if object.refs > 1 => {
                object.refs -= 1;
                Removed::Shared
            }
            Some(_) => match self.objects.remove(&id) {
                Some(object) => Removed::Last(object.file),
                None => Removed::Absent,
            },
            None => Removed::Absent,
        }
    }

    pub fn get(&self, fd: i32) -> Option<&RemoteFile> {
        self.fds
            .get(&fd)
            .and_then(|id| self.objects.get(id))
            .map(|o| &o.file)
    }

    pub fn get_mut(&mut self, fd: i32) -> Option<&mut RemoteFile> {
        let id = *self.fds.get(&fd)?;
        self.objects.get_mut(&id).map(|o| &mut o.file)
    }

    /// One fd of each object, for exit-time write-back.
    pub fn one_fd_per_object(&self) -> Vec<i32> {
        let mut seen = BTreeSet::new();
        self.fds
            .iter()
            .filter(|(_, id)| seen.insert(**id))
            .map(|(fd, _)| *fd)
            .collect()
    }
}

/// The table. `parking_lot` so the fork handlers can hold it across
/// `fork` without a guard object; never held while calling the intproxy.
static TABLE: Mutex<Table> = parking_lot::const_mutex(Table::new());

/// Runs `f` on the table.
pub fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    f(&mut TABLE.lock())
}

/// Records a new remote fd and marks it in the fd bitmap.
pub fn register(fd: i32, file: RemoteFile) {
    let bit = file.bit();
    let old = with_table(|t| t.insert(fd, file));
    fdbits::clear(fd, fdbits::FILE | fdbits::DIR);
    fdbits::set(fd, bit);
    let _ = release(old);
}

/// `fd` is being closed (or replaced): drop it from the tables, flushing
/// pipelined writes and closing the remote handle when it was the last copy.
pub fn on_close(fd: i32) -> Result<(), HookError> {
    let removed = with_table(|t| t.remove(fd));
    fdbits::clear(fd, fdbits::FILE | fdbits::DIR);
    release(removed)
}

/// `new` is a duplicate of `old`.
pub fn on_dup(old: i32, new: i32) {
    if old == new {
        return;
    }
    let (replaced, bit) = with_table(|t| {
        let (replaced, ours) = t.dup(old, new);
        (
            replaced,
            ours.then(|| t.get(new).map(RemoteFile::bit)).flatten(),
        )
    });
    fdbits::clear(new, fdbits::FILE | fdbits::DIR);
    if let Some(bit) = bit {
        fdbits::set(new, bit);
    }
    let _ = release(replaced);
    if bit == Some(fdbits::FILE) && (new == 1 || new == 2) {
        // `dup2(remote, 1)`: `printf` now writes through glibc's internal
        // `write`, past our hook; write the file back like a stdio file.
        let _ = stdio::mark_stdio(new);
    }
}

/// Waits for the writes of a file whose last fd closed, and closes its
/// remote handle.
fn release(removed: Removed) -> Result<(), HookError> {
    let Removed::Last(file) = removed else {
        return Ok(());
    };
    let Some(handle) = file.handle else {
        return Ok(());
    };
    let flushed = if file.writable {
        crate::client::flush(handle)
    } else {
        Ok(())
    };
    let closed = crate::client::close_handle(handle);
    flushed.and(closed)
}

/// 0: not computed yet, 1: every file is local, 2: the policy routes files.
static FS_ACTIVE: AtomicU8 = AtomicU8::new(0);

/// Whether any path may be remote; false in fs mode `local`, where every
/// path hook goes straight to libc.
#[inline]
pub fn fs_active() -> bool {
    match FS_ACTIVE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let Some(state) = crate::setup::state() else {
                return false;
            };
            let active = !ops::fs_mode_is_local(state);
            FS_ACTIVE.store(if active { 2 } else { 1 }, Ordering::Relaxed);
            active
        }
    }
}

pub(crate) fn fork_prepare() {
    std::mem::forget(TABLE.lock());
}

pub(crate) fn fork_parent() {
    // SAFETY: locked by `fork_prepare` on this thread.
    unsafe { TABLE.force_unlock() };
}

/// The child keeps the table: its fds are copies of the parent's, and the
/// intproxy keeps the shared handles open until both have closed them.
pub(crate) fn fork_child() {
    // SAFETY: locked by `fork_prepare` on the thread that forked, the only
    // thread in the child.
    unsafe { TABLE.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(handle: u64) -> RemoteFile {
        RemoteFile {
            handle: Some(handle),
            path: b"/f".to_vec(),
            stat: None,
            writable: true,
            materialised: true,
            stdio: false,
            dir: None,
        }
    }

    #[test]
    fn last_close_of_dups_releases_once() {
        let mut t = Table::new();
        assert_eq!(t.insert(3, file(7)), Removed::Absent);
        assert_eq!(t.dup(3, 4), (Removed::Absent, true));
        assert_eq!(t.dup(4, 9), (Removed::Absent, true));
        assert_eq!(t.remove(3), Removed::Shared);
        assert_eq!(t.remove(9), Removed::Shared);
        assert_eq!(t.remove(3), Removed::Absent);
        assert_eq!(t.remove(4), Removed::Last(file(7)));
        assert!(t.get(4).is_none());
    }

    #[test]
    fn dup_onto_a_remote_fd_releases_what_it_held() {
        let mut t = Table::new();
        t.insert(3, file(1));
        t.insert(4, file(2));
        let (replaced, ours) = t.dup(3, 4);
        assert!(ours);
        assert_eq!(replaced, Removed::Last(file(2)));
        assert_eq!(t.get(4).and_then(|f| f.handle), Some(1));
    }

    #[test]
    fn dup_of_a_local_fd_forgets_the_target() {
        let mut t = Table::new();
        t.insert(5, file(1));
        assert_eq!(t.dup(0, 5), (Removed::Last(file(1)), false));
        assert!(t.get(5).is_none());
        assert_eq!(t.dup(6, 6), (Removed::Absent, false));
    }

    #[test]
    fn insert_over_a_stale_fd_returns_it() {
        let mut t = Table::new();
        t.insert(3, file(1));
        assert_eq!(t.insert(3, file(2)), Removed::Last(file(1)));
        assert_eq!(t.one_fd_per_object(), vec![3]);
    }

    #[test]
    fn one_fd_per_object_skips_dups() {
        let mut t = Table::new();
        t.insert(3, file(1));
        t.dup(3, 8);
        t.insert(5, file(2));
        assert_eq!(t.one_fd_per_object(), vec![3, 5]);
    }
}
