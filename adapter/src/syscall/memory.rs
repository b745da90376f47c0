//! Reading and writing a stopped process's memory (`process_vm_readv`,
//! `process_vm_writev`), and the paths its fds and working directory
//! name. Whatever is read here may be stale by the time it is used: the
//! caller checks that the notification is still pending afterwards.

use std::io;

/// The longest path read from a process (`PATH_MAX`, NUL included).
pub const PATH_MAX: usize = libc::PATH_MAX as usize;
const PAGE: u64 = 4096;

/// Reads `len` bytes at `addr` of process `pid`.
pub fn read(pid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = read_into(pid, addr, &mut buf)?;
    if n < len {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(buf)
}

/// Reads what it can of `buf.len()` bytes at `addr` (a read may stop at an
/// unmapped page).
fn read_into(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers `buf`; the remote side is checked by the kernel.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Reads a NUL-terminated string at `addr`, at most [`PATH_MAX`] bytes
/// (`ENAMETOOLONG` beyond). Reads page by page so that a string at the end
/// of a mapping is read without touching the next page.
pub fn read_cstr(pid: u32, addr: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < PATH_MAX {
        let to_page_end = (PAGE - at % PAGE) as usize;
        let mut chunk = vec![0u8; to_page_end.min(PATH_MAX - out.len())];
        let n = read_into(pid, at, &mut chunk)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        if let Some(nul) = chunk[..n].iter().position(|b| *b == 0) {
            out.extend_from_slice(&chunk[..nul]);
            return Ok(out);
        }
        out.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// Writes `data` at `addr` of process `pid`.
pub fn write(pid: u32, addr: u64, data: &[u8]) -> io::Result<()> {
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: `local` covers `data`; the remote side is checked by the kernel.
    let n = unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if (n as usize) < data.len() => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        _ => Ok(()),
    }
}

/// `path` made absolute against the directory `dirfd` names in process
/// `pid` (`AT_FDCWD`: its working directory), and normalised lexically as
/// the layer does (`..` before symlinks).
pub fn absolute(pid: u32, dirfd: i32, path: &[u8]) -> io::Result<Vec<u8>> {
    if path.starts_with(b"/") {
        return Ok(normalise(b"/", path));
    }
    let link = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else if dirfd >= 0 {
        format!("/proc/{pid}/fd/{dirfd}")
    } else {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    };
    let base = std::fs::read_link(link)?;
    use std::os::unix::ffi::OsStrExt;
    Ok(normalise(base.as_os_str().as_bytes(), path))
}

/// `path` against the absolute `base`, without `.`, `..` or repeated `/`.
pub fn normalise(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let joined = if path.starts_with(b"/") {
        [path].to_vec()
    } else {
        [base, path].to_vec()
    };
    for piece in joined {
        for part in piece.split(|b| *b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => {
                    parts.pop();
                }
                name => parts.push(name),
            }
        }
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for part in &parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// The thread-group id (PID) of thread `tid`.
pub fn tgid(tid: u32) -> io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_the_layer() {
        let rows: &[(&str, &str, &str)] = &[
            ("/home/u", "a/b", "/home/u/a/b"),
            ("/home/u", "../x", "/home/x"),
            ("/", "../../etc//hosts", "/etc/hosts"),
            ("/w", "/app/./config/../config/m.txt", "/app/config/m.txt"),
            ("/w", ".", "/w"),
            ("/", "", "/"),
        ];
        for (base, path, expected) in rows {
            assert_eq!(
                normalise(base.as_bytes(), path.as_bytes()),
                expected.as_bytes(),
                "{base} + {path}"
            );
        }
    }

    #[test]
    fn reads_strings_and_bytes_of_a_process() {
        let pid = std::process::id();
        let text = b"/some/path\0trailing".to_vec();
        let addr = text.as_ptr() as u64;
        assert_eq!(read_cstr(pid, addr).unwrap(), b"/some/path");
        assert_eq!(read(pid, addr, 5).unwrap(), b"/some");
        let mut target = [0u8; 4];
        write(pid, target.as_mut_ptr() as u64, b"abcd").unwrap();
        assert_eq!(std::hint::black_box(target), *b"abcd");
        assert_eq!(
            read_cstr(pid, 0).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
        assert_eq!(tgid(pid).unwrap(), pid);
        let cwd = std::env::current_dir().unwrap();
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(
            absolute(pid, libc::AT_FDCWD, b"x").unwrap(),
            normalise(cwd.as_os_str().as_bytes(), b"x")
        );
    }
}
