//! Writes, truncation and sync on remote files opened for writing, and
//! kernel-side copies into them (`sendfile`, `copy_file_range`).

use super::*;

/// Copies the first `n` bytes of `iov` (what the kernel just wrote).
unsafe fn gather(iov: *const iovec, count: c_int, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    for i in 0..count.max(0) as usize {
        if out.len() == n {
            break;
        }
        // SAFETY: the kernel read these `iovcnt` entries and `n` bytes.
        let v = unsafe { &*iov.add(i) };
        let take = v.iov_len.min(n - out.len());
        if take > 0 {
            // SAFETY: as above.
            out.extend_from_slice(unsafe {
                std::slice::from_raw_parts(v.iov_base as *const u8, take)
            });
        }
    }
    out
}

unsafe fn write_hook(fd: c_int, at: WriteAt, iov: &[iovec], real: impl Fn() -> ssize_t) -> ssize_t {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return real();
    }
    detour::run(
        // SAFETY: `iov` describes the caller's buffers.
        || {
            ops::write(fd, at, &real, |_, n| {
                Ok(unsafe { gather(iov.as_ptr(), iov.len() as c_int, n) })
            })
        },
        &real,
        fail,
    )
}

fn one(buf: *const c_void, count: size_t) -> [iovec; 1] {
    [iovec {
        iov_base: buf as *mut c_void,
        iov_len: count,
    }]
}

unsafe fn iovs<'a>(iov: *const iovec, count: c_int) -> &'a [iovec] {
    if iov.is_null() || count <= 0 {
        return &[];
    }
    // SAFETY: the caller's `iovcnt` entries (a bad pointer faults in libc too).
    unsafe { std::slice::from_raw_parts(iov, count as usize) }
}

/// # Safety
/// libc's `write`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    write_hook(fd, WriteAt::Position, &one(buf, count), || {
        real!(write: WriteFn)(fd, buf, count)
    })
}

/// # Safety
/// libc's `pwrite`.
#[no_mangle]
pub unsafe extern "C" fn pwrite(
    fd: c_int,
    buf: *const c_void,
    count: size_t,
    off: off_t,
) -> ssize_t {
    write_hook(fd, WriteAt::Offset(off), &one(buf, count), || {
        real!(pwrite: PwriteFn)(fd, buf, count, off)
    })
}

/// # Safety
/// libc's `pwrite64`.
#[no_mangle]
pub unsafe extern "C" fn pwrite64(
    fd: c_int,
    buf: *const c_void,
    count: size_t,
    off: off_t,
) -> ssize_t {
    write_hook(fd, WriteAt::Offset(off), &one(buf, count), || {
        real!(pwrite64: PwriteFn)(fd, buf, count, off)
    })
}

/// # Safety
/// libc's `writev`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, count: c_int) -> ssize_t {
    write_hook(fd, WriteAt::Position, iovs(iov, count), || {
        real!(writev: WritevFn)(fd, iov, count)
    })
}

/// # Safety
/// libc's `pwritev`.
#[no_mangle]
pub unsafe extern "C" fn pwritev(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    off: off_t,
) -> ssize_t {
    write_hook(fd, WriteAt::Offset(off), iovs(iov, count), || {
        real!(pwritev: PwritevFn)(fd, iov, count, off)
    })
}

/// # Safety
/// libc's `pwritev64`.
#[no_mangle]
pub unsafe extern "C" fn pwritev64(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    off: off_t,
) -> ssize_t {
    write_hook(fd, WriteAt::Offset(off), iovs(iov, count), || {
        real!(pwritev64: PwritevFn)(fd, iov, count, off)
    })
}

/// # Safety
/// libc's `pwritev2` (offset -1: at the file position).
#[no_mangle]
pub unsafe extern "C" fn pwritev2(
    fd: c_int,
    iov: *const iovec,
    count: c_int,
    off: off_t,
    flags: c_int,
) -> ssize_t {
    let at = if off == -1 {
        WriteAt::Position
    } else {
        WriteAt::Offset(off)
    };
    write_hook(fd, at, iovs(iov, count), || {
        real!(pwritev2: Pwritev2Fn)(fd, iov, count, off, flags)
    })
}

