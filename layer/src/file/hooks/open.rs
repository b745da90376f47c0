//! `open` and its aliases (LFS, `openat`, fortify `__open*_2`, `creat`).

use super::*;

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
