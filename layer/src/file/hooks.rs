//! The `extern "C"` file hooks: each checks the cheap local case first
//! (fs mode `local`, an fd the bitmap does not mark), then runs its logic
//! from [`super::ops`] through [`detour::run`].
//!
//! Fallbacks reach the next `open`/`write`... with [`real!`], except the
//! stat family, which falls back to the raw syscall: glibc before 2.33
//! exports no `stat`, and its `__xstat` is a compat symbol `dlsym` cannot
//! find, while the syscalls are what glibc runs anyway on 64-bit Linux.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};
use std::ptr::null_mut;

use libc::{dirent, dirent64, iovec, mode_t, off_t, size_t, ssize_t, DIR, FILE};

use super::dir::DirStream;
use super::ops::{self, WriteAt};
use super::stat::{to_stat, to_statx};
use super::{fs_active, on_close};
use crate::error::{errno, set_errno, HookError};
use crate::{detour, fdbits, real};

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, mode_t) -> c_int;
type OpenAtFn = unsafe extern "C" fn(c_int, *const c_char, c_int, mode_t) -> c_int;
type Open2Fn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type OpenAt2Fn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type CreatFn = unsafe extern "C" fn(*const c_char, mode_t) -> c_int;
type WriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t;
type PwriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t, off_t) -> ssize_t;
type WritevFn = unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t;
type PwritevFn = unsafe extern "C" fn(c_int, *const iovec, c_int, off_t) -> ssize_t;
type Pwritev2Fn = unsafe extern "C" fn(c_int, *const iovec, c_int, off_t, c_int) -> ssize_t;
type TruncateFn = unsafe extern "C" fn(c_int, off_t) -> c_int;
type FdFn = unsafe extern "C" fn(c_int) -> c_int;
type AccessFn = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type FaccessatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, c_int) -> c_int;
type ReadlinkatFn = unsafe extern "C" fn(c_int, *const c_char, *mut c_char, size_t) -> ssize_t;
type MkdiratFn = unsafe extern "C" fn(c_int, *const c_char, mode_t) -> c_int;
type UnlinkatFn = unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int;
type RenameatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char) -> c_int;
type Renameat2Fn =
    unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;
type OpendirFn = unsafe extern "C" fn(*const c_char) -> *mut DIR;
type FdopendirFn = unsafe extern "C" fn(c_int) -> *mut DIR;
type ReaddirFn = unsafe extern "C" fn(*mut DIR) -> *mut dirent;
type Readdir64Fn = unsafe extern "C" fn(*mut DIR) -> *mut dirent64;
type ReaddirRFn = unsafe extern "C" fn(*mut DIR, *mut dirent, *mut *mut dirent) -> c_int;
type Readdir64RFn = unsafe extern "C" fn(*mut DIR, *mut dirent64, *mut *mut dirent64) -> c_int;
type DirIntFn = unsafe extern "C" fn(*mut DIR) -> c_int;
type DirVoidFn = unsafe extern "C" fn(*mut DIR);
type TelldirFn = unsafe extern "C" fn(*mut DIR) -> c_long;
type SeekdirFn = unsafe extern "C" fn(*mut DIR, c_long);
type GetdentsFn = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;
type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;
type FreopenFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut FILE) -> *mut FILE;
type FdopenFn = unsafe extern "C" fn(c_int, *const c_char) -> *mut FILE;
type FileFn = unsafe extern "C" fn(*mut FILE) -> c_int;

/// A C string argument, or `None` for NULL (libc then fails with `EFAULT`).
unsafe fn cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    // SAFETY: a non-NULL path argument is a NUL-terminated string.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) })
}

fn fail<T: From<i8>>(e: HookError) -> T {
    e.fail()
}

fn fail_null<T>(e: HookError) -> *mut T {
    set_errno(e.errno());
    null_mut()
}

#[inline]
fn is_remote_fd(fd: c_int) -> bool {
    fdbits::get(fd) & (fdbits::FILE | fdbits::DIR) != 0
}

// ---------------------------------------------------------------------------
// open

unsafe fn open_at(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !fs_active() {
        return real();
    }
    detour::run(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::open(dirfd, p, flags, mode, false),
            None => Ok(None),
        },
        || {
            let fd = real();
            ops::forget_stale(fd);
            fd
        },
        fail,
    )
}

/// # Safety
/// libc's `open` (the mode is read from the variadic slot's register).
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, mode, || {
        real!(open: OpenFn)(path, flags, mode)
    })
}

