//! File syscalls stopped by the filter: `open`/`openat`/`openat2`, the
//! `stat` family, `access`/`faccessat*`, `readlink*`. The route comes from
//! the same [`FsPolicy`](mirrord_config::policy::FsPolicy) the layer uses;
//! a remote file is read whole into a memfd that becomes the call's fd.

use std::io::{Seek, SeekFrom, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use mirrord_protocol::{OpenFlags, Request, Response, CLOSED_HANDLE, MAX_READ_LEN};
use tracing::{debug, warn};

use super::memory;
use super::notify::{Notification, Reply};
use super::stat;
use super::supervisor::{Outcome, Supervisor};
use mirrord_config::policy::FileRoute;

/// Bytes the agent sends with its `Open` answer (most files need no more).
const READ_AHEAD: u32 = 64 * 1024;

/// Where a stat call wants its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatOut {
    Stat(u64),
    Statx(u64),
}

/// Reads the path argument and routes it; `Err` is the outcome when the
/// call is not ours (local, or unreadable: the kernel reports that).
fn route(
    sup: &Supervisor,
    n: &Notification,
    dirfd: i32,
    path_addr: u64,
    write: bool,
) -> Result<Vec<u8>, Outcome> {
    let pid = n.pid;
    let path = memory::read_cstr(pid, path_addr).map_err(|_| Outcome::Reply(Reply::Continue))?;
    if path.is_empty() {
        // `AT_EMPTY_PATH` on an fd, or ENOENT: the kernel's business.
        return Err(Outcome::Reply(Reply::Continue));
    }
    let abs = memory::absolute(pid, dirfd, &path).map_err(|_| Outcome::Reply(Reply::Continue))?;
    let abs = match sup.fdlinks.resolve(pid, &abs, &sup.listings) {
        Some(resolved) => resolved.path,
        None => sup.listings.to_remote(abs),
    };
    if !sup.listener.id_valid(n.id) {
        return Err(Outcome::Gone);
    }
    match sup.policy.fs.route(&abs, write) {
        FileRoute::Local => Err(Outcome::Reply(Reply::Continue)),
        FileRoute::NotFound => Err(Outcome::Reply(Reply::Errno(libc::ENOENT))),
        FileRoute::Remote { writable: false } if write => {
            Err(Outcome::Reply(Reply::Errno(libc::EROFS)))
        }
        FileRoute::Remote { .. } => Ok(abs),
    }
}

/// Whether the path call runs locally as made (the policy keeps the path
/// local, or the path cannot be read: the kernel reports that).
pub fn is_local(sup: &Supervisor, n: &Notification, dirfd: i32, path: u64, write: bool) -> bool {
    matches!(
        route(sup, n, dirfd, path, write),
        Err(Outcome::Reply(Reply::Continue))
    )
}

/// Whether `open(2)` flags may write.
pub fn wants_write(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
}

