//! The safe logic behind the file hooks: route a path, open a remote file
//! into a memfd, mirror writes, answer stat/access/readlink, and change
//! directories in write mode. Directory streams are in [`super::dir`],
//! stdio in [`super::stdio`].
//!
//! Every function returns `Ok(None)` to leave the call to libc (the local
//! path), `Ok(Some(v))` when it handled it, or `Err` for the errno to set.

use std::ffi::CStr;
use std::os::raw::c_int;

use mirrord_config::policy::FileRoute;
use mirrord_protocol::{FileStat, Handle, OpenFlags, Request, Response, MAX_READ_LEN};

use super::path::{local_cwd, AbsPath, MAX_PATH};
use super::stat::{is_dir, is_regular};
use super::{fs_active, register, sys, with_table, DirCursor, RemoteFile};
use crate::error::{errno, HookError};
use crate::fdbits;
use crate::setup::LayerState;

/// How many bytes `Open` brings back with its answer.
pub const READ_AHEAD: u32 = 64 << 10;
/// The most bytes read from a remote file that is not a regular file
/// (`/proc`-like, devices), which may never reach EOF.
pub const NON_REGULAR_CAP: usize = 16 << 20;
/// Write payload per message, well under the frame limit.
pub(crate) const WRITE_CHUNK: usize = 1 << 20;

/// Whether the config keeps every file local (mode `local`).
pub fn fs_mode_is_local(state: &LayerState) -> bool {
    state.fs.mode() == mirrord_config::FsMode::Local
}

/// Where a path goes. The path stays on the stack (no allocation to
/// route a path), hence the large variant.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    Local,
    NotFound,
    /// Boxed: an `AbsPath` is `PATH_MAX` bytes, and every move of an
    /// unboxed `Target` (each `?` and return) would copy them, on the local
    /// path too.
    Remote {
        path: Box<AbsPath>,
        writable: bool,
    },
}

/// Routes `path` (relative to `dirfd`) through the fs policy.
///
/// Relative paths resolve against the local cwd (`AT_FDCWD`) or a remote
/// directory placeholder; relative to any other fd they stay local.
pub fn route_at(dirfd: c_int, path: &CStr, write: bool) -> Result<Target, HookError> {
    if !fs_active() {
        return Ok(Target::Local);
    }
    let Some(state) = crate::setup::state() else {
        return Ok(Target::Local);
    };
    let bytes = path.to_bytes();
    if bytes.is_empty() {
        return Ok(Target::Local);
    }
    let mut abs = AbsPath::root();
    if bytes.starts_with(b"/") {
        abs.set(b"/", bytes)?;
    } else if dirfd == libc::AT_FDCWD {
        let mut buf = [0; MAX_PATH];
        match local_cwd(&mut buf) {
            Some(cwd) => abs.set(cwd, bytes)?,
            None => return Ok(Target::Local),
        }
    } else if fdbits::get(dirfd) & (fdbits::DIR | fdbits::FILE) != 0 {
        match remote_dir_path(dirfd)? {
            Some(base) => {
                let abs = AbsPath::join(&base, bytes)?;
                // Inside a remote directory: remote whatever the policy
                // says of the local machine, unless it hides the path.
                return Ok(match state.fs.route(abs.as_bytes(), write) {
                    FileRoute::NotFound => Target::NotFound,
                    FileRoute::Remote { writable } => Target::Remote {
                        path: abs,
                        writable,
                    },
                    FileRoute::Local => Target::Remote {
                        path: abs,
                        writable: false,
                    },
                });
            }
            None => return Ok(Target::Local),
        }
    } else {
        return Ok(Target::Local);
    }
    Ok(match state.fs.route(abs.as_bytes(), write) {
        FileRoute::Local => Target::Local,
        FileRoute::NotFound => Target::NotFound,
        FileRoute::Remote { writable } => Target::Remote {
            path: Box::new(abs),
            writable,
        },
    })
}

/// The remote path of a directory placeholder; `ENOTDIR` for a remote file.
fn remote_dir_path(fd: c_int) -> Result<Option<Vec<u8>>, HookError> {
    with_table(|t| match t.get(fd) {
        Some(f) if f.dir.is_some() => Ok(Some(f.path.clone())),
        Some(_) => Err(HookError::BadArgument(libc::ENOTDIR)),
        None => Ok(None),
    })
}