/// # Safety
/// libc's `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, mode, || {
        real!(open64: OpenFn)(path, flags, mode)
    })
}

/// # Safety
/// libc's `openat`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    open_at(dirfd, path, flags, mode, || {
        real!(openat: OpenAtFn)(dirfd, path, flags, mode)
    })
}

/// # Safety
/// libc's `openat64`.
#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    open_at(dirfd, path, flags, mode, || {
        real!(openat64: OpenAtFn)(dirfd, path, flags, mode)
    })
}

/// # Safety
/// glibc's fortified `open` (no mode: `O_CREAT` is refused at compile time).
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, 0, || {
        real!(__open_2: Open2Fn)(path, flags)
    })
}

/// # Safety
/// glibc's fortified `open64`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, 0, || {
        real!(__open64_2: Open2Fn)(path, flags)
    })
}

/// # Safety
/// glibc's fortified `openat`.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    open_at(dirfd, path, flags, 0, || {
        real!(__openat_2: OpenAt2Fn)(dirfd, path, flags)
    })
}

/// # Safety
/// glibc's fortified `openat64`.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    open_at(dirfd, path, flags, 0, || {
        real!(__openat64_2: OpenAt2Fn)(dirfd, path, flags)
    })
}

const CREAT: c_int = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;

/// # Safety
/// libc's `creat`.
#[no_mangle]
pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    open_at(libc::AT_FDCWD, path, CREAT, mode, || {
        real!(creat: CreatFn)(path, mode)
    })
}

/// # Safety
/// libc's `creat64`.
#[no_mangle]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    open_at(libc::AT_FDCWD, path, CREAT, mode, || {
        real!(creat64: CreatFn)(path, mode)
    })
}

// ---------------------------------------------------------------------------
// writes to remote files opened for writing

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

// ---------------------------------------------------------------------------
// stat

unsafe fn sys_fstatat(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { libc::syscall(libc::SYS_newfstatat, dirfd, path, buf, flags) as c_int }
}

unsafe fn sys_fstat(fd: c_int, buf: *mut libc::stat) -> c_int {
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_fstat, fd, buf) as c_int }
}

unsafe fn stat_at(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int {
    if !fs_active() || buf.is_null() {
        return sys_fstatat(dirfd, path, buf, flags);
    }
    detour::run(
        || {
            // SAFETY: the caller's path argument.
            let Some(p) = (unsafe { cstr(path) }) else {
                return Ok(None);
            };
            Ok(ops::stat_at(dirfd, p, flags)?.map(|s| {
                // SAFETY: non-NULL out pointer from the caller.
                unsafe { *buf = to_stat(&s) };
                0
            }))
        },
        || sys_fstatat(dirfd, path, buf, flags),
        fail,
    )
}

unsafe fn fstat_fd(fd: c_int, buf: *mut libc::stat) -> c_int {
    if !is_remote_fd(fd) || buf.is_null() {
        return sys_fstat(fd, buf);
    }
    detour::run(
        || {
            Ok(ops::stat_fd(fd)?.map(|s| {
                // SAFETY: non-NULL out pointer from the caller.
                unsafe { *buf = to_stat(&s) };
                0
            }))
        },
        || sys_fstat(fd, buf),
        fail,
    )
}

/// # Safety
/// libc's `stat`.
#[no_mangle]
pub unsafe extern "C" fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, 0)
}

/// # Safety
/// libc's `stat64` (same layout on 64-bit).
#[no_mangle]
pub unsafe extern "C" fn stat64(path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, 0)
}

/// # Safety
/// libc's `lstat`.
#[no_mangle]
pub unsafe extern "C" fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW)
}

/// # Safety
/// libc's `lstat64`.
#[no_mangle]
pub unsafe extern "C" fn lstat64(path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW)
}

/// # Safety
/// libc's `fstat`.
#[no_mangle]
pub unsafe extern "C" fn fstat(fd: c_int, buf: *mut libc::stat) -> c_int {
    fstat_fd(fd, buf)
}

/// # Safety
/// libc's `fstat64`.
#[no_mangle]
pub unsafe extern "C" fn fstat64(fd: c_int, buf: *mut libc::stat) -> c_int {
    fstat_fd(fd, buf)
}

/// # Safety
/// libc's `fstatat`.
#[no_mangle]
pub unsafe extern "C" fn fstatat(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    stat_at(dirfd, path, buf, flags)
}

