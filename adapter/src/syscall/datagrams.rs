//! Unconnected UDP on the syscall path: `sendto` with a destination and
//! `recvfrom` asking for the source (the filter stops only those, see
//! [`ADDRESSED`](super::filter::ADDRESSED)).
//!
//! As in the layer, a destination the layer's
//! [`OutgoingPolicy`](mirrord_config::policy::OutgoingPolicy) routes remote
//! gets one intproxy relay per (socket, destination), made on the first
//! send. The seccomp answer cannot change a call's arguments, so the
//! supervisor sends the datagram itself, from its copy of the program's
//! socket (the same socket, so the relay learns the program's port), to
//! the relay, and answers the call with the byte count. `recvfrom` on a
//! socket with relays is made by the supervisor too, so that a datagram
//! from a relay reports the remote address it stands for; the waiting of
//! a blocking socket happens in the supervisor (bounded by the socket's
//! `SO_RCVTIMEO`, and ended when the caller goes away).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mirrord_config::policy::{Protocol, Route};
use mirrord_protocol::{LayerResponse, NetProtocol};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tracing::debug;

use super::memory;
use super::net::{
    filled_sockaddr, inode, parse_sockaddr, sockaddr, sockaddr_bytes, socket_of, sockopt,
    write_sockaddr,
};
use super::notify::{Notification, Reply};
use super::supervisor::{Outcome, Supervisor};
use crate::intproxy::outgoing;

/// The largest datagram (IPv4's and IPv6's payload limit, rounded up).
const MAX_DATAGRAM: usize = 1 << 16;
/// How often a waiting `recvfrom` checks that its caller is still there.
const RECHECK: Duration = Duration::from_millis(200);

/// The relays of the programs' unconnected UDP sockets, by socket inode:
/// (remote destination, relay) pairs, addresses in plain (not v4-mapped)
/// form.
#[derive(Default)]
pub struct Datagrams {
    relays: Mutex<HashMap<u64, Vec<(SocketAddr, SocketAddr)>>>,
}

impl Datagrams {
    fn relay_for(&self, inode: u64, remote: SocketAddr) -> Option<SocketAddr> {
        let relays = self.relays.lock().ok()?;
        let pairs = relays.get(&inode)?;
        pairs
            .iter()
            .find(|(r, _)| *r == remote)
            .map(|(_, relay)| *relay)
    }

    /// Records `relay` for `remote` unless another was recorded meanwhile;
    /// the relay to use.
    fn add(&self, inode: u64, remote: SocketAddr, relay: SocketAddr) -> SocketAddr {
        let Ok(mut relays) = self.relays.lock() else {
            return relay;
        };
        let pairs = relays.entry(inode).or_default();
        match pairs.iter().find(|(r, _)| *r == remote) {
            Some((_, first)) => *first,
            None => {
                pairs.push((remote, relay));
                relay
            }
        }
    }

    fn remote_behind(&self, inode: u64, from: SocketAddr) -> Option<SocketAddr> {
        let relays = self.relays.lock().ok()?;
        let pairs = relays.get(&inode)?;
        pairs
            .iter()
            .find(|(_, r)| *r == from)
            .map(|(remote, _)| *remote)
    }

    /// Whether socket `inode` has relays.
    fn has(&self, inode: u64) -> bool {
        self.relays.lock().is_ok_and(|r| r.contains_key(&inode))
    }

    fn is_empty(&self) -> bool {
        self.relays.lock().map_or(true, |r| r.is_empty())
    }
}

