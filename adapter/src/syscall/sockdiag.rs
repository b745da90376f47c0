//! The inodes of the TCP sockets listening in this network namespace,
//! asked of the kernel over `NETLINK_SOCK_DIAG` (a dump filtered to the
//! `LISTEN` state, so its size is the number of listeners, not of
//! connections). The supervisor uses it to see that a program closed a
//! listener: `close(2)` is not stopped by the filter (it is too frequent).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
/// `sizeof(struct nlmsghdr)`.
const HEADER: usize = 16;
/// `sizeof(struct inet_diag_req_v2)`: family, protocol, ext, pad, states,
/// then a 48-byte `inet_diag_sockid`.
const REQUEST: usize = 56;
/// `offsetof(struct inet_diag_msg, idiag_inode)`: 4 bytes, the sockid,
/// then expires, rqueue, wqueue and uid.
const INODE_AT: usize = 4 + 48 + 16;

/// The inodes of every listening TCP socket (IPv4 and IPv6).
pub fn listening_inodes() -> io::Result<HashSet<u64>> {
    // SAFETY: plain syscall; the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that we own.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut inodes = HashSet::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        dump(&socket, family as u8, &mut inodes)?;
    }
    Ok(inodes)
}

fn request(family: u8) -> [u8; HEADER + REQUEST] {
    let mut msg = [0u8; HEADER + REQUEST];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    msg[0..4].copy_from_slice(&((HEADER + REQUEST) as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&1u32.to_ne_bytes());
    msg[HEADER] = family;
    msg[HEADER + 1] = libc::IPPROTO_TCP as u8;
    msg[HEADER + 4..HEADER + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    msg
}

fn dump(socket: &OwnedFd, family: u8, inodes: &mut HashSet<u64>) -> io::Result<()> {
    let msg = request(family);
    // SAFETY: `msg` is valid for its length; the kernel is the peer.
    let sent = unsafe { libc::send(socket.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if parse(&buf[..n as usize], inodes)? {
            return Ok(());
        }
    }
}

/// Adds the inodes of one datagram of answers; `true` at the end of the
/// dump.
fn parse(mut data: &[u8], inodes: &mut HashSet<u64>) -> io::Result<bool> {
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let truncated = || io::Error::new(io::ErrorKind::InvalidData, "truncated sock_diag answer");
    while data.len() >= HEADER {
        let len = word(data, 0).ok_or_else(truncated)? as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < HEADER || len > data.len() {
            return Err(truncated());
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = word(data, HEADER).map_or(libc::EIO, |e| -(e as i32));
                return Err(io::Error::from_raw_os_error(errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                let inode = word(&data[HEADER..len], INODE_AT).ok_or_else(truncated)?;
                inodes.insert(u64::from(inode));
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        data = data.get(next..).unwrap_or_default();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use super::*;

    fn inode_of(fd: i32) -> u64 {
        // SAFETY: all-zero is a valid stat buffer for fstat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid fd and buffer.
        assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
        st.st_ino
    }

    #[test]
    fn a_listener_is_listed_until_closed_and_a_connection_never() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let client = std::net::TcpStream::connect(v4.local_addr().unwrap()).unwrap();
        let (v4_ino, v6_ino) = (inode_of(v4.as_raw_fd()), inode_of(v6.as_raw_fd()));
        let listed = listening_inodes().unwrap();
        assert!(listed.contains(&v4_ino) && listed.contains(&v6_ino));
        assert!(!listed.contains(&inode_of(client.as_raw_fd())));
        drop(v4);
        let listed = listening_inodes().unwrap();
        assert!(!listed.contains(&v4_ino) && listed.contains(&v6_ino));
    }

    #[test]
    fn a_kernel_error_is_reported() {
        let mut msg = vec![0u8; HEADER + 4];
        msg[0..4].copy_from_slice(&((HEADER + 4) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        msg[HEADER..].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse(&msg, &mut HashSet::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(parse(&msg[..HEADER - 1], &mut HashSet::new()).is_ok_and(|done| !done));
    }
}