/// # Safety
/// libc's `fstatat64`.
#[no_mangle]
pub unsafe extern "C" fn fstatat64(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    stat_at(dirfd, path, buf, flags)
}

/// # Safety
/// glibc's pre-2.33 `stat` entry point.
#[no_mangle]
pub unsafe extern "C" fn __xstat(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, 0)
}

/// # Safety
/// glibc's pre-2.33 `stat64` entry point.
#[no_mangle]
pub unsafe extern "C" fn __xstat64(
    _ver: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, 0)
}

/// # Safety
/// glibc's pre-2.33 `lstat` entry point.
#[no_mangle]
pub unsafe extern "C" fn __lxstat(_ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW)
}

/// # Safety
/// glibc's pre-2.33 `lstat64` entry point.
#[no_mangle]
pub unsafe extern "C" fn __lxstat64(
    _ver: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
) -> c_int {
    stat_at(libc::AT_FDCWD, path, buf, libc::AT_SYMLINK_NOFOLLOW)
}

/// # Safety
/// glibc's pre-2.33 `fstat` entry point.
#[no_mangle]
pub unsafe extern "C" fn __fxstat(_ver: c_int, fd: c_int, buf: *mut libc::stat) -> c_int {
    fstat_fd(fd, buf)
}

/// # Safety
/// glibc's pre-2.33 `fstat64` entry point.
#[no_mangle]
pub unsafe extern "C" fn __fxstat64(_ver: c_int, fd: c_int, buf: *mut libc::stat) -> c_int {
    fstat_fd(fd, buf)
}

/// # Safety
/// glibc's pre-2.33 `fstatat` entry point.
#[no_mangle]
pub unsafe extern "C" fn __fxstatat(
    _ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    stat_at(dirfd, path, buf, flags)
}

/// # Safety
/// glibc's pre-2.33 `fstatat64` entry point.
#[no_mangle]
pub unsafe extern "C" fn __fxstatat64(
    _ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    buf: *mut libc::stat,
    flags: c_int,
) -> c_int {
    stat_at(dirfd, path, buf, flags)
}

/// # Safety
/// libc's `statx`.
#[no_mangle]
pub unsafe extern "C" fn statx(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mask: c_uint,
    buf: *mut libc::statx,
) -> c_int {
    let sys = || {
        real_syscall(
            libc::SYS_statx,
            dirfd as c_long,
            path as c_long,
            flags as c_long,
            mask as c_long,
            buf as c_long,
            0,
        ) as c_int
    };
    if buf.is_null() || !(fs_active() || is_remote_fd(dirfd)) {
        return sys();
    }
    detour::run(
        || {
            // SAFETY: the caller's path argument.
            let Some(p) = (unsafe { cstr(path) }) else {
                return Ok(None);
            };
            Ok(ops::stat_at(dirfd, p, flags)?.map(|s| {
                // SAFETY: non-NULL out pointer from the caller.
                unsafe { *buf = to_statx(&s) };
                0
            }))
        },
        sys,
        fail,
    )
}

type SyscallFn =
    unsafe extern "C" fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long;

unsafe fn real_syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    real!(syscall: SyscallFn)(n, a1, a2, a3, a4, a5, a6)
}

/// libc's `syscall`, for one call: libuv (Node.js) makes `statx` through
/// it rather than through the `statx` wrapper. Everything else goes on
/// unchanged (a compare and a cached indirect call). The six arguments are
/// read as integers from their ABI slots, which is how the variadic
/// `syscall` receives them on x86_64 and aarch64.
///
/// # Safety
/// libc's `syscall`.
#[no_mangle]
pub unsafe extern "C" fn syscall(
    n: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    if n == libc::SYS_statx && !detour::in_layer() {
        return statx(
            a1 as c_int,
            a2 as *const c_char,
            a3 as c_int,
            a4 as c_uint,
            a5 as *mut libc::statx,
        ) as c_long;
    }
    real_syscall(n, a1, a2, a3, a4, a5, a6)
}

// ---------------------------------------------------------------------------
// access, readlink

unsafe fn access_at(
    dirfd: c_int,
    path: *const c_char,
    mode: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !fs_active() {
        return real();
    }
    detour::run(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::access(dirfd, p, mode),
            None => Ok(None),
        },
        real,
        fail,
    )
}

/// # Safety
/// libc's `access`.
#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    access_at(libc::AT_FDCWD, path, mode, || {
        real!(access: AccessFn)(path, mode)
    })
}

