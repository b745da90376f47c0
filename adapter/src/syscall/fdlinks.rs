//! Paths through a program's fd links (`/proc/self/fd/N`,
//! `/proc/thread-self/fd/N`, `/proc/PID/fd/N`, `/dev/fd/N`) that name a
//! remote file or directory the supervisor installed. The kernel would
//! see a memfd (`/memfd:mirrord:NAME (deleted)`) or a laid-out listing;
//! a program expects the file it opened. So such a path is routed as the
//! remote path it stands for: `readlink` gives that path, `open` opens the
//! remote file again (its content in the target now), `stat` and `access`
//! ask the target about it. Links of the program's own local files are
//! left to the kernel.
//!
//! Remote files are known by the inode of their memfd, recorded when the
//! fd is installed; the link's memfd name must match too, so a recycled
//! inode number is never taken for ours.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use super::listings::Listings;

/// The name prefix of the supervisor's memfds, as `/proc/*/fd` shows it.
const MEMFD_LINK: &[u8] = b"/memfd:mirrord:";
/// Remembered files past which the table starts again (programs do not
/// keep that many remote files open).
const MAX_REMEMBERED: usize = 4096;

#[derive(Default)]
pub struct FdLinks {
    /// memfd inode → the remote path.
    remote: Mutex<HashMap<u64, Vec<u8>>>,
}

/// The remote path an fd link path stands for.
#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub path: Vec<u8>,
    /// The path was the link itself (nothing below it): what `readlink`
    /// answers.
    pub link: bool,
}

impl FdLinks {
    /// Records that `fd` (a memfd) stands for the remote `path`.
    pub fn installed(&self, fd: BorrowedFd<'_>, path: &[u8]) {
        let Some(inode) = inode(fd) else {
            return;
        };
        if let Ok(mut remote) = self.remote.lock() {
            if remote.len() >= MAX_REMEMBERED {
                remote.clear();
            }
            remote.insert(inode, path.to_vec());
        }
    }

    /// The remote path `abs` (absolute, normalised) names, when it goes
    /// through an fd link of thread `tid` to a remote file or directory.
    pub fn resolve(&self, tid: u32, abs: &[u8], listings: &Listings) -> Option<Resolved> {
        let (owner, fd, rest) = parse(abs)?;
        let owner = owner.unwrap_or(tid);
        let proc_link = format!("/proc/{owner}/fd/{fd}");
        let target = std::fs::read_link(&proc_link).ok()?;
        let target = target.as_os_str().as_bytes();
        if let Some(name) = target.strip_prefix(MEMFD_LINK) {
            // A file: nothing lies below it (the kernel says ENOTDIR).
            if !rest.is_empty() {
                return None;
            }
            let inode = std::fs::metadata(&proc_link).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            })?;
            let path = self.remote.lock().ok()?.get(&inode)?.clone();
            let base = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
            let shown = name.strip_suffix(b" (deleted)").unwrap_or(name);
            // The memfd's name is the base name, cut at 200 bytes.
            if shown != &base[..base.len().min(200)] {
                return None;
            }
            return Some(Resolved { path, link: true });
        }
        if !target.starts_with(b"/") {
            return None;
        }
        let mut local = target.to_vec();
        local.extend_from_slice(rest);
        let mapped = listings.to_remote(local.clone());
        (mapped != local).then_some(Resolved {
            path: mapped,
            link: rest.is_empty(),
        })
    }
}

/// Splits an fd link path: the process whose fd it is (`None`: the
/// caller's), the fd, and what follows it (empty, or from a `/`).
fn parse(abs: &[u8]) -> Option<(Option<u32>, u32, &[u8])> {
    let (owner, after) = if let Some(after) = abs.strip_prefix(b"/dev/fd/") {
        (None, after)
    } else {
        let after = abs.strip_prefix(b"/proc/")?;
        let slash = after.iter().position(|b| *b == b'/')?;
        let (who, after) = after.split_at(slash);
        let after = after.strip_prefix(b"/fd/")?;
        let owner = match who {
            b"self" | b"thread-self" => None,
            digits => Some(std::str::from_utf8(digits).ok()?.parse().ok()?),
        };
        (owner, after)
    };
    let end = after.iter().position(|b| *b == b'/').unwrap_or(after.len());
    let (number, rest) = after.split_at(end);
    if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let fd = std::str::from_utf8(number).ok()?.parse().ok()?;
    Some((owner, fd, rest))
}

fn inode(fd: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: all-zero is a valid stat buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and buffer.
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st.st_ino)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, FromRawFd};

    use super::*;

    /// The owner, fd and rest of a link path.
    type Parts<'a> = (Option<u32>, u32, &'a str);

    #[test]
    fn fd_link_paths_are_told_apart() {
        let rows: &[(&str, Option<Parts>)] = &[
            ("/proc/self/fd/3", Some((None, 3, ""))),
            ("/proc/thread-self/fd/12/a/b", Some((None, 12, "/a/b"))),
            ("/proc/4242/fd/0", Some((Some(4242), 0, ""))),
            ("/dev/fd/7", Some((None, 7, ""))),
            ("/proc/self/fdinfo/3", None),
            ("/proc/self/fd", None),
            ("/proc/self/fd/x", None),
            ("/proc/self/exe", None),
            ("/app/fd/3", None),
        ];
        for (path, expected) in rows {
            let got = parse(path.as_bytes()).map(|(o, f, r)| (o, f, r.to_vec()));
            let expected = expected.map(|(o, f, r)| (o, f, r.as_bytes().to_vec()));
            assert_eq!(got, expected, "{path}");
        }
    }

    fn memfd(name: &str) -> std::fs::File {
        let name = std::ffi::CString::new(name).unwrap();
        // SAFETY: a NUL-terminated name; the fd is owned at once.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh fd that we own.
        unsafe { std::fs::File::from_raw_fd(fd) }
    }

    #[test]
    fn an_installed_memfd_names_its_remote_file_and_another_does_not() {
        let links = FdLinks::default();
        let listings = Listings::new();
        let tid = std::process::id();
        let ours = memfd("mirrord:message.txt");
        links.installed(ours.as_fd(), b"/app/config/message.txt");
        let path = format!("/proc/self/fd/{}", ours.as_raw_fd());
        assert_eq!(
            links.resolve(tid, path.as_bytes(), &listings),
            Some(Resolved {
                path: b"/app/config/message.txt".to_vec(),
                link: true
            })
        );
        let below = format!("{path}/x");
        assert_eq!(links.resolve(tid, below.as_bytes(), &listings), None);
        // Named like ours but never installed; and a plain local file.
        let other = memfd("mirrord:message.txt");
        let other_path = format!("/dev/fd/{}", other.as_raw_fd());
        assert_eq!(links.resolve(tid, other_path.as_bytes(), &listings), None);
        let local = std::fs::File::open("/proc/self/status").unwrap();
        let local_path = format!("/proc/{tid}/fd/{}", local.as_raw_fd());
        assert_eq!(links.resolve(tid, local_path.as_bytes(), &listings), None);
    }
}
