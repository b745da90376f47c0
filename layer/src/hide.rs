//! Keeps the layer's own connection out of the program's sight when it
//! lists its open fds (`/proc/self/fd`, as CPython's `subprocess` tests and
//! fd-closing daemons do).

use std::ffi::CStr;
use std::os::raw::c_char;

use crate::client;

/// Whether `name`, an entry just read from the directory stream `dirp`, is
/// the layer's connection in a listing of this process's fds.
///
/// The name test (one parse, one atomic load) runs for every entry; the
/// directory test (a `readlink`) only when the name is our fd's number.
///
/// # Safety
/// `dirp` is a live glibc stream and `name` a NUL-terminated entry name.
pub unsafe fn is_own_fd_entry(dirp: *mut libc::DIR, name: *const c_char) -> bool {
    let ours = client::current_fd();
    if ours < 0 {
        return false;
    }
    // SAFETY: per the contract.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    if parse_fd(name) != Some(ours) {
        return false;
    }
    // SAFETY: `dirp` is live; dirfd does not allocate.
    let fd = unsafe { libc::dirfd(dirp) };
    is_own_fd_dir(fd)
}

fn parse_fd(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 9 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter().try_fold(0i32, |n, d| {
        n.checked_mul(10)?.checked_add(i32::from(d - b'0'))
    })
}

/// Whether `fd` is an open `/proc/<our pid>/fd` (or a thread's) directory.
fn is_own_fd_dir(fd: i32) -> bool {
    let mut link = [0u8; 64];
    let path = crate::file::sys::proc_path(fd);
    // SAFETY: NUL-terminated path, buffer and its length.
    let n = unsafe { libc::readlink(path.as_ptr().cast(), link.as_mut_ptr().cast(), link.len()) };
    let Ok(n) = usize::try_from(n) else {
        return false;
    };
    let target = &link[..n];
    let pid = std::process::id().to_string();
    let Some(rest) = target
        .strip_prefix(b"/proc/")
        .and_then(|r| r.strip_prefix(pid.as_bytes()))
    else {
        return false;
    };
    rest == b"/fd" || (rest.starts_with(b"/task/") && rest.ends_with(b"/fd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fd_names_only() {
        assert_eq!(parse_fd(b"19936"), Some(19936));
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b"12a"), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn recognises_our_fd_directory_and_nothing_else() {
        let fd_dir = std::fs::File::open("/proc/self/fd").unwrap();
        let proc_dir = std::fs::File::open("/proc").unwrap();
        use std::os::fd::AsRawFd;
        assert!(is_own_fd_dir(fd_dir.as_raw_fd()));
        assert!(!is_own_fd_dir(proc_dir.as_raw_fd()));
    }
}