/// `open`, `openat`, `openat2` (with the flags and mode of its
/// `open_how`). A file opened for reading becomes a read-only memfd with
/// its content; one opened for writing a memfd written back to the target
/// when the program closes it ([`super::writeback`]).
pub async fn open(
    sup: &Supervisor,
    n: &Notification,
    dirfd: i32,
    path: u64,
    flags: i32,
    mode: u32,
) -> Outcome {
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        return Outcome::Reply(Reply::Continue);
    }
    let write = wants_write(flags);
    let abs = match route(sup, n, dirfd, path, write) {
        Ok(abs) => abs,
        Err(outcome) => return outcome,
    };
    sup.writebacks.settle(&abs, &sup.agent).await;
    debug!(path = %String::from_utf8_lossy(&abs), write, "open on the target");
    let request = Request::Open {
        path: abs.clone(),
        // A file written back whole needs its content, and is written at
        // offsets: no `O_APPEND` in the target (the program's fd has it).
        flags: OpenFlags::from_open(flags & !libc::O_APPEND, write, true),
        mode,
        read_ahead: READ_AHEAD,
    };
    let (handle, stat, mut data, mut eof) = match sup.agent.request(request).await {
        Ok(Response::Opened {
            handle,
            stat,
            data,
            eof,
        }) => (handle, stat, data, eof),
        Ok(other) => return unexpected(&other),
        Err(e) => return Outcome::Reply(Reply::Errno(e.errno)),
    };
    let close = |sup: &Supervisor| {
        if handle != CLOSED_HANDLE {
            drop(sup.agent.request(Request::Close { handle }));
        }
    };
    if stat.mode & libc::S_IFMT == libc::S_IFDIR {
        close(sup);
        if write {
            return Outcome::Reply(Reply::Errno(libc::EISDIR));
        }
        return open_dir(sup, n, abs, flags).await;
    }
    while !eof {
        let read = Request::Read {
            handle,
            offset: data.len() as u64,
            len: MAX_READ_LEN,
        };
        match sup.agent.request(read).await {
            Ok(Response::Data {
                data: more,
                eof: end,
            }) if !more.is_empty() => {
                data.extend_from_slice(&more);
                eof = end;
            }
            Ok(Response::Data { .. }) => eof = true,
            Ok(other) => {
                close(sup);
                return unexpected(&other);
            }
            Err(e) => {
                close(sup);
                return Outcome::Reply(Reply::Errno(e.errno));
            }
        }
    }
    let errno =
        |e: std::io::Error| Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EIO)));
    let memfd = match memfd_with(&abs, &data) {
        Ok(memfd) => memfd,
        Err(e) => {
            close(sup);
            return errno(e);
        }
    };
    // The program's own open file description of the memfd, so that its
    // last close is the one the kernel reports.
    let access = if write {
        flags & (libc::O_ACCMODE | libc::O_APPEND)
    } else {
        libc::O_RDONLY
    };
    let theirs = match reopen(&memfd, access) {
        Ok(fd) => fd,
        Err(e) => {
            close(sup);
            return errno(e);
        }
    };
    sup.fdlinks.installed(theirs.as_fd(), &abs);
    let tracked = if write {
        match sup.writebacks.track(abs, handle, memfd) {
            Ok(wd) => Some(wd),
            Err(e) => {
                close(sup);
                return errno(e);
            }
        }
    } else {
        close(sup);
        None
    };
    let outcome = sup.install_fd(n, theirs.as_fd(), flags & libc::O_CLOEXEC != 0);
    if let (Outcome::Gone, Some(wd)) = (&outcome, tracked) {
        // The program never got it: nothing to write back.
        sup.writebacks.forget(wd, &sup.agent);
    }
    outcome
}

/// A remote directory: its listing laid out locally, opened.
async fn open_dir(sup: &Supervisor, n: &Notification, abs: Vec<u8>, flags: i32) -> Outcome {
    let entries = match sup
        .agent
        .request(Request::ReadDir { path: abs.clone() })
        .await
    {
        Ok(Response::DirEntries(entries)) => entries,
        Ok(other) => return unexpected(&other),
        Err(e) => return Outcome::Reply(Reply::Errno(e.errno)),
    };
    let fd = match sup.listings.open(&abs, &entries) {
        Ok(fd) => fd,
        Err(e) => return Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EIO))),
    };
    sup.install_fd(n, fd.as_fd(), flags & libc::O_CLOEXEC != 0)
}