pub(crate) fn not_found() -> HookError {
    HookError::BadArgument(libc::ENOENT)
}

/// Whether `flags` may modify the file.
pub fn wants_write(flags: c_int) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
}

// ---------------------------------------------------------------------------
// open

/// `openat` and friends; `stdio` when called for `fopen`.
pub fn open(
    dirfd: c_int,
    path: &CStr,
    flags: c_int,
    mode: u32,
    stdio: bool,
) -> Result<Option<c_int>, HookError> {
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Ok(None);
    }
    let write = wants_write(flags);
    // The mode is read from open's variadic slot: garbage without O_CREAT.
    let mode = if flags & libc::O_CREAT != 0 {
        mode & 0o7777
    } else {
        0
    };
    match route_at(dirfd, path, write)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote {
            writable: false, ..
        } if write => Err(HookError::BadArgument(libc::EROFS)),
        Target::Remote { path, .. } => {
            open_remote(path.as_bytes(), flags, mode, write, stdio).map(Some)
        }
    }
}

fn open_remote(
    path: &[u8],
    flags: c_int,
    mode: u32,
    write: bool,
    stdio: bool,
) -> Result<c_int, HookError> {
    let acc = flags & libc::O_ACCMODE;
    let truncate = write && flags & libc::O_TRUNC != 0;
    // A write-only file needs only its size, unless stdio will write it
    // back whole.
    let content = !truncate && (acc != libc::O_WRONLY || stdio);
    let (handle, stat, data, eof) = remote_open(
        path,
        OpenFlags::from_open(flags, write, content),
        mode,
        if content { READ_AHEAD } else { 0 },
    )?;
    if is_dir(stat.mode) {
        let _ = crate::client::close_handle(handle);
        return dir_placeholder(path, Some(stat), flags);
    }
    let data = if content {
        read_rest(handle, data, eof, &stat)
    } else {
        Ok(Vec::new())
    };
    if !write {
        let _ = crate::client::close_handle(handle);
    }
    let placed = data.and_then(|data| {
        let fd = sys::memfd(path, flags & libc::O_CLOEXEC != 0)?;
        let filled = if content {
            sys::pwrite_all(fd, &data, 0)
        } else if truncate {
            Ok(())
        } else {
            sys::ftruncate(fd, stat.size)
        };
        match filled.and_then(|()| sys::set_access(fd, flags)) {
            Ok(()) => Ok(fd),
            Err(e) => {
                sys::close(fd);
                Err(e)
            }
        }
    });
    let fd = match placed {
        Ok(fd) => fd,
        Err(e) => {
            if write {
                let _ = crate::client::close_handle(handle);
            }
            return Err(e);
        }
    };
    let stdio = stdio && write;
    register(
        fd,
        RemoteFile {
            handle: write.then_some(handle),
            path: path.to_vec(),
            stat: Some(stat),
            writable: write,
            materialised: content || truncate,
            stdio,
            dir: None,
        },
    );
    if stdio {
        super::stdio::register_exit_write_back();
    }
    Ok(fd)
}

/// Reads the rest of a remote file after the `Open` read-ahead.
pub(crate) fn read_rest(
    handle: u64,
    mut data: Vec<u8>,
    mut eof: bool,
    stat: &FileStat,
) -> Result<Vec<u8>, HookError> {
    let cap = if is_regular(stat.mode) {
        usize::MAX
    } else {
        NON_REGULAR_CAP
    };
    if is_regular(stat.mode) {
        data.reserve((stat.size as usize).saturating_sub(data.len()).min(1 << 30));
    }
    while !eof && data.len() < cap {
        let response = crate::client::remote(Request::Read {
            handle,
            offset: data.len() as u64,
            len: MAX_READ_LEN,
        })?;
        let Response::Data {
            data: more,
            eof: end,
        } = response
        else {
            return Err(HookError::UnexpectedResponse("read answered without data"));
        };
        if more.is_empty() {
            break;
        }
        data.extend_from_slice(&more);
        eof = end;
    }
    data.truncate(cap);
    Ok(data)
}

/// A placeholder fd for a remote directory.
pub(crate) fn dir_placeholder(
    path: &[u8],
    stat: Option<FileStat>,
    flags: c_int,
) -> Result<c_int, HookError> {
    let fd = sys::memfd(path, flags & libc::O_CLOEXEC != 0)?;
    register(
        fd,
        RemoteFile {
            handle: None,
            path: path.to_vec(),
            stat,
            writable: false,
            materialised: true,
            stdio: false,
            dir: Some(DirCursor::default()),
        },
    );
    Ok(fd)
}

