//! Tests of the file and path operations on a temporary root.

use super::*;
use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

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
        read_at(&o.file, 0, 100, None).unwrap(),
        (b"aZcdefXY".to_vec(), true)
    );
    assert_eq!(
        read_at(&o.file, 2, 2, None).unwrap(),
        (b"cd".to_vec(), false)
    );
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

#[test]
fn a_size_ends_the_read_at_that_size_unless_the_file_has_grown() {
    let r = root();
    std::fs::write(r.dir.path().join("ten"), b"0123456789").unwrap();
    let file = File::open(r.dir.path().join("ten")).unwrap();
    let read = |offset, len, size| read_at(&file, offset, len, size).unwrap();
    assert_eq!(read(0, 100, Some(10)), (b"0123456789".to_vec(), true));
    assert_eq!(read(6, 100, Some(10)), (b"6789".to_vec(), true));
    assert_eq!(read(0, 3, Some(10)), (b"012".to_vec(), false));
    // Grown since its size was read: the extra byte asked for shows it.
    assert_eq!(read(0, 100, Some(4)), (b"0123456789".to_vec(), true));
    assert_eq!(read(0, 7, Some(4)), (b"0123456".to_vec(), false));
    // Read open at a size of 0 (a `/proc` file's), to its real end.
    let status = File::open("/proc/self/status").unwrap();
    let (data, eof) = read_at(&status, 0, 1 << 20, Some(0)).unwrap();
    assert!(eof && data.len() > 100 && data.ends_with(b"\n"), "{data:?}");
}
