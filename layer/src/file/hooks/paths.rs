//! Path calls: `access` and friends, `readlink`, and the directory changes
//! of write mode (`mkdir`, `unlink`, `rmdir`, `rename`).

use super::*;

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
