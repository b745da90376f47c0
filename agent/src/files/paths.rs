//! Blocking operations on paths below the target's root: stat, access,
//! readlink, readdir, and the directory changes made with the `*at` calls on
//! the parent directory (opened with `openat2`), so the last component is
//! never resolved outside the root either.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use mirrord_protocol::{DirEntry, FileStat};

use super::{cvt, stat_fd};
use crate::root::{open_in_root, open_parent};

/// `stat` (`follow`) or `lstat` of a path.
pub fn stat(root: BorrowedFd<'_>, path: &[u8], follow: bool) -> io::Result<FileStat> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let fd = open_in_root(root, path, libc::O_PATH | nofollow, 0)?;
    stat_fd(
        fd.as_raw_fd(),
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
    )
}

/// `access(2)`: checks `mode` on the file the path names (symlinks followed).
pub fn access(root: BorrowedFd<'_>, path: &[u8], mode: i32) -> io::Result<()> {
    let fd = open_in_root(root, path, libc::O_PATH, 0)?;
    // SAFETY: valid descriptor and a static empty C string.
    let r = unsafe {
        libc::syscall(
            libc::SYS_faccessat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode,
            libc::AT_EMPTY_PATH,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The target of a symlink; `EINVAL` when the path is not one.
pub fn readlink(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<Vec<u8>> {
    let fd = open_in_root(root, path, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    let st = stat_fd(
        fd.as_raw_fd(),
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
    )?;
    if st.mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Every entry of a directory but `.` and `..`.
pub fn read_dir(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<Vec<DirEntry>> {
    let fd = open_in_root(root, path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` is an open directory descriptor; fdopendir takes it over.
    let dir = unsafe { libc::fdopendir(raw) };
    if dir.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still ours to close.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(err);
    }
    let mut entries = Vec::new();
    let result = loop {
        // SAFETY: errno is thread-local; resetting it tells end from error.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dir` is a live DIR stream.
        let ent = unsafe { libc::readdir64(dir) };
        if ent.is_null() {
            let err = io::Error::last_os_error();
            break if err.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(err)
            };
        }
        // SAFETY: readdir64 returned a valid entry with a NUL-terminated name.
        let (name, ino, kind) = unsafe {
            let e = &*ent;
            (
                CStr::from_ptr(e.d_name.as_ptr()).to_bytes().to_vec(),
                e.d_ino,
                e.d_type,
            )
        };
        if name != b"." && name != b".." {
            entries.push(DirEntry { name, ino, kind });
        }
    };
    // SAFETY: closes the stream and its descriptor exactly once.
    unsafe { libc::closedir(dir) };
    result.map(|()| entries)
}

pub fn mkdir(root: BorrowedFd<'_>, path: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = open_parent(root, path).map_err(|e| {
        // `mkdir /` names an existing directory.
        if e.raw_os_error() == Some(libc::EINVAL) && path.iter().all(|&b| b == b'/') {
            io::Error::from_raw_os_error(libc::EEXIST)
        } else {
            e
        }
    })?;
    // SAFETY: valid descriptor and C string.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode & 0o7777) })
}

pub fn unlink(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<()> {
    let (dir, name) = open_parent(root, path)?;
    // SAFETY: valid descriptor and C string.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
}

pub fn rmdir(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<()> {
    let (dir, name) = open_parent(root, path)?;
    // SAFETY: valid descriptor and C string.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
}

pub fn rename(root: BorrowedFd<'_>, from: &[u8], to: &[u8]) -> io::Result<()> {
    let (from_dir, from_name) = open_parent(root, from)?;
    let (to_dir, to_name) = open_parent(root, to)?;
    // SAFETY: valid descriptors and C strings.
    cvt(unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
        )
    })
}
