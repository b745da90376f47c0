//! Blocking file operations below the target's root: opening files and the
//! operations on an open file here, operations on paths in `paths.rs`; each
//! returns the protocol's answer or the real errno.
//!
//! Everything here blocks; callers run it off the async threads (see
//! `handles.rs`). Path lookups all go through [`crate::root`].

mod paths;

pub use paths::{access, mkdir, read_dir, readlink, rename, rmdir, stat, unlink};

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use mirrord_protocol::{FileStat, OpenFlags, Timestamp, MAX_READ_LEN};

use crate::root::open_in_root;

/// An opened file with what `Open` answers besides the handle.
pub struct Opened {
    pub file: File,
    pub stat: FileStat,
    pub data: Vec<u8>,
    pub eof: bool,
}

/// Opens `path` with the client's flags and reads up to `read_ahead` bytes
/// from offset 0 when the file is a readable regular file.
pub fn open(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: OpenFlags,
    mode: u32,
    read_ahead: u32,
) -> io::Result<Opened> {
    // O_NONBLOCK: opening a FIFO must not wait for its other end (the
    // open may run inline on an async worker); it is cleared again for
    // anything but a regular file, where it means nothing.
    let fd = open_in_root(root, path, open_flags(flags) | libc::O_NONBLOCK, mode)?;
    let file = File::from(fd);
    let stat = fstat(&file)?;
    if stat.mode & libc::S_IFMT != libc::S_IFREG {
        clear_nonblock(&file)?;
    }
    let (data, eof) = if flags.read || !flags.write {
        if read_ahead > 0 && stat.mode & libc::S_IFMT == libc::S_IFREG {
            read_at(&file, 0, read_ahead, Some(stat.size))?
        } else {
            (Vec::new(), false)
        }
    } else {
        (Vec::new(), false)
    };
    Ok(Opened {
        file,
        stat,
        data,
        eof,
    })
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: plain fcntl calls on an fd we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The `open(2)` flags for the protocol's [`OpenFlags`].
pub fn open_flags(f: OpenFlags) -> i32 {
    let mut flags = match (f.read, f.write) {
        (_, false) => libc::O_RDONLY,
        (false, true) => libc::O_WRONLY,
        (true, true) => libc::O_RDWR,
    };
    for (set, bit) in [
        (f.append, libc::O_APPEND),
        (f.create, libc::O_CREAT),
        (f.truncate, libc::O_TRUNC),
        (f.exclusive, libc::O_EXCL),
        (f.directory, libc::O_DIRECTORY),
        (f.nofollow, libc::O_NOFOLLOW),
    ] {
        if set {
            flags |= bit;
        }
    }
    flags | libc::O_NOCTTY
}

/// Reads up to `len` (capped at [`MAX_READ_LEN`]) bytes at `offset`; `eof`
/// when the file ended before `len` bytes. Files that cannot seek (pipes,
/// character devices) get one plain `read`.
///
/// `size` is the file's size when the caller has just read it (`fstat`
/// of a regular file). Then the buffer is sized for what the file holds
/// (plus a byte, to see a file that has grown since), and a read that
/// stops exactly at that size is the end: no second read to confirm it.
/// A size of 0 says nothing (`/proc` files report it and hold more).
pub fn read_at(
    file: &File,
    offset: u64,
    len: u32,
    size: Option<u64>,
) -> io::Result<(Vec<u8>, bool)> {
    let len = len.min(MAX_READ_LEN) as usize;
    let held = size
        .filter(|&size| size > 0)
        .map(|size| usize::try_from(size.saturating_sub(offset)).unwrap_or(usize::MAX));
    let mut buf = Vec::with_capacity(held.map_or(len, |held| len.min(held.saturating_add(1))));
    while buf.len() < len {
        if buf.len() == buf.capacity() {
            buf.reserve_exact(len - buf.len());
        }
        let at = offset + buf.len() as u64;
        match read_into(file, &mut buf, len, Some(at)) {
            Ok(0) => return Ok((buf, true)),
            Ok(_) if held == Some(buf.len()) => return Ok((buf, true)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) && buf.is_empty() => {
                let n = read_into(file, &mut buf, len, None)?;
                return Ok((buf, n == 0));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((buf, false))
}

/// One `pread` at `offset` (a plain `read` for `None`) into `buf`'s spare
/// capacity, never past `len` bytes in all: the bytes are appended, their
/// count returned. Nothing is zeroed first.
fn read_into(file: &File, buf: &mut Vec<u8>, len: usize, offset: Option<u64>) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let room = (len - buf.len()).min(buf.capacity() - buf.len());
    let spare = buf.spare_capacity_mut().as_mut_ptr().cast();
    // SAFETY: the kernel writes at most `room` bytes into the spare
    // capacity, which has at least that many.
    let n = unsafe {
        match offset {
            Some(offset) => libc::pread64(file.as_raw_fd(), spare, room, offset as libc::off64_t),
            None => libc::read(file.as_raw_fd(), spare, room),
        }
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel wrote these `n` bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Writes all of `data` at `offset`, or at the end of the file when `None`
/// (`RWF_APPEND`, atomic even without `O_APPEND`).
pub fn write(file: &File, offset: Option<u64>, data: &[u8]) -> io::Result<u64> {
    let mut done = 0usize;
    while done < data.len() {
        let rest = &data[done..];
        let n = match offset {
            Some(off) => file.write_at(rest, off + done as u64),
            None => {
                let iov = libc::iovec {
                    iov_base: rest.as_ptr() as *mut libc::c_void,
                    iov_len: rest.len(),
                };
                // SAFETY: one valid iovec over a live buffer.
                let r = unsafe { libc::pwritev2(file.as_raw_fd(), &iov, 1, -1, libc::RWF_APPEND) };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            }
        };
        match n {
            Ok(0) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if done > 0 => {
                tracing::debug!(error = %e, done, "short write");
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done as u64)
}

pub fn truncate(file: &File, len: u64) -> io::Result<()> {
    file.set_len(len)
}

pub fn sync(file: &File) -> io::Result<()> {
    file.sync_all()
}

pub fn fstat(file: &File) -> io::Result<FileStat> {
    stat_fd(file.as_raw_fd(), libc::AT_EMPTY_PATH)
}

pub(crate) fn cvt(r: i32) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(crate) fn stat_fd(fd: i32, flags: i32) -> io::Result<FileStat> {
    // SAFETY: zeroed stat is valid plain data.
    let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, static empty path, and a live out pointer.
    let r = unsafe { libc::fstatat64(fd, c"".as_ptr(), &mut st, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(to_file_stat(&st))
}

fn to_file_stat(st: &libc::stat64) -> FileStat {
    let ts = |secs: i64, nanos: i64| Timestamp {
        secs,
        nanos: nanos.clamp(0, 999_999_999) as u32,
    };
    FileStat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size.max(0) as u64,
        blksize: st.st_blksize.max(0) as u64,
        blocks: st.st_blocks.max(0) as u64,
        atime: ts(st.st_atime, st.st_atime_nsec),
        mtime: ts(st.st_mtime, st.st_mtime_nsec),
        ctime: ts(st.st_ctime, st.st_ctime_nsec),
    }
}

#[cfg(test)]
mod tests;
