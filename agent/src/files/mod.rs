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
            read_at(&file, 0, read_ahead)?
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
pub fn read_at(file: &File, offset: u64, len: u32) -> io::Result<(Vec<u8>, bool)> {
    let len = len.min(MAX_READ_LEN) as usize;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => {
                buf.truncate(got);
                return Ok((buf, true));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) && got == 0 => {
                let n = io::Read::read(&mut &*file, &mut buf)?;
                buf.truncate(n);
                return Ok((buf, n == 0));
            }
            Err(e) => return Err(e),
        }
    }
    Ok((buf, false))
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