/// A local call returned `fd`: if the table still has an entry for that
/// number (closed behind our back, e.g. by glibc internally), forget it.
#[inline]
pub fn forget_stale(fd: c_int) {
    if fd >= 0 && fdbits::get(fd) & (fdbits::FILE | fdbits::DIR) != 0 && fdbits::get(fd) != u8::MAX
    {
        let _ = super::on_close(fd);
    }
}

// ---------------------------------------------------------------------------
// writes

/// How a write hook writes.
pub enum WriteAt {
    /// At the file position (`write`, `writev`).
    Position,
    /// At an explicit offset (`pwrite`, `pwritev`).
    Offset(i64),
}

/// Runs the real write on the memfd (`real` returns its result), then sends
/// the bytes written (`gather(start, n)` gives the `n` bytes written at
/// `start`) to the target, pipelined.
pub fn write(
    fd: c_int,
    at: WriteAt,
    real: impl FnOnce() -> isize,
    gather: impl FnOnce(u64, usize) -> Result<Vec<u8>, HookError>,
) -> Result<Option<isize>, HookError> {
    let Some(handle) = writable_handle(fd) else {
        return Ok(None);
    };
    let written = real();
    if written <= 0 {
        return Ok(Some(fail_with_errno(written)));
    }
    let n = written as usize;
    let start = match at {
        WriteAt::Offset(off) if !sys::is_append(fd) => off as u64,
        _ => sys::end_of_write(fd, matches!(at, WriteAt::Position), n)?,
    };
    let data = gather(start, n)?;
    for (i, chunk) in data.chunks(WRITE_CHUNK).enumerate() {
        crate::client::pipeline(
            handle,
            Request::Write {
                handle,
                offset: Some(start + (i * WRITE_CHUNK) as u64),
                data: chunk.to_vec(),
            },
        )?;
    }
    Ok(Some(written))
}

/// The bytes a kernel-side copy (`sendfile`, `copy_file_range`) just put
/// in the memfd, read back for [`write()`]'s `gather`.
pub fn written_range(fd: c_int, start: u64, n: usize) -> Result<Vec<u8>, HookError> {
    sys::read_range(fd, start, n)
}

/// `ftruncate` on a writable remote file.
pub fn truncate(
    fd: c_int,
    len: i64,
    real: impl FnOnce() -> c_int,
) -> Result<Option<c_int>, HookError> {
    let Some(handle) = writable_handle(fd) else {
        return Ok(None);
    };
    let rc = real();
    if rc != 0 {
        return Ok(Some(fail_with_errno(rc as isize) as c_int));
    }
    crate::client::pipeline(
        handle,
        Request::Truncate {
            handle,
            len: len as u64,
        },
    )?;
    Ok(Some(0))
}

/// `fsync`/`fdatasync`: every write sent so far has reached the target's file.
pub fn sync(fd: c_int) -> Result<Option<c_int>, HookError> {
    let Some(handle) = writable_handle(fd) else {
        return Ok(None);
    };
    crate::client::flush(handle)?;
    match crate::client::remote(Request::Sync { handle })? {
        Response::Done => Ok(Some(0)),
        _ => Err(HookError::UnexpectedResponse("sync answered with data")),
    }
}

fn writable_handle(fd: c_int) -> Option<u64> {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return None;
    }
    with_table(|t| t.get(fd).filter(|f| f.writable).and_then(|f| f.handle))
}

/// Keeps the errno of a failed real call across our return.
fn fail_with_errno(rc: isize) -> isize {
    if rc < 0 {
        let e = errno();
        crate::error::set_errno(e);
    }
    rc
}

// ---------------------------------------------------------------------------
// stat, access, readlink

/// `stat`/`lstat`/`fstatat` of a path.
pub fn stat_path(dirfd: c_int, path: &CStr, follow: bool) -> Result<Option<FileStat>, HookError> {
    match route_at(dirfd, path, false)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote { path, .. } => match crate::client::remote(Request::Stat {
            path: path.as_bytes().to_vec(),
            follow,
        })? {
            Response::Stat(stat) => Ok(Some(stat)),
            _ => Err(HookError::UnexpectedResponse(
                "stat answered without a stat",
            )),
        },
    }
}

