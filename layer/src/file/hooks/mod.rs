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

unsafe fn change(
    logic: impl FnOnce() -> Result<Option<c_int>, HookError>,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !fs_active() {
        return real();
    }
    detour::run(logic, real, fail)
}

pub mod dir;
pub mod open;
pub mod paths;
pub mod stat;
pub mod stdio;
pub mod write;