/// # Safety
/// libc's `faccessat`.
#[no_mangle]
pub unsafe extern "C" fn faccessat(
    dirfd: c_int,
    path: *const c_char,
    mode: c_int,
    flags: c_int,
) -> c_int {
    access_at(dirfd, path, mode, || {
        real!(faccessat: FaccessatFn)(dirfd, path, mode, flags)
    })
}

/// # Safety
/// libc's `eaccess`.
#[no_mangle]
pub unsafe extern "C" fn eaccess(path: *const c_char, mode: c_int) -> c_int {
    access_at(libc::AT_FDCWD, path, mode, || {
        real!(eaccess: AccessFn)(path, mode)
    })
}

/// # Safety
/// libc's `euidaccess`.
#[no_mangle]
pub unsafe extern "C" fn euidaccess(path: *const c_char, mode: c_int) -> c_int {
    access_at(libc::AT_FDCWD, path, mode, || {
        real!(euidaccess: AccessFn)(path, mode)
    })
}

unsafe fn readlink_at(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut c_char,
    size: size_t,
) -> ssize_t {
    let real = || real!(readlinkat: ReadlinkatFn)(dirfd, path, buf, size);
    if !fs_active() || buf.is_null() {
        return real();
    }
    detour::run(
        || {
            // SAFETY: the caller's path argument and `size`-byte buffer.
            let Some(p) = (unsafe { cstr(path) }) else {
                return Ok(None);
            };
            let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, size) };
            ops::readlink(dirfd, p, out)
        },
        real,
        fail,
    )
}

/// # Safety
/// libc's `readlink`.
#[no_mangle]
pub unsafe extern "C" fn readlink(path: *const c_char, buf: *mut c_char, size: size_t) -> ssize_t {
    readlink_at(libc::AT_FDCWD, path, buf, size)
}

/// # Safety
/// libc's `readlinkat`.
#[no_mangle]
pub unsafe extern "C" fn readlinkat(
    dirfd: c_int,
    path: *const c_char,
    buf: *mut c_char,
    size: size_t,
) -> ssize_t {
    readlink_at(dirfd, path, buf, size)
}

// ---------------------------------------------------------------------------
// mkdir, unlink, rmdir, rename

unsafe fn change(
    logic: impl FnOnce() -> Result<Option<c_int>, HookError>,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !fs_active() {
        return real();
    }
    detour::run(logic, real, fail)
}

/// # Safety
/// libc's `mkdir`.
#[no_mangle]
pub unsafe extern "C" fn mkdir(path: *const c_char, mode: mode_t) -> c_int {
    mkdirat(libc::AT_FDCWD, path, mode)
}

/// # Safety
/// libc's `mkdirat`.
#[no_mangle]
pub unsafe extern "C" fn mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t) -> c_int {
    change(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::mkdir(dirfd, p, mode),
            None => Ok(None),
        },
        || real!(mkdirat: MkdiratFn)(dirfd, path, mode),
    )
}

/// # Safety
/// libc's `unlink`.
#[no_mangle]
pub unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    unlinkat(libc::AT_FDCWD, path, 0)
}

/// # Safety
/// libc's `rmdir`.
#[no_mangle]
pub unsafe extern "C" fn rmdir(path: *const c_char) -> c_int {
    unlinkat(libc::AT_FDCWD, path, libc::AT_REMOVEDIR)
}

/// # Safety
/// libc's `unlinkat`.
#[no_mangle]
pub unsafe extern "C" fn unlinkat(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    change(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => ops::unlink(dirfd, p, flags),
            None => Ok(None),
        },
        || real!(unlinkat: UnlinkatFn)(dirfd, path, flags),
    )
}

/// # Safety
/// libc's `rename`.
#[no_mangle]
pub unsafe extern "C" fn rename(old: *const c_char, new: *const c_char) -> c_int {
    renameat(libc::AT_FDCWD, old, libc::AT_FDCWD, new)
}

/// # Safety
/// libc's `renameat`.
#[no_mangle]
pub unsafe extern "C" fn renameat(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
) -> c_int {
    change(
        // SAFETY: the caller's path arguments.
        || match unsafe { (cstr(old), cstr(new)) } {
            (Some(o), Some(n)) => ops::rename(olddirfd, o, newdirfd, n),
            _ => Ok(None),
        },
        || real!(renameat: RenameatFn)(olddirfd, old, newdirfd, new),
    )
}