/// `fstat` of a remote fd: the remote stat with the memfd's current size.
pub fn stat_fd(fd: c_int) -> Result<Option<FileStat>, HookError> {
    if fdbits::get(fd) & (fdbits::FILE | fdbits::DIR) == 0 {
        return Ok(None);
    }
    let Some((path, stat, is_dir)) =
        with_table(|t| t.get(fd).map(|f| (f.path.clone(), f.stat, f.dir.is_some())))
    else {
        return Ok(None);
    };
    let mut stat = match stat {
        Some(stat) => stat,
        None => {
            let Response::Stat(stat) = crate::client::remote(Request::Stat { path, follow: true })?
            else {
                return Err(HookError::UnexpectedResponse(
                    "stat answered without a stat",
                ));
            };
            with_table(|t| {
                if let Some(f) = t.get_mut(fd) {
                    f.stat = Some(stat);
                }
            });
            stat
        }
    };
    if !is_dir {
        if let Some(size) = sys::size(fd) {
            stat.size = size;
            stat.blocks = size.div_ceil(512);
        }
    }
    Ok(Some(stat))
}

/// `fstatat`/`statx` with their flags: `AT_EMPTY_PATH` on an fd, or a path.
pub fn stat_at(dirfd: c_int, path: &CStr, flags: c_int) -> Result<Option<FileStat>, HookError> {
    if path.to_bytes().is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        return stat_fd(dirfd);
    }
    stat_path(dirfd, path, flags & libc::AT_SYMLINK_NOFOLLOW == 0)
}

/// `access`/`faccessat`.
pub fn access(dirfd: c_int, path: &CStr, mode: c_int) -> Result<Option<c_int>, HookError> {
    match route_at(dirfd, path, false)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote { path, .. } => {
            crate::client::remote(Request::Access {
                path: path.as_bytes().to_vec(),
                mode,
            })?;
            Ok(Some(0))
        }
    }
}

/// `readlink`/`readlinkat`: the target, truncated to `buf`, no NUL.
pub fn readlink(dirfd: c_int, path: &CStr, buf: &mut [u8]) -> Result<Option<isize>, HookError> {
    match route_at(dirfd, path, false)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote { path, .. } => match crate::client::remote(Request::ReadLink {
            path: path.as_bytes().to_vec(),
        })? {
            Response::Path(target) => {
                let n = target.len().min(buf.len());
                buf[..n].copy_from_slice(&target[..n]);
                Ok(Some(n as isize))
            }
            _ => Err(HookError::UnexpectedResponse(
                "readlink answered without a path",
            )),
        },
    }
}

// ---------------------------------------------------------------------------
// directory changes (write mode)

/// Routes a path that is about to be modified: `Some(path)` when the target
/// should do it.
fn route_change(dirfd: c_int, path: &CStr) -> Result<Option<Box<AbsPath>>, HookError> {
    match route_at(dirfd, path, true)? {
        Target::Local => Ok(None),
        Target::NotFound => Err(not_found()),
        Target::Remote {
            writable: false, ..
        } => Err(HookError::BadArgument(libc::EROFS)),
        Target::Remote { path, .. } => Ok(Some(path)),
    }
}

fn done(request: Request) -> Result<Option<c_int>, HookError> {
    crate::client::remote(request)?;
    Ok(Some(0))
}

pub fn mkdir(dirfd: c_int, path: &CStr, mode: u32) -> Result<Option<c_int>, HookError> {
    match route_change(dirfd, path)? {
        None => Ok(None),
        Some(path) => done(Request::Mkdir {
            path: path.as_bytes().to_vec(),
            mode,
        }),
    }
}

pub fn unlink(dirfd: c_int, path: &CStr, flags: c_int) -> Result<Option<c_int>, HookError> {
    let Some(path) = route_change(dirfd, path)? else {
        return Ok(None);
    };
    let path = path.as_bytes().to_vec();
    done(if flags & libc::AT_REMOVEDIR != 0 {
        Request::Rmdir { path }
    } else {
        Request::Unlink { path }
    })
}