/// A memfd holding `data`, named after the file (as the layer's).
fn memfd_with(path: &[u8], data: &[u8]) -> std::io::Result<std::fs::File> {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let mut name = b"mirrord:".to_vec();
    name.extend(base.iter().take(200).filter(|b| **b != 0));
    name.push(0);
    // SAFETY: `name` is NUL-terminated.
    let fd = unsafe { libc::memfd_create(name.as_ptr().cast(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that we own.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(data)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// A new open file description of `memfd` (at offset 0) with `flags`
/// (`O_RDONLY`: the program's fd behaves like a file opened read-only).
fn reopen(memfd: &std::fs::File, flags: i32) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let acc = flags & libc::O_ACCMODE;
    let file = std::fs::OpenOptions::new()
        .read(acc != libc::O_WRONLY)
        .write(acc != libc::O_RDONLY)
        .custom_flags(flags & libc::O_APPEND)
        .open(format!("/proc/self/fd/{}", memfd.as_raw_fd()))?;
    Ok(OwnedFd::from(file))
}

/// `stat`, `lstat`, `newfstatat`, `statx`.
pub async fn stat(
    sup: &Supervisor,
    n: &Notification,
    dirfd: i32,
    path: u64,
    follow: bool,
    out: StatOut,
) -> Outcome {
    let abs = match route(sup, n, dirfd, path, false) {
        Ok(abs) => abs,
        Err(outcome) => return outcome,
    };
    sup.writebacks.settle(&abs, &sup.agent).await;
    match sup.agent.request(Request::Stat { path: abs, follow }).await {
        Ok(Response::Stat(s)) => {
            let (addr, bytes) = match out {
                StatOut::Stat(addr) => (addr, stat::stat_bytes(&s)),
                StatOut::Statx(addr) => (addr, stat::statx_bytes(&s)),
            };
            written(memory::write(n.pid, addr, &bytes), 0)
        }
        Ok(other) => unexpected(&other),
        Err(e) => Outcome::Reply(Reply::Errno(e.errno)),
    }
}

/// `access`, `faccessat`, `faccessat2`.
pub async fn access(
    sup: &Supervisor,
    n: &Notification,
    dirfd: i32,
    path: u64,
    mode: i32,
) -> Outcome {
    let abs = match route(sup, n, dirfd, path, false) {
        Ok(abs) => abs,
        Err(outcome) => return outcome,
    };
    sup.writebacks.settle(&abs, &sup.agent).await;
    match sup.agent.request(Request::Access { path: abs, mode }).await {
        Ok(Response::Done) => Outcome::Reply(Reply::Value(0)),
        Ok(other) => unexpected(&other),
        Err(e) => Outcome::Reply(Reply::Errno(e.errno)),
    }
}

/// `readlink`, `readlinkat`.
pub async fn readlink(
    sup: &Supervisor,
    n: &Notification,
    dirfd: i32,
    path: u64,
    buf: u64,
    size: i64,
) -> Outcome {
    if size <= 0 {
        return Outcome::Reply(Reply::Errno(libc::EINVAL));
    }
    if let Some(remote) = fd_link(sup, n, dirfd, path) {
        // The link of a remote file the program has open: its path.
        let len = remote.len().min(size as usize);
        return written(memory::write(n.pid, buf, &remote[..len]), len as i64);
    }
    let abs = match route(sup, n, dirfd, path, false) {
        Ok(abs) => abs,
        Err(outcome) => return outcome,
    };
    sup.writebacks.settle(&abs, &sup.agent).await;
    match sup.agent.request(Request::ReadLink { path: abs }).await {
        Ok(Response::Path(target)) => {
            let len = target.len().min(size as usize);
            written(memory::write(n.pid, buf, &target[..len]), len as i64)
        }
        Ok(other) => unexpected(&other),
        Err(e) => Outcome::Reply(Reply::Errno(e.errno)),
    }
}

/// The remote path an fd link (`/proc/self/fd/N`, `/dev/fd/N`) of a file
/// or directory the supervisor installed names, when the call's path is
/// such a link itself.
fn fd_link(sup: &Supervisor, n: &Notification, dirfd: i32, path: u64) -> Option<Vec<u8>> {
    let path = memory::read_cstr(n.pid, path).ok()?;
    let abs = memory::absolute(n.pid, dirfd, &path).ok()?;
    let resolved = sup.fdlinks.resolve(n.pid, &abs, &sup.listings)?;
    (resolved.link && sup.listener.id_valid(n.id)).then_some(resolved.path)
}

fn written(result: std::io::Result<()>, value: i64) -> Outcome {
    match result {
        Ok(()) => Outcome::Reply(Reply::Value(value)),
        Err(e) => Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EFAULT))),
    }
}

fn unexpected(response: &Response) -> Outcome {
    warn!(?response, "unexpected answer from the agent");
    Outcome::Reply(Reply::Errno(libc::EIO))
}
