//! Directory streams (`opendir`, `readdir`...), `scandir` and `getdents64`.

use super::*;

/// Ours, when the stream is one [`crate::file::dir::opendir`] made.
fn our_stream(dirp: *mut DIR) -> Option<*mut DirStream> {
    crate::file::dir::is_stream(dirp as usize).then_some(dirp as *mut DirStream)
}

#[inline]
fn any_streams() -> bool {
    crate::file::dir::STREAMS.load(std::sync::atomic::Ordering::Relaxed) != 0
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
            Some(p) => Ok(crate::file::dir::opendir(p)?.map(|s| s as *mut DIR)),
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
    entries: Vec<crate::file::dir::ScanEntry>,
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
        crate::file::dir::fill_dirent(&mut *entry, name, *ino, *kind, pos);
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
            match crate::file::dir::scandir(p)? {
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
        || Ok(crate::file::dir::fdopendir(fd)?.map(|s| s as *mut DIR)),
        real,
        fail_null,
    )
}

/// The next entry of one of our streams, or NULL at the end (errno kept).
unsafe fn next_entry(stream: *mut DirStream) -> Result<Option<*mut dirent64>, HookError> {
    // SAFETY: `stream` is ours (checked by the caller).
    if unsafe { crate::file::dir::readdir(stream)? } {
        Ok(Some(unsafe { &mut (*stream).entry }))
    } else {
        Ok(Some(null_mut()))
    }
}

/// Reads entries of a glibc stream with `next`, skipping the layer's own
/// connection when the stream lists this process's fds.
///
/// # Safety
/// `dirp` is a live glibc stream; `next` is its `readdir` or `readdir64`
/// (whose records share the layout up to `d_name`).
unsafe fn skip_own_fd<T>(dirp: *mut DIR, mut next: impl FnMut() -> *mut T) -> *mut T {
    loop {
        let entry = next();
        if entry.is_null() || !crate::setup::enabled() {
            return entry;
        }
        let Some(_guard) = detour::DetourGuard::new() else {
            return entry;
        };
        // SAFETY: a record returned by glibc's readdir{,64}: `d_name` is at
        // the same offset in `dirent` and `dirent64`.
        let name = unsafe { (*entry.cast::<dirent64>()).d_name.as_ptr() };
        // SAFETY: live stream, NUL-terminated name.
        if !unsafe { crate::hide::is_own_fd_entry(dirp, name) } {
            return entry;
        }
    }
}

/// # Safety
/// libc's `readdir`.
#[no_mangle]
pub unsafe extern "C" fn readdir(dirp: *mut DIR) -> *mut dirent {
    let real = || skip_own_fd(dirp, || real!(readdir: ReaddirFn)(dirp));
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
    let real = || skip_own_fd(dirp, || real!(readdir64: Readdir64Fn)(dirp));
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
            Some(s) => unsafe { crate::file::dir::closedir(s) }.map(|()| Some(0)),
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
        crate::file::dir::dir_position(fd, seek).map_or(-1, |p| p as c_long)
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
            crate::file::dir::getdents(fd, out)
        },
        real,
        fail,
    )
}