/// `a` with a v4-mapped IPv6 address made IPv4.
fn plain(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The destination of a stopped `sendto`, when it is an internet address.
fn destination(n: &Notification) -> Option<SocketAddr> {
    let len = (n.args[5] as usize).min(128);
    let raw = memory::read(n.pid, n.args[4], len).ok()?;
    parse_sockaddr(&raw).map(plain)
}

/// Whether the `sendto`/`recvfrom` runs as made, decided without waiting:
/// a destination the policy keeps local, or a socket without relays.
pub fn continues_at_once(sup: &Supervisor, n: &Notification) -> bool {
    match n.nr {
        libc::SYS_sendto => destination(n)
            .is_none_or(|to| sup.policy.outgoing.route(Protocol::Udp, to, &[]) == Route::Local),
        libc::SYS_recvfrom => {
            let relayed = || {
                socket_inode(n.pid, n.args[0] as i32)
                    .is_some_and(|i| sup.datagrams.has(i) || sup.sockets.get(i).is_some())
            };
            (sup.datagrams.is_empty() && sup.sockets.is_empty()) || !relayed()
        }
        _ => true,
    }
}

/// The inode of the socket at fd `fd` of thread `tid`, from its
/// `/proc` link (`socket:[N]`): cheaper than copying the fd.
fn socket_inode(tid: u32, fd: i32) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
    let text = std::str::from_utf8(link.as_os_str().as_bytes()).ok()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// `sendto(fd, buf, len, flags, dest, dest_len)` to a remote destination
/// on a UDP socket: sent to the destination's relay.
pub async fn sendto(sup: &Supervisor, n: &Notification) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let Some(remote) = destination(n) else {
        return continue_;
    };
    let Ok(socket) = socket_of(n.pid, n.args[0] as i32) else {
        return continue_;
    };
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
        return continue_;
    }
    let v6 = match sockopt(&socket, libc::SO_DOMAIN) {
        Some(libc::AF_INET6) => true,
        Some(libc::AF_INET) if remote.is_ipv4() => false,
        // An IPv6 destination on an IPv4 socket: the kernel's error.
        _ => return continue_,
    };
    if sup.policy.outgoing.route(Protocol::Udp, remote, &[]) == Route::Local {
        return continue_;
    }
    let len = n.args[2] as usize;
    if len > MAX_DATAGRAM {
        return Outcome::Reply(Reply::Errno(libc::EMSGSIZE));
    }
    let Ok(data) = memory::read(n.pid, n.args[1], len) else {
        return Outcome::Reply(Reply::Errno(libc::EFAULT));
    };
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    let Some(ino) = inode(&socket) else {
        return continue_;
    };
    let relay = match sup.datagrams.relay_for(ino, remote) {
        Some(relay) => relay,
        None => match open_relay(sup, remote).await {
            Ok(relay) => sup.datagrams.add(ino, remote, relay),
            Err(errno) => return Outcome::Reply(Reply::Errno(errno)),
        },
    };
    let (to, to_len) = sockaddr(relay, v6);
    // Never blocks the supervisor: a loopback datagram does not wait.
    let flags = (n.args[3] as i32) | libc::MSG_DONTWAIT;
    // SAFETY: `data` and `to` are valid for the call.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            flags,
            (&to as *const libc::sockaddr_storage).cast(),
            to_len as libc::socklen_t,
        )
    };
    debug!(%remote, %relay, sent, "datagram to the target");
    if sent < 0 {
        return Outcome::Reply(Reply::Errno(last_errno()));
    }
    Outcome::Reply(Reply::Value(sent as i64))
}

async fn open_relay(sup: &Supervisor, remote: SocketAddr) -> Result<SocketAddr, i32> {
    match outgoing::connect(&sup.agent, NetProtocol::Udp, remote).await {
        Ok((LayerResponse::Outgoing { relay, .. }, held)) => {
            if let Some(held) = held {
                sup.hold_relay(held);
            }
            Ok(plain(relay))
        }
        Ok((other, _)) => {
            debug!(?other, "unexpected answer to a UDP connect");
            Err(libc::EIO)
        }
        Err(e) => Err(e.errno),
    }
}

/// `recvfrom(fd, buf, len, flags, src, src_len)` on a socket with relays
/// (or connected to one): received here, the source reported as the
/// remote the relay stands for.
pub async fn recvfrom(sup: &Supervisor, n: &Notification) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let flags = n.args[3] as i32;
    if flags & libc::MSG_ERRQUEUE != 0 {
        return continue_;
    }
    let Ok(socket) = socket_of(n.pid, n.args[0] as i32) else {
        return continue_;
    };
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
        return continue_;
    }
    let Some(ino) = inode(&socket) else {
        return continue_;
    };
    let connected = sup.sockets.get(ino);
    if connected.is_none() && !sup.datagrams.has(ino) {
        return continue_;
    }
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    let (len, buf) = (n.args[2] as usize, n.args[1]);
    let received = match receive(sup, n, &socket, flags, len.min(MAX_DATAGRAM)).await {
        Ok(received) => received,
        Err(outcome) => return outcome,
    };
    let (count, data, from, from_len) = received;
    let copied = data.len().min(len);
    if copied > 0 {
        if let Err(e) = memory::write(n.pid, buf, &data[..copied]) {
            return Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)));
        }
    }
    let (src, src_len) = (n.args[4], n.args[5]);
    if src != 0 && src_len != 0 {
        let kernel = parse_sockaddr(sockaddr_bytes(&from, from_len)).map(plain);
        let remote = kernel.and_then(|k| {
            sup.datagrams
                .remote_behind(ino, k)
                .or_else(|| connected.filter(|_| peer_of(&socket) == Some(k)))
        });
        let v6 = sockopt(&socket, libc::SO_DOMAIN) == Some(libc::AF_INET6);
        let (storage, size) = match remote {
            Some(remote) => sockaddr(remote, v6),
            None => (from, from_len),
        };
        if let Err(errno) = write_sockaddr(n, src, src_len, &storage, size) {
            return Outcome::Reply(Reply::Errno(errno));
        }
    }
    Outcome::Reply(Reply::Value(count as i64))
}

/// What one `recvfrom` got: its result, the bytes, and the source.
type Received = (usize, Vec<u8>, libc::sockaddr_storage, usize);