type SendfileFn = unsafe extern "C" fn(c_int, c_int, *mut off_t, size_t) -> ssize_t;
type CopyFileRangeFn =
    unsafe extern "C" fn(c_int, *mut off_t, c_int, *mut off_t, size_t, c_uint) -> ssize_t;

/// A kernel-side copy into `fd` (`sendfile`, `copy_file_range`): the bytes
/// are read back from the memfd and sent like a write.
unsafe fn copy_hook(fd: c_int, at: WriteAt, real: impl Fn() -> ssize_t) -> ssize_t {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return real();
    }
    detour::run(
        || ops::write(fd, at, &real, |start, n| ops::written_range(fd, start, n)),
        &real,
        fail,
    )
}

/// # Safety
/// libc's `sendfile` (Python's `shutil.copyfile` uses it).
#[no_mangle]
pub unsafe extern "C" fn sendfile(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    copy_hook(out, WriteAt::Position, || {
        real!(sendfile: SendfileFn)(out, input, offset, count)
    })
}

/// # Safety
/// libc's `sendfile64`.
#[no_mangle]
pub unsafe extern "C" fn sendfile64(
    out: c_int,
    input: c_int,
    offset: *mut off_t,
    count: size_t,
) -> ssize_t {
    copy_hook(out, WriteAt::Position, || {
        real!(sendfile64: SendfileFn)(out, input, offset, count)
    })
}

/// # Safety
/// libc's `copy_file_range`.
#[no_mangle]
pub unsafe extern "C" fn copy_file_range(
    fd_in: c_int,
    off_in: *mut off_t,
    fd_out: c_int,
    off_out: *mut off_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    let at = if off_out.is_null() {
        WriteAt::Position
    } else {
        WriteAt::Offset(*off_out)
    };
    copy_hook(fd_out, at, || {
        real!(copy_file_range: CopyFileRangeFn)(fd_in, off_in, fd_out, off_out, len, flags)
    })
}

unsafe fn truncate_hook(fd: c_int, len: off_t, real: impl Fn() -> c_int) -> c_int {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return real();
    }
    detour::run(|| ops::truncate(fd, len, &real), &real, fail)
}

/// # Safety
/// libc's `ftruncate`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate(fd: c_int, len: off_t) -> c_int {
    truncate_hook(fd, len, || real!(ftruncate: TruncateFn)(fd, len))
}

/// # Safety
/// libc's `ftruncate64`.
#[no_mangle]
pub unsafe extern "C" fn ftruncate64(fd: c_int, len: off_t) -> c_int {
    truncate_hook(fd, len, || real!(ftruncate64: TruncateFn)(fd, len))
}

type PathTruncateFn = unsafe extern "C" fn(*const c_char, off_t) -> c_int;

/// # Safety
/// libc's `truncate`.
#[no_mangle]
pub unsafe extern "C" fn truncate(path: *const c_char, len: off_t) -> c_int {
    change(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::truncate_path(p, len),
            None => Ok(None),
        },
        || real!(truncate: PathTruncateFn)(path, len),
    )
}

/// # Safety
/// libc's `truncate64`.
#[no_mangle]
pub unsafe extern "C" fn truncate64(path: *const c_char, len: off_t) -> c_int {
    change(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::truncate_path(p, len),
            None => Ok(None),
        },
        || real!(truncate64: PathTruncateFn)(path, len),
    )
}

unsafe fn sync_hook(fd: c_int, real: impl Fn() -> c_int) -> c_int {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return real();
    }
    detour::run(|| ops::sync(fd), &real, fail)
}

/// # Safety
/// libc's `fsync`.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    sync_hook(fd, || real!(fsync: FdFn)(fd))
}

/// # Safety
/// libc's `fdatasync`.
#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    sync_hook(fd, || real!(fdatasync: FdFn)(fd))
}