/// # Safety
/// libc's `renameat2`: with flags (`RENAME_NOREPLACE`...) a remote rename
/// fails with `EINVAL` rather than ignore them.
#[no_mangle]
pub unsafe extern "C" fn renameat2(
    olddirfd: c_int,
    old: *const c_char,
    newdirfd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    change(
        // SAFETY: the caller's path arguments.
        || match unsafe { (cstr(old), cstr(new)) } {
            (Some(o), Some(n)) => match ops::rename(olddirfd, o, newdirfd, n) {
                Ok(Some(_)) if flags != 0 => Err(HookError::BadArgument(libc::EINVAL)),
                other => other,
            },
            _ => Ok(None),
        },
        || real!(renameat2: Renameat2Fn)(olddirfd, old, newdirfd, new, flags),
    )
}

// ---------------------------------------------------------------------------
// directories

/// Ours, when the stream is one [`ops::opendir`] made.
fn our_stream(dirp: *mut DIR) -> Option<*mut DirStream> {
    ops::is_stream(dirp as usize).then_some(dirp as *mut DirStream)
}

#[inline]
fn any_streams() -> bool {
    ops::STREAMS.load(std::sync::atomic::Ordering::Relaxed) != 0
}

/// # Safety
/// libc's `opendir`.
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut DIR {
    let real = || real!(opendir: OpendirFn)(path);
    if !fs_active() {
        return real();
    }
    detour::run(
        // SAFETY: the caller's path argument.
        || match unsafe { cstr(path) } {
            Some(p) => Ok(ops::opendir(p)?.map(|s| s as *mut DIR)),
            None => Ok(None),
        },
        real,
        fail_null,
    )
}

type ScandirFilter = Option<unsafe extern "C" fn(*const dirent64) -> c_int>;
type ScandirCompar =
    Option<unsafe extern "C" fn(*mut *const dirent64, *mut *const dirent64) -> c_int>;
type ScandirFn = unsafe extern "C" fn(
    *const c_char,
    *mut *mut *mut dirent64,
    ScandirFilter,
    ScandirCompar,
) -> c_int;

/// Builds `scandir`'s result the way glibc does: each entry and the array
/// from `malloc` (the program frees them), filtered, then sorted.
unsafe fn scandir_result(
    entries: Vec<ops::ScanEntry>,
    namelist: *mut *mut *mut dirent64,
    filter: ScandirFilter,
    compar: ScandirCompar,
) -> Result<c_int, HookError> {
    let size = std::mem::size_of::<dirent64>();
    let list = libc::malloc(std::mem::size_of::<*mut dirent64>() * entries.len().max(1))
        as *mut *mut dirent64;
    if list.is_null() {
        return Err(HookError::BadArgument(libc::ENOMEM));
    }
    let mut count = 0usize;
    for (pos, (name, ino, kind)) in entries.iter().enumerate() {
        let entry = libc::malloc(size) as *mut dirent64;
        if entry.is_null() {
            for i in 0..count {
                libc::free(*list.add(i) as *mut c_void);
            }
            libc::free(list as *mut c_void);
            return Err(HookError::BadArgument(libc::ENOMEM));
        }
        std::ptr::write_bytes(entry as *mut u8, 0, size);
        super::dir::fill_dirent(&mut *entry, name, *ino, *kind, pos);
        if let Some(keep) = filter {
            if keep(entry) == 0 {
                libc::free(entry as *mut c_void);
                continue;
            }
        }
        *list.add(count) = entry;
        count += 1;
    }
    if let Some(compar) = compar {
        // SAFETY: qsort calls `compar` with pointers to two array elements,
        // which is scandir's contract for it.
        let compar: unsafe extern "C" fn(*const c_void, *const c_void) -> c_int =
            std::mem::transmute(compar);
        libc::qsort(
            list as *mut c_void,
            count,
            std::mem::size_of::<*mut dirent64>(),
            Some(compar),
        );
    }
    *namelist = list;
    Ok(count as c_int)
}

unsafe fn scandir_common(
    path: *const c_char,
    namelist: *mut *mut *mut dirent64,
    filter: ScandirFilter,
    compar: ScandirCompar,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !fs_active() || namelist.is_null() {
        return real();
    }
    detour::run(
        || {
            // SAFETY: the caller's path argument.
            let Some(p) = (unsafe { cstr(path) }) else {
                return Ok(None);
            };
            match ops::scandir(p)? {
                // SAFETY: the caller's out pointer and callbacks.
                Some(entries) => {
                    unsafe { scandir_result(entries, namelist, filter, compar) }.map(Some)
                }
                None => Ok(None),
            }
        },
        real,
        fail,
    )
}