/// Receives one datagram on `socket` without ever blocking the
/// supervisor's thread: a blocking socket (without `MSG_DONTWAIT`) is
/// waited for here, until its `SO_RCVTIMEO` (`EAGAIN`) or until the
/// caller goes away.
async fn receive(
    sup: &Supervisor,
    n: &Notification,
    socket: &OwnedFd,
    flags: i32,
    room: usize,
) -> Result<Received, Outcome> {
    // SAFETY: plain fcntl on our copy (the status flags are the socket's).
    let status = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_GETFL) };
    let blocking = status >= 0 && status & libc::O_NONBLOCK == 0 && flags & libc::MSG_DONTWAIT == 0;
    let deadline = receive_timeout(socket).map(|t| Instant::now() + t);
    let mut data = vec![0u8; room];
    let mut waiter: Option<AsyncFd<OwnedFd>> = None;
    loop {
        // SAFETY: the pointers are valid for the call (`filled_sockaddr`).
        let (rc, from, from_len) = filled_sockaddr(|addr, addr_len| unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                data.as_mut_ptr().cast(),
                data.len(),
                flags | libc::MSG_DONTWAIT,
                addr,
                addr_len,
            ) as libc::c_int
        });
        if rc >= 0 {
            data.truncate((rc as usize).min(room));
            return Ok((rc as usize, data, from, from_len));
        }
        let errno = last_errno();
        if errno != libc::EAGAIN || !blocking {
            return Err(Outcome::Reply(Reply::Errno(errno)));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Outcome::Reply(Reply::Errno(libc::EAGAIN)));
        }
        if waiter.is_none() {
            let failed = |e: std::io::Error| {
                Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EIO)))
            };
            let copy = socket.try_clone().map_err(failed)?;
            // SAFETY: the copy moves into the AsyncFd and stays open, the
            // same descriptor, until the AsyncFd is dropped.
            let registered = unsafe { AsyncFd::register_with_interest(copy, Interest::READABLE) };
            waiter = Some(registered.map_err(|e| failed(e.into()))?);
        }
        if let Some(waiter) = &waiter {
            if let Ok(Ok(mut ready)) = tokio::time::timeout(RECHECK, waiter.readable()).await {
                ready.clear_ready();
            }
        }
        if !sup.listener.id_valid(n.id) {
            return Err(Outcome::Gone);
        }
    }
}

/// The socket's `SO_RCVTIMEO`, when set.
fn receive_timeout(socket: &OwnedFd) -> Option<Duration> {
    // SAFETY: all-zero is a valid timeval.
    let mut tv: libc::timeval = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    let timeout = Duration::new(tv.tv_sec.max(0) as u64, (tv.tv_usec.max(0) as u32) * 1000);
    (rc == 0 && !timeout.is_zero()).then_some(timeout)
}

/// The kernel's peer of a connected socket (a relay), in plain form.
fn peer_of(socket: &OwnedFd) -> Option<SocketAddr> {
    // SAFETY: the pointers are valid for the call (`filled_sockaddr`).
    let (rc, storage, len) =
        filled_sockaddr(|addr, len| unsafe { libc::getpeername(socket.as_raw_fd(), addr, len) });
    (rc == 0).then(|| parse_sockaddr(sockaddr_bytes(&storage, len)).map(plain))?
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relays_are_per_socket_and_destination_and_the_first_stays() {
        let d = Datagrams::default();
        assert!(d.is_empty());
        let dns: SocketAddr = "10.0.0.10:53".parse().unwrap();
        let echo: SocketAddr = "10.0.0.11:7".parse().unwrap();
        let r1: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let r2: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        assert_eq!(d.add(7, dns, r1), r1);
        // A relay made meanwhile for the same pair gives way to the first.
        assert_eq!(d.add(7, dns, r2), r1);
        assert_eq!(d.add(7, echo, r2), r2);
        assert_eq!(d.relay_for(7, dns), Some(r1));
        assert_eq!(d.relay_for(8, dns), None);
        assert_eq!(d.remote_behind(7, r2), Some(echo));
        assert_eq!(d.remote_behind(7, "127.0.0.1:9".parse().unwrap()), None);
        assert!(d.has(7) && !d.has(8) && !d.is_empty());
    }

    #[test]
    fn v4_mapped_addresses_are_compared_plain() {
        let mapped: SocketAddr = "[::ffff:127.0.0.2]:7002".parse().unwrap();
        assert_eq!(plain(mapped), "127.0.0.2:7002".parse().unwrap());
        let v6: SocketAddr = "[::1]:53".parse().unwrap();
        assert_eq!(plain(v6), v6);
    }

    #[test]
    fn a_socket_names_its_inode_in_proc() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let owned = OwnedFd::from(socket.try_clone().unwrap());
        let expected = inode(&owned);
        assert!(expected.is_some());
        assert_eq!(
            socket_inode(std::process::id(), socket.as_raw_fd()),
            expected
        );
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(socket_inode(std::process::id(), file.as_raw_fd()), None);
    }
}
