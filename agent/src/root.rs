//! Path resolution confined to the target's root directory with `openat2`.
//!
//! Every path a client sends is resolved with `RESOLVE_IN_ROOT`, so `..`,
//! absolute symlinks and absolute paths all stay inside the target's root,
//! and with `RESOLVE_NO_MAGICLINKS`, so `/proc/self/root`-style links cannot
//! jump out of it either. glibc 2.36 has no `openat2` wrapper, hence the raw
//! syscall.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The `resolve` flags used for every lookup below the target's root.
pub const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `path` below `root` with `openat2(flags, mode, RESOLVE)`;
/// `O_CLOEXEC` is always added.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    path: &[u8],
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    let cpath = c_path(path)?;
    let flags = flags | libc::O_CLOEXEC;
    // openat2 refuses a mode unless the call may create a file.
    let mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        u64::from(mode & 0o7777)
    } else {
        0
    };
    // SAFETY: open_how is plain data; zeroed is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.mode = mode;
    how.resolve = RESOLVE;
    loop {
        // SAFETY: every pointer is valid for the duration of the call and the
        // size matches the struct passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                cpath.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel returned a fresh descriptor that we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN comes back when a concurrent rename raced the lookup.
        if !matches!(err.raw_os_error(), Some(libc::EINTR) | Some(libc::EAGAIN)) {
            return Err(err);
        }
    }
}

/// Opens the directory that holds the last component of `path` (an
/// `O_PATH` descriptor usable with the `*at` calls) and returns it with that
/// component.
///
/// A final component of `.` or `..`, or a path naming the root itself, is
/// refused with `EINVAL`: the `*at` calls would otherwise act on a directory
/// other than the one the path seems to name.
pub fn open_parent(root: BorrowedFd<'_>, path: &[u8]) -> io::Result<(OwnedFd, CString)> {
    let trimmed = trim_trailing_slashes(path);
    if trimmed.is_empty() {
        return Err(if path.is_empty() {
            io::Error::from_raw_os_error(libc::ENOENT)
        } else {
            io::Error::from_raw_os_error(libc::EINVAL)
        });
    }
    let (parent, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (if i == 0 { b"/" } else { &trimmed[..i] }, &trimmed[i + 1..]),
        None => (b".", trimmed),
    };
    if name == b"." || name == b".." {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let dir = open_in_root(root, parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
    Ok((dir, c_path(name)?))
}

/// A path as a C string: a NUL inside is `EINVAL`, an empty path `ENOENT`.
pub fn c_path(path: &[u8]) -> io::Result<CString> {
    if path.is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 0 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn open_dir(path: &std::path::Path) -> OwnedFd {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0);
        // SAFETY: fresh descriptor.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn errno(r: io::Result<impl Sized>) -> i32 {
        r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
    }

    #[test]
    fn paths_cannot_leave_the_root() {
        let outer = tempfile::tempdir().unwrap();
        std::fs::write(outer.path().join("secret"), b"x").unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("inside"), b"in").unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("rel")).unwrap();
        std::os::unix::fs::symlink("/inside", root.join("abs_in")).unwrap();
        let fd = open_dir(&root);
        let root = fd.as_fd();

        assert!(open_in_root(root, b"/inside", libc::O_RDONLY, 0).is_ok());
        assert!(open_in_root(root, b"inside", libc::O_RDONLY, 0).is_ok());
        // `..` above the root stays at the root.
        assert!(open_in_root(root, b"/../../inside", libc::O_RDONLY, 0).is_ok());
        assert_eq!(
            errno(open_in_root(root, b"/../secret", libc::O_RDONLY, 0)),
            libc::ENOENT
        );
        assert_eq!(
            errno(open_in_root(root, b"/abs", libc::O_RDONLY, 0)),
            libc::ENOENT
        );
        assert_eq!(
            errno(open_in_root(root, b"/rel", libc::O_RDONLY, 0)),
            libc::ENOENT
        );
        // An absolute symlink is resolved against the root.
        assert!(open_in_root(root, b"/abs_in", libc::O_RDONLY, 0).is_ok());
        let full = outer.path().join("secret");
        let full = full.as_os_str().as_encoded_bytes();
        assert_eq!(
            errno(open_in_root(root, full, libc::O_RDONLY, 0)),
            libc::ENOENT
        );
        assert_eq!(
            errno(open_in_root(root, b"/in\0side", libc::O_RDONLY, 0)),
            libc::EINVAL
        );
        assert_eq!(
            errno(open_in_root(root, b"", libc::O_RDONLY, 0)),
            libc::ENOENT
        );
    }

    #[test]
    fn parent_split() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let fd = open_dir(dir.path());
        let (_, name) = open_parent(fd.as_fd(), b"/a/b/").unwrap();
        assert_eq!(name.as_bytes(), b"b");
        let (_, name) = open_parent(fd.as_fd(), b"top").unwrap();
        assert_eq!(name.as_bytes(), b"top");
        assert_eq!(errno(open_parent(fd.as_fd(), b"/a/..")), libc::EINVAL);
        assert_eq!(errno(open_parent(fd.as_fd(), b"/")), libc::EINVAL);
        assert_eq!(errno(open_parent(fd.as_fd(), b"/nope/x")), libc::ENOENT);
    }
}