/// # Safety
/// libc's `scandir` (glibc's calls its internal `opendir`, past our hook).
#[no_mangle]
pub unsafe extern "C" fn scandir(
    path: *const c_char,
    namelist: *mut *mut *mut dirent64,
    filter: ScandirFilter,
    compar: ScandirCompar,
) -> c_int {
    scandir_common(path, namelist, filter, compar, || {
        real!(scandir: ScandirFn)(path, namelist, filter, compar)
    })
}

/// # Safety
/// libc's `scandir64`.
#[no_mangle]
pub unsafe extern "C" fn scandir64(
    path: *const c_char,
    namelist: *mut *mut *mut dirent64,
    filter: ScandirFilter,
    compar: ScandirCompar,
) -> c_int {
    scandir_common(path, namelist, filter, compar, || {
        real!(scandir64: ScandirFn)(path, namelist, filter, compar)
    })
}

/// # Safety
/// libc's `fdopendir`.
#[no_mangle]
pub unsafe extern "C" fn fdopendir(fd: c_int) -> *mut DIR {
    let real = || real!(fdopendir: FdopendirFn)(fd);
    if !is_remote_fd(fd) {
        return real();
    }
    detour::run(
        || Ok(ops::fdopendir(fd)?.map(|s| s as *mut DIR)),
        real,
        fail_null,
    )
}

/// The next entry of one of our streams, or NULL at the end (errno kept).
unsafe fn next_entry(stream: *mut DirStream) -> Result<Option<*mut dirent64>, HookError> {
    // SAFETY: `stream` is ours (checked by the caller).
    if unsafe { ops::readdir(stream)? } {
        Ok(Some(unsafe { &mut (*stream).entry }))
    } else {
        Ok(Some(null_mut()))
    }
}

/// # Safety
/// libc's `readdir`.
#[no_mangle]
pub unsafe extern "C" fn readdir(dirp: *mut DIR) -> *mut dirent {
    let real = || real!(readdir: ReaddirFn)(dirp);
    if !any_streams() {
        return real();
    }
    detour::run(
        || match our_stream(dirp) {
            // SAFETY: ours.
            Some(s) => Ok(unsafe { next_entry(s) }?.map(|e| e as *mut dirent)),
            None => Ok(None),
        },
        real,
        fail_null,
    )
}

/// # Safety
/// libc's `readdir64`.
#[no_mangle]
pub unsafe extern "C" fn readdir64(dirp: *mut DIR) -> *mut dirent64 {
    let real = || real!(readdir64: Readdir64Fn)(dirp);
    if !any_streams() {
        return real();
    }
    detour::run(
        || match our_stream(dirp) {
            // SAFETY: ours.
            Some(s) => unsafe { next_entry(s) },
            None => Ok(None),
        },
        real,
        fail_null,
    )
}

unsafe fn readdir_r_common(
    dirp: *mut DIR,
    entry: *mut dirent64,
    result: *mut *mut dirent64,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !any_streams() {
        return real();
    }
    detour::run(
        || {
            let Some(s) = our_stream(dirp) else {
                return Ok(None);
            };
            // SAFETY: ours; `entry` and `result` are the caller's out pointers.
            unsafe {
                let next = next_entry(s)?.unwrap_or(null_mut());
                if next.is_null() {
                    *result = null_mut();
                } else {
                    *entry = *next;
                    *result = entry;
                }
            }
            Ok(Some(0))
        },
        real,
        |e| e.errno(),
    )
}

/// # Safety
/// libc's `readdir_r`.
#[no_mangle]
pub unsafe extern "C" fn readdir_r(
    dirp: *mut DIR,
    entry: *mut dirent,
    result: *mut *mut dirent,
) -> c_int {
    readdir_r_common(dirp, entry.cast(), result.cast(), || {
        real!(readdir_r: ReaddirRFn)(dirp, entry, result)
    })
}

/// # Safety
/// libc's `readdir64_r`.
#[no_mangle]
pub unsafe extern "C" fn readdir64_r(
    dirp: *mut DIR,
    entry: *mut dirent64,
    result: *mut *mut dirent64,
) -> c_int {
    readdir_r_common(dirp, entry, result, || {
        real!(readdir64_r: Readdir64RFn)(dirp, entry, result)
    })
}

