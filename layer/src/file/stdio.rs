//! stdio: glibc's `fopen` and its buffered writes call glibc's internal
//! `open` and `write`, which no interposed symbol sees. So `fopen` of a
//! remote path is our open plus `fdopen`, and a *writable* file opened that
//! way (marked [`super::RemoteFile::stdio`]) is written back whole (truncate +
//! write at 0) at `fflush`, `fclose` and process exit, when the memfd holds
//! the data stdio wrote. Writes through `write(2)` are mirrored one by one
//! instead ([`super::ops::write()`]).

use std::os::raw::c_int;

use mirrord_protocol::{OpenFlags, Request};

use super::ops::{read_rest, READ_AHEAD, WRITE_CHUNK};
use super::{sys, with_table};
use crate::error::HookError;
use crate::fdbits;

/// Sends the whole memfd of a stdio-written remote file to the target
/// (truncate, then write from 0) and waits for the answers.
pub fn write_back(fd: c_int) -> Result<(), HookError> {
    let Some(handle) = with_table(|t| {
        t.get(fd)
            .filter(|f| f.stdio && f.writable && f.materialised)
            .and_then(|f| f.handle)
    }) else {
        return Ok(());
    };
    let data = sys::read_whole(fd)?;
    crate::client::pipeline(
        handle,
        Request::Truncate {
            handle,
            len: data.len() as u64,
        },
    )?;
    for (i, chunk) in data.chunks(WRITE_CHUNK).enumerate() {
        crate::client::pipeline(
            handle,
            Request::Write {
                handle,
                offset: Some((i * WRITE_CHUNK) as u64),
                data: chunk.to_vec(),
            },
        )?;
    }
    crate::client::flush(handle)
}

/// `fdopen` of a writable remote fd: stdio now writes behind our back, so
/// the file is written back whole at `fflush`/`fclose`/exit. A write-only
/// file whose memfd holds only its size gets its content first (every
/// write so far was mirrored, so the target has the truth).
pub fn mark_stdio(fd: c_int) -> Result<(), HookError> {
    if fdbits::get(fd) & fdbits::FILE == 0 {
        return Ok(());
    }
    let Some((handle, path, materialised)) = with_table(|t| {
        t.get(fd)
            .filter(|f| f.writable)
            .map(|f| (f.handle, f.path.clone(), f.materialised))
    }) else {
        return Ok(());
    };
    if !materialised {
        if let Some(handle) = handle {
            crate::client::flush(handle)?;
        }
        let data = fetch(&path)?;
        sys::pwrite_fresh(fd, &data)?;
    }
    with_table(|t| {
        if let Some(f) = t.get_mut(fd) {
            f.materialised = true;
            f.stdio = true;
        }
    });
    register_exit_write_back();
    Ok(())
}

/// The whole content of a remote file, through a read-only open.
fn fetch(path: &[u8]) -> Result<Vec<u8>, HookError> {
    let read_only = OpenFlags {
        read: true,
        ..OpenFlags::default()
    };
    let (handle, stat, data, eof) = super::ops::remote_open(path, read_only, 0, READ_AHEAD)?;
    let data = read_rest(handle, data, eof, &stat);
    let _ = crate::client::close_handle(handle);
    data
}

/// Writes back every stdio file; run at exit after stdio flushed.
pub fn write_back_all() -> Result<(), HookError> {
    let fds = with_table(|t| t.one_fd_per_object());
    let mut result = Ok(());
    for fd in fds {
        if let Err(e) = write_back(fd) {
            result = result.and(Err(e));
        }
    }
    result
}

pub(crate) fn register_exit_write_back() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering a plain `extern "C"` function.
        unsafe { libc::atexit(at_exit) };
    });
}

/// Runs before glibc's own exit-time stdio flush: flush the streams into
/// their memfds first, then send the stdio files to the target.
extern "C" fn at_exit() {
    let Some(_guard) = crate::detour::DetourGuard::new() else {
        return;
    };
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: flushing every stream is what exit does next anyway.
        unsafe { libc::fflush(std::ptr::null_mut()) };
        let _ = write_back_all();
    });
}

/// The `open(2)` flags of an `fopen` mode string (`None` for a bad mode,
/// which libc then rejects itself).
pub fn fopen_flags(mode: &[u8]) -> Option<c_int> {
    let (mut flags, rest) = match mode.split_first()? {
        (b'r', rest) => (libc::O_RDONLY, rest),
        (b'w', rest) => (libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC, rest),
        (b'a', rest) => (libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND, rest),
        _ => return None,
    };
    for c in rest.iter().take_while(|c| **c != b',') {
        match c {
            b'+' => flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR,
            b'x' => flags |= libc::O_EXCL,
            b'e' => flags |= libc::O_CLOEXEC,
            _ => {}
        }
    }
    Some(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fopen_modes() {
        for (mode, want) in [
            ("r", libc::O_RDONLY),
            ("rb", libc::O_RDONLY),
            ("r+", libc::O_RDWR),
            ("w", libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC),
            (
                "w+e",
                libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            ),
            ("a", libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND),
            ("a+", libc::O_RDWR | libc::O_CREAT | libc::O_APPEND),
            (
                "wx",
                libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL,
            ),
            ("r,ccs=UTF-8", libc::O_RDONLY),
        ] {
            assert_eq!(fopen_flags(mode.as_bytes()), Some(want), "{mode}");
        }
        assert_eq!(fopen_flags(b"z"), None);
        assert_eq!(fopen_flags(b""), None);
    }
}
