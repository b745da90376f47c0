//! The stat family (`stat`, `lstat`, `fstat`, `fstatat`, `statx`, glibc's
//! old `__xstat` entry points) and `syscall(SYS_statx)`.

use super::*;

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
    if crate::client::hidden(fd) {
        return crate::error::HookError::BadArgument(libc::EBADF).fail();
    }
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