/// # Safety
/// libc's `closedir`.
#[no_mangle]
pub unsafe extern "C" fn closedir(dirp: *mut DIR) -> c_int {
    let real = || real!(closedir: DirIntFn)(dirp);
    if !any_streams() {
        return real();
    }
    detour::run(
        || match our_stream(dirp) {
            // SAFETY: ours, and the program gives it up.
            Some(s) => unsafe { ops::closedir(s) }.map(|()| Some(0)),
            None => Ok(None),
        },
        real,
        fail,
    )
}

/// # Safety
/// libc's `dirfd`.
#[no_mangle]
pub unsafe extern "C" fn dirfd(dirp: *mut DIR) -> c_int {
    let real = || real!(dirfd: DirIntFn)(dirp);
    if !any_streams() {
        return real();
    }
    // SAFETY: ours.
    detour::run(
        || Ok(our_stream(dirp).map(|s| unsafe { (*s).fd })),
        real,
        fail,
    )
}

fn stream_position(dirp: *mut DIR, seek: Option<usize>) -> Result<Option<c_long>, HookError> {
    Ok(our_stream(dirp).map(|s| {
        // SAFETY: ours.
        let fd = unsafe { (*s).fd };
        ops::dir_position(fd, seek).map_or(-1, |p| p as c_long)
    }))
}

/// # Safety
/// libc's `rewinddir`.
#[no_mangle]
pub unsafe extern "C" fn rewinddir(dirp: *mut DIR) {
    let real = || real!(rewinddir: DirVoidFn)(dirp);
    if !any_streams() {
        return real();
    }
    detour::run(|| Ok(stream_position(dirp, Some(0))?.map(drop)), real, drop)
}

/// # Safety
/// libc's `telldir`.
#[no_mangle]
pub unsafe extern "C" fn telldir(dirp: *mut DIR) -> c_long {
    let real = || real!(telldir: TelldirFn)(dirp);
    if !any_streams() {
        return real();
    }
    detour::run(|| stream_position(dirp, None), real, fail)
}

/// # Safety
/// libc's `seekdir`.
#[no_mangle]
pub unsafe extern "C" fn seekdir(dirp: *mut DIR, loc: c_long) {
    let real = || real!(seekdir: SeekdirFn)(dirp, loc);
    if !any_streams() {
        return real();
    }
    let pos = usize::try_from(loc).unwrap_or(0);
    detour::run(
        || Ok(stream_position(dirp, Some(pos))?.map(drop)),
        real,
        drop,
    )
}

/// # Safety
/// libc's `getdents64`.
#[no_mangle]
pub unsafe extern "C" fn getdents64(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    let real = || real!(getdents64: GetdentsFn)(fd, buf, count);
    if fdbits::get(fd) & fdbits::DIR == 0 || buf.is_null() {
        return real();
    }
    detour::run(
        || {
            // SAFETY: the caller's `count`-byte buffer.
            let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, count) };
            ops::getdents(fd, out)
        },
        real,
        fail,
    )
}

// ---------------------------------------------------------------------------
// stdio

unsafe fn fopen_common(
    path: *const c_char,
    mode: *const c_char,
    real: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    if !fs_active() {
        return real();
    }
    detour::run(
        || {
            // SAFETY: the caller's string arguments.
            let (Some(p), Some(m)) = (unsafe { cstr(path) }, unsafe { cstr(mode) }) else {
                return Ok(None);
            };
            let Some(flags) = ops::fopen_flags(m.to_bytes()) else {
                return Ok(None);
            };
            let Some(fd) = ops::open(libc::AT_FDCWD, p, flags, 0o666, true)? else {
                return Ok(None);
            };
            let fp = real!(fdopen: FdopenFn)(fd, mode);
            if fp.is_null() {
                let e = errno();
                let _ = on_close(fd);
                libc::syscall(libc::SYS_close, fd);
                return Err(HookError::BadArgument(e));
            }
            Ok(Some(fp))
        },
        real,
        fail_null,
    )
}

/// # Safety
/// libc's `fopen`.
#[no_mangle]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopen_common(path, mode, || real!(fopen: FopenFn)(path, mode))
}

/// # Safety
/// libc's `fopen64`.
#[no_mangle]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopen_common(path, mode, || real!(fopen64: FopenFn)(path, mode))
}

/// The fd of a stream, leaving errno alone (glibc sets it for streams
/// without one).
unsafe fn stream_fd(fp: *mut FILE) -> c_int {
    let saved = errno();
    // SAFETY: the caller's stream.
    let fd = unsafe { libc::fileno(fp) };
    set_errno(saved);
    fd
}

