//! stdio: `fopen`, `freopen`, `fdopen`, `fflush`, `fclose` (see
//! [`crate::file::ops`] on why stdio needs its own hooks).

use super::*;

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
            let Some(flags) = crate::file::stdio::fopen_flags(m.to_bytes()) else {
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
            let Some(flags) = crate::file::stdio::fopen_flags(m.to_bytes()) else {
                return Ok(None);
            };
            let new = ops::open(libc::AT_FDCWD, p, flags, 0o666, true)?;
            if old >= 0 && is_remote_fd(old) {
                real!(fflush: FileFn)(fp);
                let _ = crate::file::stdio::write_back(old);
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
            crate::file::on_dup(new, old);
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
        detour::run(|| crate::file::stdio::mark_stdio(fd).map(Some), || (), drop);
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
                crate::file::stdio::write_back_all()?;
            } else {
                crate::file::stdio::write_back(fd)?;
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
            let sent = crate::file::stdio::write_back(fd);
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