/// `truncate(path)`: open for writing, truncate, close.
pub fn truncate_path(path: &CStr, len: i64) -> Result<Option<c_int>, HookError> {
    let Some(path) = route_change(libc::AT_FDCWD, path)? else {
        return Ok(None);
    };
    if len < 0 {
        return Err(HookError::BadArgument(libc::EINVAL));
    }
    let response = crate::client::remote(Request::Open {
        path: path.as_bytes().to_vec(),
        flags: OpenFlags {
            write: true,
            ..OpenFlags::default()
        },
        mode: 0,
        read_ahead: 0,
    })?;
    let Response::Opened { handle, .. } = response else {
        return Err(HookError::UnexpectedResponse(
            "open answered without a handle",
        ));
    };
    let truncated = crate::client::remote(Request::Truncate {
        handle,
        len: len as u64,
    });
    let _ = crate::client::close_handle(handle);
    truncated.map(|_| Some(0))
}

/// `rename`: both local, both remote, or `EXDEV` (different filesystems).
pub fn rename(
    olddirfd: c_int,
    old: &CStr,
    newdirfd: c_int,
    new: &CStr,
) -> Result<Option<c_int>, HookError> {
    let from = route_change(olddirfd, old)?;
    let to = route_change(newdirfd, new)?;
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => done(Request::Rename {
            from: from.as_bytes().to_vec(),
            to: to.as_bytes().to_vec(),
        }),
        _ => Err(HookError::BadArgument(libc::EXDEV)),
    }
}

/// `Request::Open` on the agent: handle, stat, the first bytes, and whether
/// they are all of the file.
pub(crate) fn remote_open(
    path: &[u8],
    flags: OpenFlags,
    mode: u32,
    read_ahead: u32,
) -> Result<(Handle, FileStat, Vec<u8>, bool), HookError> {
    match crate::client::remote(Request::Open {
        path: path.to_vec(),
        flags,
        mode,
        read_ahead,
    })? {
        Response::Opened {
            handle,
            stat,
            data,
            eof,
        } => Ok((handle, stat, data, eof)),
        _ => Err(HookError::UnexpectedResponse(
            "open answered without a handle",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_intent() {
        assert!(!wants_write(libc::O_RDONLY | libc::O_CLOEXEC));
        assert!(wants_write(libc::O_WRONLY));
        assert!(wants_write(libc::O_RDWR));
        assert!(wants_write(libc::O_RDONLY | libc::O_CREAT));
    }

    #[test]
    fn protocol_flags() {
        let f = OpenFlags::from_open(libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, true, false);
        assert!(!f.read && f.write && f.append && f.create && !f.truncate);
        let f = OpenFlags::from_open(libc::O_WRONLY | libc::O_CREAT, true, true);
        assert!(f.read && f.write);
        // Read-only routing never asks the target to create or truncate.
        let f = OpenFlags::from_open(libc::O_RDONLY | libc::O_DIRECTORY, false, true);
        assert!(f.read && !f.write && f.directory && !f.create);
    }

    #[test]
    fn memfd_gets_the_requested_access_mode() {
        let fd = sys::memfd(b"/remote/file.txt", true).unwrap();
        sys::pwrite_all(fd, b"hello", 0).unwrap();
        sys::set_access(fd, libc::O_RDONLY | libc::O_CLOEXEC).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: plain calls on our own fd.
        unsafe {
            assert_eq!(libc::write(fd, b"x".as_ptr().cast(), 1), -1);
            assert_eq!(errno(), libc::EBADF);
            assert_eq!(libc::read(fd, buf.as_mut_ptr().cast(), 8), 5);
            assert_eq!(
                libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC,
                libc::FD_CLOEXEC
            );
        }
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(sys::read_whole(fd).unwrap(), b"hello");
        sys::close(fd);
    }

    #[test]
    fn write_only_memfd_appends() {
        let fd = sys::memfd(b"/x", false).unwrap();
        sys::ftruncate(fd, 3).unwrap();
        sys::set_access(fd, libc::O_WRONLY | libc::O_APPEND).unwrap();
        // SAFETY: plain calls on our own fd.
        unsafe {
            assert_eq!(libc::write(fd, b"ab".as_ptr().cast(), 2), 2);
            assert_eq!(libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
        }
        assert!(sys::is_append(fd));
        assert_eq!(sys::end_of_write(fd, true, 2).unwrap(), 3);
        assert_eq!(sys::read_whole(fd).unwrap(), b"\0\0\0ab");
        sys::close(fd);
    }
}
