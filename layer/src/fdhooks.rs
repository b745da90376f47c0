//! `close`, `close_range`, `dup`, `dup2`, `dup3` and `fcntl(F_DUPFD*)`: the
//! hooks every kind of managed fd shares. They keep the domain tables in
//! step with the program's fd numbers and protect the layer's own
//! connection from the program's `close`-all loops and `dup2`.

use std::os::raw::{c_int, c_uint, c_ulong};

use crate::{client, detour, fdbits, file, real, socket};

type CloseFn = unsafe extern "C" fn(c_int) -> c_int;

/// Tells each domain that manages `fd` that it is going away; returns the
/// first error (a failed flush of pipelined writes) for `close` to report.
fn forget(fd: c_int) -> Result<(), crate::error::HookError> {
    let bits = fdbits::get(fd);
    let mut result = Ok(());
    if bits & (fdbits::FILE | fdbits::DIR) != 0 {
        result = file::on_close(fd);
    }
    if bits & fdbits::SOCKET != 0 {
        socket::on_close(fd);
    }
    result
}

fn copied(old: c_int, new: c_int) {
    if new < 0 || fdbits::get(old) == 0 {
        return;
    }
    file::on_dup(old, new);
    socket::on_dup(old, new);
}

/// Runs `f` with the guard when the layer is on and `fd` is managed.
fn managed(fd: c_int, f: impl FnOnce()) {
    if fdbits::get(fd) != 0 && crate::setup::enabled() {
        if let Some(_guard) = detour::DetourGuard::new() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        }
    }
}

/// # Safety
/// libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if client::hidden(fd) {
        // The program closes every fd (a daemon, a child before exec): our
        // connection stays (it is close-on-exec anyway), and the program
        // hears what it would without mirrord: that fd is not open.
        return crate::error::HookError::BadArgument(libc::EBADF).fail();
    }
    let mut failure = None;
    managed(fd, || failure = forget(fd).err());
    let rc = real!(close: CloseFn)(fd);
    match failure {
        Some(err) if rc == 0 => err.fail(),
        _ => rc,
    }
}

/// # Safety
/// libc's `close_range`.
#[no_mangle]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    type CloseRangeFn = unsafe extern "C" fn(c_uint, c_uint, c_int) -> c_int;
    let real = real!(close_range: CloseRangeFn);
    let cloexec_only = flags & libc::CLOSE_RANGE_CLOEXEC as c_int != 0;
    if !cloexec_only && !detour::in_layer() {
        let end = last.min(u16::MAX as c_uint);
        for fd in first..=end {
            managed(fd as c_int, || {
                let _ = forget(fd as c_int);
            });
        }
    }
    let ours = c_uint::try_from(client_fd()).ok();
    match ours {
        Some(fd) if fd >= first && fd <= last && !detour::in_layer() => {
            let mut rc = 0;
            if fd > first {
                rc = real(first, fd - 1, flags);
            }
            if rc == 0 && fd < last {
                rc = real(fd + 1, last, flags);
            }
            rc
        }
        _ => real(first, last, flags),
    }
}

fn client_fd() -> c_int {
    client::current_fd()
}

/// # Safety
/// libc's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(old: c_int) -> c_int {
    if client::hidden(old) {
        return crate::error::HookError::BadArgument(libc::EBADF).fail();
    }
    let new = real!(dup: CloseFn)(old);
    managed(old, || copied(old, new));
    new
}

/// # Safety
/// libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    prepare_target(old, new);
    let rc = real!(dup2: unsafe extern "C" fn(c_int, c_int) -> c_int)(old, new);
    managed(old, || copied(old, rc));
    rc
}

/// # Safety
/// libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    prepare_target(old, new);
    let rc = real!(dup3: unsafe extern "C" fn(c_int, c_int, c_int) -> c_int)(old, new, flags);
    managed(old, || copied(old, rc));
    rc
}

/// Before `new` is replaced: move our connection out of the way, and let
/// the domains forget what `new` was.
fn prepare_target(old: c_int, new: c_int) {
    if old == new {
        return;
    }
    if client::is_layer_fd(new) && !detour::in_layer() {
        if let Some(_guard) = detour::DetourGuard::new() {
            client::move_away();
        }
    }
    managed(new, || {
        let _ = forget(new);
    });
}

/// `fcntl` is variadic; its third argument is an int or a pointer, and on
/// the supported ABIs both arrive in the same register as an `unsigned long`.
///
/// # Safety
/// libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if client::hidden(fd) {
        return crate::error::HookError::BadArgument(libc::EBADF).fail();
    }
    let rc = real!(fcntl: unsafe extern "C" fn(c_int, c_int, c_ulong) -> c_int)(fd, cmd, arg);
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        managed(fd, || copied(fd, rc));
    }
    rc
}

/// # Safety
/// glibc's LFS alias of `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl(fd, cmd, arg)
}
