//! Raw syscalls on the layer's memfds: they never re-enter our hooks, and
//! leave the program's errno alone unless the call is the program's.

use std::os::raw::c_int;

use crate::error::{errno, HookError};

fn check(rc: libc::c_long) -> Result<libc::c_long, HookError> {
    if rc < 0 {
        Err(HookError::BadArgument(errno()))
    } else {
        Ok(rc)
    }
}

/// A memfd at the lowest free fd, named after the file for
/// `/proc/PID/fd` readers (`/memfd:mirrord:NAME (deleted)`).
pub fn memfd(path: &[u8], cloexec: bool) -> Result<c_int, HookError> {
    let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    let mut name = [0u8; 200];
    let prefix = b"mirrord:";
    name[..prefix.len()].copy_from_slice(prefix);
    let take = base.len().min(name.len() - prefix.len() - 1);
    name[prefix.len()..prefix.len() + take].copy_from_slice(&base[..take]);
    if name[..prefix.len() + take].contains(&0) {
        return Err(HookError::Internal("NUL in a path"));
    }
    let flags = if cloexec { libc::MFD_CLOEXEC } else { 0 };
    // SAFETY: `name` is NUL-terminated (zeroed tail).
    let fd = check(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) })?;
    Ok(fd as c_int)
}

pub fn pwrite_all(fd: c_int, mut data: &[u8], mut off: u64) -> Result<(), HookError> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for its length.
        let n = check(unsafe {
            libc::syscall(libc::SYS_pwrite64, fd, data.as_ptr(), data.len(), off)
        })?;
        data = &data[n as usize..];
        off += n as u64;
    }
    Ok(())
}

/// Writes `data` at offset 0 of the memfd behind `fd` through a fresh
/// write-only description (the program's may be read-only or append).
pub fn pwrite_fresh(fd: c_int, data: &[u8]) -> Result<(), HookError> {
    let path = proc_path(fd);
    // SAFETY: `path` is NUL-terminated.
    let wr = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        )
    };
    if wr < 0 {
        return Err(HookError::BadArgument(errno()));
    }
    let result = pwrite_all(wr as c_int, data, 0);
    close(wr as c_int);
    result
}

pub fn ftruncate(fd: c_int, len: u64) -> Result<(), HookError> {
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_ftruncate, fd, len) }).map(drop)
}

pub fn close(fd: c_int) {
    // SAFETY: an fd we own.
    unsafe { libc::syscall(libc::SYS_close, fd) };
}

/// Gives `fd` (a fresh read-write memfd) the access mode and append
/// flag of `flags`: a read-only open must fail `write` with `EBADF`.
/// Reopening `/proc/self/fd/N` makes a new open file description of the
/// same memfd with the wanted mode; without `/proc` the fd stays
/// read-write.
pub fn set_access(fd: c_int, flags: c_int) -> Result<(), HookError> {
    let acc = flags & libc::O_ACCMODE;
    let append = flags & libc::O_APPEND;
    if acc != libc::O_RDWR {
        let path = proc_path(fd);
        // SAFETY: `path` is NUL-terminated.
        let again = unsafe {
            libc::syscall(
                libc::SYS_openat,
                libc::AT_FDCWD,
                path.as_ptr(),
                acc | append | libc::O_CLOEXEC,
            )
        };
        if again >= 0 {
            let cloexec = flags & libc::O_CLOEXEC;
            // SAFETY: both fds are ours.
            let rc = unsafe { libc::syscall(libc::SYS_dup3, again, fd, cloexec) };
            close(again as c_int);
            return check(rc).map(drop);
        }
    }
    if append != 0 {
        // SAFETY: plain syscall.
        check(unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, append) })?;
    }
    Ok(())
}

/// `/proc/self/fd/<fd>`, NUL-terminated, built on the stack.
pub(crate) fn proc_path(fd: c_int) -> [u8; 32] {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut buf = [0u8; 32];
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    // The digits backwards into a scratch buffer, then in order.
    let mut digits = [0u8; 10];
    let mut n = fd.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (i, digit) in digits[..len].iter().rev().enumerate() {
        buf[PREFIX.len() + i] = *digit;
    }
    buf
}

pub fn is_append(fd: c_int) -> bool {
    // SAFETY: plain syscall.
    let fl = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    fl >= 0 && fl as c_int & libc::O_APPEND != 0
}

/// Where the `n` bytes just written started: before the file position
/// (`position`) or the end of the file (an append).
pub fn end_of_write(fd: c_int, position: bool, n: usize) -> Result<u64, HookError> {
    let end = if position {
        // SAFETY: plain syscall.
        check(unsafe { libc::syscall(libc::SYS_lseek, fd, 0 as libc::off_t, libc::SEEK_CUR) })?
            as u64
    } else {
        size(fd).ok_or(HookError::Internal("fstat of a memfd failed"))?
    };
    Ok(end.saturating_sub(n as u64))
}

pub fn size(fd: c_int) -> Option<u64> {
    // SAFETY: `st` is a valid out pointer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::syscall(libc::SYS_fstat, fd, &mut st) };
    (rc == 0).then_some(st.st_size as u64)
}

/// The whole content of a memfd, read through a fresh read-only
/// description (the program's fd may be write-only).
pub fn read_whole(fd: c_int) -> Result<Vec<u8>, HookError> {
    read_range(fd, 0, usize::MAX)
}

/// Up to `len` bytes of a memfd from `start`, as [`read_whole`] does.
pub fn read_range(fd: c_int, start: u64, len: usize) -> Result<Vec<u8>, HookError> {
    let path = proc_path(fd);
    // SAFETY: `path` is NUL-terminated.
    let rd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    let (rd, own) = if rd >= 0 {
        (rd as c_int, true)
    } else {
        (fd, false)
    };
    let available = size(rd).unwrap_or(0).saturating_sub(start) as usize;
    let mut data = Vec::with_capacity(available.min(len));
    let mut chunk = vec![0u8; 1 << 16];
    let result = loop {
        let want = chunk.len().min(len - data.len());
        if want == 0 {
            break Ok(());
        }
        // SAFETY: `chunk` is valid for `want` bytes.
        let n = unsafe {
            libc::syscall(
                libc::SYS_pread64,
                rd,
                chunk.as_mut_ptr(),
                want,
                start + data.len() as u64,
            )
        };
        match n {
            0 => break Ok(()),
            n if n > 0 => data.extend_from_slice(&chunk[..n as usize]),
            _ => break Err(HookError::BadArgument(errno())),
        }
    };
    if own {
        close(rd);
    }
    result.map(|()| data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_name_the_fd_and_end_in_nul() {
        for (fd, text) in [
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (1_048_575, "1048575"),
            (c_int::MAX, "2147483647"),
        ] {
            let path = proc_path(fd);
            let end = path.iter().position(|&b| b == 0).unwrap();
            assert_eq!(&path[..end], format!("/proc/self/fd/{text}").as_bytes());
        }
    }
}
