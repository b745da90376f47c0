//! Blocking file operations below the target's root: one function per
//! request, each returning the protocol's answer or the real errno.
//!
//! Everything here blocks; callers run it off the async threads (see
//! `handles.rs`). Path lookups all go through [`crate::root`].

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

use mirrord_protocol::{DirEntry, FileStat, OpenFlags, Timestamp, MAX_READ_LEN};

use crate::root::{open_in_root, open_parent};

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
    let fd = open_in_root(root, path, open_flags(flags), mode)?;
    let file = File::from(fd);
    let stat = fstat(&file)?;
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

fn cvt(r: i32) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn stat_fd(fd: i32, flags: i32) -> io::Result<FileStat> {
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
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsFd;

    struct Root {
        dir: tempfile::TempDir,
        fd: OwnedFd,
    }

    fn root() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let c = CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid C string.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        assert!(fd >= 0);
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Root { dir, fd }
    }

    fn errno<T>(r: io::Result<T>) -> i32 {
        r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
    }

    fn rw_create() -> OpenFlags {
        OpenFlags {
            read: true,
            write: true,
            create: true,
            ..Default::default()
        }
    }

    #[test]
    fn open_read_ahead_write_append_truncate() {
        let r = root();
        std::fs::write(r.dir.path().join("f"), b"hello").unwrap();
        let o = open(
            r.fd.as_fd(),
            b"/f",
            OpenFlags {
                read: true,
                ..Default::default()
            },
            0,
            64,
        )
        .unwrap();
        assert_eq!(
            (o.data.as_slice(), o.eof, o.stat.size),
            (&b"hello"[..], true, 5)
        );
        let o = open(
            r.fd.as_fd(),
            b"/f",
            OpenFlags {
                read: true,
                ..Default::default()
            },
            0,
            3,
        )
        .unwrap();
        assert_eq!((o.data.as_slice(), o.eof), (&b"hel"[..], false));

        let o = open(r.fd.as_fd(), b"/g", rw_create(), 0o600, 0).unwrap();
        assert_eq!(o.stat.mode & 0o777, 0o600);
        assert_eq!(write(&o.file, Some(0), b"abcdef").unwrap(), 6);
        assert_eq!(write(&o.file, None, b"XY").unwrap(), 2);
        assert_eq!(write(&o.file, Some(1), b"Z").unwrap(), 1);
        assert_eq!(
            read_at(&o.file, 0, 100).unwrap(),
            (b"aZcdefXY".to_vec(), true)
        );
        assert_eq!(read_at(&o.file, 2, 2).unwrap(), (b"cd".to_vec(), false));
        truncate(&o.file, 3).unwrap();
        sync(&o.file).unwrap();
        assert_eq!(fstat(&o.file).unwrap().size, 3);
    }

    #[test]
    fn errors_carry_the_real_errno() {
        let r = root();
        std::fs::create_dir(r.dir.path().join("d")).unwrap();
        std::fs::write(r.dir.path().join("d/x"), b"").unwrap();
        let ro = OpenFlags {
            read: true,
            ..Default::default()
        };
        let w = OpenFlags {
            write: true,
            ..Default::default()
        };
        assert_eq!(
            errno(open(r.fd.as_fd(), b"/missing", ro, 0, 0)),
            libc::ENOENT
        );
        assert_eq!(errno(open(r.fd.as_fd(), b"/d", w, 0, 0)), libc::EISDIR);
        std::os::unix::fs::symlink("/d", r.dir.path().join("l")).unwrap();
        let nofollow = OpenFlags {
            read: true,
            nofollow: true,
            ..Default::default()
        };
        assert_eq!(
            errno(open(r.fd.as_fd(), b"/l", nofollow, 0, 0)),
            libc::ELOOP
        );
        let excl = OpenFlags {
            exclusive: true,
            ..rw_create()
        };
        assert_eq!(
            errno(open(r.fd.as_fd(), b"/d/x", excl, 0o644, 0)),
            libc::EEXIST
        );
        assert_eq!(errno(rmdir(r.fd.as_fd(), b"/d")), libc::ENOTEMPTY);
        assert_eq!(errno(unlink(r.fd.as_fd(), b"/d")), libc::EISDIR);
        assert_eq!(errno(mkdir(r.fd.as_fd(), b"/", 0o755)), libc::EEXIST);
        assert_eq!(errno(readlink(r.fd.as_fd(), b"/d")), libc::EINVAL);
    }

    #[test]
    fn stat_access_readlink_dirs_rename() {
        let r = root();
        mkdir(r.fd.as_fd(), b"/d", 0o755).unwrap();
        std::fs::write(r.dir.path().join("d/a"), b"12").unwrap();
        std::os::unix::fs::symlink("/d/a", r.dir.path().join("link")).unwrap();
        assert_eq!(stat(r.fd.as_fd(), b"/link", true).unwrap().size, 2);
        let l = stat(r.fd.as_fd(), b"/link", false).unwrap();
        assert_eq!(l.mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(readlink(r.fd.as_fd(), b"/link").unwrap(), b"/d/a");
        access(r.fd.as_fd(), b"/link", libc::R_OK).unwrap();
        assert_eq!(
            errno(access(r.fd.as_fd(), b"/d/a", libc::X_OK)),
            libc::EACCES
        );
        rename(r.fd.as_fd(), b"/d/a", b"/d/b").unwrap();
        let mut names: Vec<_> = read_dir(r.fd.as_fd(), b"/d")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        assert_eq!(names, vec![b"b".to_vec()]);
        unlink(r.fd.as_fd(), b"/d/b").unwrap();
        rmdir(r.fd.as_fd(), b"/d/").unwrap();
        assert_eq!(errno(stat(r.fd.as_fd(), b"/d", true)), libc::ENOENT);
    }
}