/// `freopen(path, mode, fp)` onto a remote path: our open, then the new fd
/// is moved onto the stream's fd. The stream keeps its buffering mode and
/// read/write orientation (the usual `freopen(path, "w", stdout)` keeps
/// both anyway).
unsafe fn freopen_common(
    path: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
    real: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    if !fs_active() || fp.is_null() {
        return real();
    }
    detour::run(
        || {
            // SAFETY: the caller's arguments.
            let (Some(p), Some(m)) = (unsafe { cstr(path) }, unsafe { cstr(mode) }) else {
                return Ok(None);
            };
            let old = unsafe { stream_fd(fp) };
            let Some(flags) = ops::fopen_flags(m.to_bytes()) else {
                return Ok(None);
            };
            let new = ops::open(libc::AT_FDCWD, p, flags, 0o666, true)?;
            if old >= 0 && is_remote_fd(old) {
                real!(fflush: FileFn)(fp);
                let _ = ops::write_back(old);
                let _ = on_close(old);
            }
            let Some(new) = new else {
                return Ok(None);
            };
            if old < 0 {
                libc::syscall(libc::SYS_close, new);
                let _ = on_close(new);
                return Err(HookError::BadArgument(libc::EBADF));
            }
            real!(fflush: FileFn)(fp);
            let cloexec = flags & libc::O_CLOEXEC;
            libc::syscall(libc::SYS_dup3, new, old, cloexec);
            super::on_dup(new, old);
            let _ = on_close(new);
            libc::syscall(libc::SYS_close, new);
            libc::rewind(fp);
            Ok(Some(fp))
        },
        real,
        fail_null,
    )
}

/// # Safety
/// libc's `freopen`.
#[no_mangle]
pub unsafe extern "C" fn freopen(
    path: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
) -> *mut FILE {
    freopen_common(path, mode, fp, || real!(freopen: FreopenFn)(path, mode, fp))
}

/// # Safety
/// libc's `freopen64`.
#[no_mangle]
pub unsafe extern "C" fn freopen64(
    path: *const c_char,
    mode: *const c_char,
    fp: *mut FILE,
) -> *mut FILE {
    freopen_common(path, mode, fp, || {
        real!(freopen64: FreopenFn)(path, mode, fp)
    })
}

/// # Safety
/// libc's `fdopen`.
#[no_mangle]
pub unsafe extern "C" fn fdopen(fd: c_int, mode: *const c_char) -> *mut FILE {
    let fp = real!(fdopen: FdopenFn)(fd, mode);
    if !fp.is_null() && fdbits::get(fd) & fdbits::FILE != 0 {
        detour::run(|| ops::mark_stdio(fd).map(Some), || (), drop);
    }
    fp
}

/// # Safety
/// libc's `fflush`: after the real flush, a stdio-written remote file is
/// sent to the target.
#[no_mangle]
pub unsafe extern "C" fn fflush(fp: *mut FILE) -> c_int {
    let rc = real!(fflush: FileFn)(fp);
    if rc != 0 || !fs_active() {
        return rc;
    }
    let fd = if fp.is_null() { -1 } else { stream_fd(fp) };
    if !fp.is_null() && (fd < 0 || fdbits::get(fd) & fdbits::FILE == 0) {
        return rc;
    }
    detour::run(
        || {
            if fp.is_null() {
                ops::write_back_all()?;
            } else {
                ops::write_back(fd)?;
            }
            Ok(Some(0))
        },
        || rc,
        fail,
    )
}

/// # Safety
/// libc's `fclose`: glibc closes the fd internally, past our `close`, so
/// the table is updated here (and a stdio-written file sent first).
#[no_mangle]
pub unsafe extern "C" fn fclose(fp: *mut FILE) -> c_int {
    let real = || real!(fclose: FileFn)(fp);
    if fp.is_null() || !fs_active() {
        return real();
    }
    let fd = stream_fd(fp);
    if fd < 0 || !is_remote_fd(fd) {
        return real();
    }
    detour::run(
        || {
            let flushed = real!(fflush: FileFn)(fp);
            let sent = ops::write_back(fd);
            let released = on_close(fd);
            let rc = real();
            if rc != 0 || flushed != 0 {
                return Ok(Some(-1));
            }
            sent.and(released).map(|()| Some(0))
        },
        real,
        fail,
    )
}
