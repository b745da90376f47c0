//! `connect`, `getpeername`, `listen` and `accept` stopped by the filter. The route comes from the layer's
//! [`OutgoingPolicy`](mirrord_config::policy::OutgoingPolicy); a remote
//! connection is made by the agent, and the program's own socket (a copy
//! of it taken with `pidfd_getfd`, the same open socket) is connected to
//! the intproxy's relay. Its options (non-blocking, timeouts) stay the
//! program's, and the call's result is that `connect`'s. `getpeername` of
//! such a socket names the remote peer, not the relay.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use mirrord_config::policy::{Protocol, Route};
use mirrord_protocol::{LayerResponse, NetProtocol};
use tracing::debug;

use super::memory;
use super::notify::{Notification, Reply};
use super::supervisor::{Outcome, Supervisor};
use crate::intproxy::outgoing;

/// `connect(fd, addr, len)`.
pub async fn connect(sup: &Supervisor, n: &Notification) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let fd = n.args[0] as i32;
    let len = (n.args[2] as usize).min(128);
    let Ok(raw) = memory::read(n.pid, n.args[1], len) else {
        return continue_;
    };
    let Some(remote) = parse_sockaddr(&raw) else {
        return continue_;
    };
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    let Ok(socket) = socket_of(n.pid, fd) else {
        return continue_;
    };
    let (protocol, net) = match sockopt(&socket, libc::SO_TYPE) {
        Some(libc::SOCK_STREAM) => (Protocol::Tcp, NetProtocol::Tcp),
        Some(libc::SOCK_DGRAM) => (Protocol::Udp, NetProtocol::Udp),
        _ => return continue_,
    };
    if protocol == Protocol::Tcp && is_connected(&socket) {
        // A second connect on a socket we already connected: the kernel
        // answers (EISCONN, EALREADY).
        return continue_;
    }
    if sup.policy.outgoing.route(protocol, remote, &[]) == Route::Local {
        return continue_;
    }
    debug!(%remote, ?protocol, "connect from the target");
    let relay = match outgoing::connect(&sup.agent, net, remote).await {
        Ok((LayerResponse::Outgoing { relay, .. }, held)) => {
            if let Some(held) = held {
                sup.hold_relay(held);
            }
            relay
        }
        Ok((other, _)) => {
            debug!(?other, "unexpected answer to a connect");
            return Outcome::Reply(Reply::Errno(libc::EIO));
        }
        Err(e) => return Outcome::Reply(Reply::Errno(e.errno)),
    };
    let v6 = sockopt(&socket, libc::SO_DOMAIN) == Some(libc::AF_INET6);
    let result = connect_fd(&socket, relay, v6);
    if matches!(result, Ok(()) | Err(libc::EINPROGRESS)) {
        if let Some(inode) = inode(&socket) {
            sup.sockets.remember(inode, remote);
        }
    }
    match result {
        Ok(()) => Outcome::Reply(Reply::Value(0)),
        Err(errno) => Outcome::Reply(Reply::Errno(errno)),
    }
}

/// `getpeername(fd, addr, addrlen)`: a socket connected to a relay names
/// the remote peer it stands for.
pub async fn getpeername(sup: &Supervisor, n: &Notification) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let Ok(socket) = socket_of(n.pid, n.args[0] as i32) else {
        return continue_;
    };
    let Some(remote) = inode(&socket).and_then(|i| sup.sockets.get(i)) else {
        return continue_;
    };
    if !is_connected(&socket) {
        return continue_;
    }
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    let v6 = sockopt(&socket, libc::SO_DOMAIN) == Some(libc::AF_INET6);
    let (storage, size) = sockaddr(remote, v6);
    match write_sockaddr(n, n.args[1], n.args[2], &storage, size) {
        Ok(()) => Outcome::Reply(Reply::Value(0)),
        Err(errno) => Outcome::Reply(Reply::Errno(errno)),
    }
}

/// Writes the address (`size` bytes of `storage`) where the caller's
/// `addr`/`addrlen` pair says, as the kernel does: truncated to the room
/// `*addrlen` gives, and `*addrlen` set to the whole size.
pub(super) fn write_sockaddr(
    n: &Notification,
    addr: u64,
    addr_len: u64,
    storage: &libc::sockaddr_storage,
    size: usize,
) -> Result<(), i32> {
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EFAULT);
    let room = memory::read(n.pid, addr_len, 4).map_err(errno)?;
    let room = <[u8; 4]>::try_from(room.as_slice()).map_err(|_| libc::EFAULT)?;
    let room = u32::from_ne_bytes(room) as usize;
    let bytes = sockaddr_bytes(storage, size);
    memory::write(n.pid, addr, &bytes[..size.min(room)]).map_err(errno)?;
    memory::write(n.pid, addr_len, &(size as u32).to_ne_bytes()).map_err(errno)
}

/// The first `len` bytes of `storage`.
pub(super) fn sockaddr_bytes(storage: &libc::sockaddr_storage, len: usize) -> &[u8] {
    let len = len.min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `storage` is plain data of at least `len` bytes.
    unsafe {
        std::slice::from_raw_parts((storage as *const libc::sockaddr_storage).cast::<u8>(), len)
    }
}

/// Runs a call that fills a socket address (`getsockname`, `accept4`...)
/// with room for any; its result and the address with its length.
pub(super) fn filled_sockaddr(
    call: impl FnOnce(*mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int,
) -> (libc::c_int, libc::sockaddr_storage, usize) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = call(
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len,
    );
    (rc, storage, len as usize)
}

/// `listen(fd, backlog)`: the socket listens for real (local clients still
/// reach it), then its port is subscribed in the target as the config
/// says (`IncomingConfig::wanted`, as for the layer); stolen connections
/// arrive at it from the intproxy. A mirror subscription the agent lacks
/// keeps the listener local; a refused steal fails the call.
pub async fn listen(sup: &Supervisor, n: &Notification) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let Some(((incoming, id), config)) = &sup.incoming else {
        return continue_;
    };
    let Ok(socket) = socket_of(n.pid, n.args[0] as i32) else {
        return continue_;
    };
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_STREAM) {
        return continue_;
    }
    let Some(bound) = local_addr(&socket) else {
        return continue_;
    };
    let Some(wanted) = config.wanted(bound) else {
        return continue_;
    };
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    // SAFETY: plain syscall on our copy of the program's socket.
    if unsafe { libc::listen(socket.as_raw_fd(), n.args[1] as i32) } != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        return Outcome::Reply(Reply::Errno(errno.unwrap_or(libc::EINVAL)));
    }
    let steal = wanted.steal;
    let subscription = mirrord_protocol::Subscription::new(
        wanted.port,
        steal,
        wanted.take_over,
        wanted.http_filter,
    );
    let app = mirrord_protocol::reachable(bound);
    debug!(%bound, port = wanted.port, steal, "listen in the target");
    match incoming.listen(*id, subscription, app).await {
        Ok(_) => {
            if let Some(inode) = inode(&socket) {
                sup.sockets.listen(inode, wanted.port);
            }
            Outcome::Reply(Reply::Value(0))
        }
        Err(e) if e.errno == libc::ENOTSUP || !steal => Outcome::Reply(Reply::Value(0)),
        Err(e) => Outcome::Reply(Reply::Errno(e.errno)),
    }
}

/// `accept(fd, addr, len)` and `accept4(…, flags)` on a listener subscribed
/// in the target: the supervisor accepts on its copy of the socket and
/// installs the connection as the call's result, with the real client's
/// address (a delivered connection's kernel peer is the intproxy). Only
/// non-blocking listeners (as Go's): accepting on a blocking one could
/// block the supervisor; those, and every other listener, continue.
pub async fn accept(sup: &Supervisor, n: &Notification, flags: i32) -> Outcome {
    let continue_ = Outcome::Reply(Reply::Continue);
    let Some(((incoming, _), _)) = &sup.incoming else {
        return continue_;
    };
    let Ok(listener) = socket_of(n.pid, n.args[0] as i32) else {
        return continue_;
    };
    if !inode(&listener).is_some_and(|i| sup.sockets.is_listening(i)) {
        return continue_;
    }
    // SAFETY: plain fcntl on our copy.
    let status = unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_GETFL) };
    if status < 0 || status & libc::O_NONBLOCK == 0 {
        return continue_;
    }
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    // SAFETY: the pointers are valid for the call (`filled_sockaddr`).
    let (fd, storage, len) = filled_sockaddr(|addr, len| unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            addr,
            len,
            libc::SOCK_CLOEXEC | (flags & libc::SOCK_NONBLOCK),
        )
    });
    if fd < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        return Outcome::Reply(Reply::Errno(errno.unwrap_or(libc::EINVAL)));
    }
    // SAFETY: a fresh fd that we own.
    let connection = unsafe { OwnedFd::from_raw_fd(fd) };
    let real = match parse_sockaddr(sockaddr_bytes(&storage, len)) {
        Some(kernel) => match incoming.peer(kernel).await {
            LayerResponse::Peer(Some(peer)) => Some(peer.remote),
            _ => None,
        },
        None => None,
    };
    let (addr, addr_len) = (n.args[1], n.args[2]);
    if addr != 0 && addr_len != 0 {
        let v6 = sockopt(&listener, libc::SO_DOMAIN) == Some(libc::AF_INET6);
        let (peer_storage, size) = match real {
            // An IPv6 client of an IPv4-only listener has no IPv4 name:
            // the kernel's peer is reported.
            Some(peer) if v6 || mirrord_protocol::unmapped(peer).is_ipv4() => sockaddr(peer, v6),
            _ => (storage, len),
        };
        if let Err(errno) = write_sockaddr(n, addr, addr_len, &peer_storage, size) {
            return Outcome::Reply(Reply::Errno(errno));
        }
    }
    sup.install_fd(n, connection.as_fd(), flags & libc::SOCK_CLOEXEC != 0)
}

fn local_addr(socket: &OwnedFd) -> Option<SocketAddr> {
    // SAFETY: the pointers are valid for the call (`filled_sockaddr`).
    let (rc, storage, len) =
        filled_sockaddr(|addr, len| unsafe { libc::getsockname(socket.as_raw_fd(), addr, len) });
    (rc == 0).then(|| parse_sockaddr(sockaddr_bytes(&storage, len)))?
}

/// What the supervisor knows of the programs' sockets, by socket inode
/// (the same socket under any fd number, in any process): the remote peers
/// of those connected to relays, and the listeners subscribed in the
/// target.
#[derive(Default)]
pub struct Sockets {
    peers: std::sync::Mutex<std::collections::HashMap<u64, SocketAddr>>,
    /// Listener inode → the target port it subscribed.
    listening: std::sync::Mutex<std::collections::HashMap<u64, u16>>,
}

impl Sockets {
    fn remember(&self, inode: u64, peer: SocketAddr) {
        if let Ok(mut peers) = self.peers.lock() {
            peers.insert(inode, peer);
        }
    }

    /// Whether no socket is connected to a relay.
    pub(super) fn is_empty(&self) -> bool {
        self.peers.lock().map_or(true, |peers| peers.is_empty())
    }

    pub(super) fn get(&self, inode: u64) -> Option<SocketAddr> {
        self.peers.lock().ok()?.get(&inode).copied()
    }

    fn listen(&self, inode: u64, port: u16) {
        if let Ok(mut listening) = self.listening.lock() {
            listening.insert(inode, port);
        }
    }

    fn is_listening(&self, inode: u64) -> bool {
        self.listening
            .lock()
            .is_ok_and(|listening| listening.contains_key(&inode))
    }

    /// Whether some listener is subscribed.
    pub(super) fn any_listening(&self) -> bool {
        self.listening.lock().is_ok_and(|l| !l.is_empty())
    }

    /// Forgets the listeners not in `alive` (closed by their programs);
    /// the target ports no listener left holds, to unsubscribe.
    pub(super) fn closed_listeners(&self, alive: &std::collections::HashSet<u64>) -> Vec<u16> {
        let Ok(mut listening) = self.listening.lock() else {
            return Vec::new();
        };
        let mut closed: Vec<u16> = Vec::new();
        listening.retain(|inode, port| {
            let open = alive.contains(inode);
            if !open {
                closed.push(*port);
            }
            open
        });
        closed.sort_unstable();
        closed.dedup();
        closed.retain(|port| !listening.values().any(|p| p == port));
        closed
    }
}

pub(super) fn inode(socket: &OwnedFd) -> Option<u64> {
    // SAFETY: all-zero is a valid stat buffer for fstat to fill.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and buffer.
    (unsafe { libc::fstat(socket.as_raw_fd(), &mut st) } == 0).then_some(st.st_ino)
}

/// An `AF_INET`/`AF_INET6` socket address; anything else is left alone.
pub fn parse_sockaddr(raw: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(raw.get(..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(raw.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = raw.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// Our copy of fd `fd` of the process that thread `tid` belongs to.
pub(super) fn socket_of(tid: u32, fd: i32) -> std::io::Result<OwnedFd> {
    let pidfd = thread_pidfd(tid)?;
    // SAFETY: plain syscall; the returned fd is owned at once.
    unsafe {
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(copy as i32))
    }
}

/// `PIDFD_THREAD` (Linux 6.9): a pidfd of the thread itself, which shares
/// its process's fd table.
const PIDFD_THREAD: libc::c_uint = libc::O_EXCL as libc::c_uint;

/// A pidfd through which the fds of thread `tid`'s process are reached:
/// of the thread itself where the kernel allows it (`PIDFD_THREAD`, one
/// syscall), else of its process, found through `/proc/TID/status`
/// (several syscalls and the kernel's formatting of the whole file: it was
/// half of the intproxy's syscalls per unconnected UDP round trip).
fn thread_pidfd(tid: u32) -> std::io::Result<OwnedFd> {
    let open = |pid: u32, flags: libc::c_uint| {
        // SAFETY: plain syscall; the returned fd is owned at once.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, flags) };
        if fd < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: a fresh fd that we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
        }
    };
    match open(tid, PIDFD_THREAD) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => open(memory::tgid(tid)?, 0),
        other => other,
    }
}

pub(super) fn sockopt(socket: &OwnedFd, name: i32) -> Option<i32> {
    let mut value: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut i32).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

pub(super) fn is_connected(socket: &OwnedFd) -> bool {
    // SAFETY: the pointers are valid for the call (`filled_sockaddr`).
    filled_sockaddr(|addr, len| unsafe { libc::getpeername(socket.as_raw_fd(), addr, len) }).0 == 0
}

/// `to` as a socket address of the socket's family (v4-mapped on an
/// `AF_INET6` socket), and its size.
pub(super) fn sockaddr(to: SocketAddr, v6: bool) -> (libc::sockaddr_storage, usize) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match (to, v6) {
        (SocketAddr::V4(v4), false) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        (to, _) => {
            let ip = match to.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                IpAddr::V6(ip) => ip,
            };
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: to.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: ip.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len)
}

/// Connects `socket` to `to` (as a v4-mapped address on an `AF_INET6`
/// socket); the errno on failure (`EINPROGRESS` for a non-blocking one).
fn connect_fd(socket: &OwnedFd, to: SocketAddr, v6: bool) -> Result<(), i32> {
    let (storage, len) = sockaddr(to, v6);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    let rc = unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_listener_gives_its_port_back_unless_another_holds_it() {
        let sockets = Sockets::default();
        assert!(!sockets.any_listening());
        sockets.listen(1, 80);
        sockets.listen(2, 80);
        sockets.listen(3, 443);
        assert!(sockets.any_listening());
        let alive = |inodes: &[u64]| inodes.iter().copied().collect();
        assert!(sockets.closed_listeners(&alive(&[1, 2, 3])).is_empty());
        // One of two listeners on 80 closed: the port stays subscribed.
        assert!(sockets.closed_listeners(&alive(&[2, 3])).is_empty());
        assert!(!sockets.is_listening(1) && sockets.is_listening(2));
        assert_eq!(sockets.closed_listeners(&alive(&[])), [80, 443]);
        assert!(!sockets.any_listening());
    }

    #[test]
    fn a_threads_fds_are_reached_from_any_thread() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let fd = socket.as_raw_fd();
        let expected = inode(&OwnedFd::from(socket.try_clone().unwrap()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: plain syscall.
            tx.send(unsafe { libc::syscall(libc::SYS_gettid) } as u32)
                .unwrap();
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().unwrap();
        for caller in [std::process::id(), tid] {
            let copy = socket_of(caller, fd).unwrap();
            assert_eq!(inode(&copy), expected, "from {caller}");
        }
        drop(stop_tx);
        thread.join().unwrap();
    }

    #[test]
    fn parses_inet_addresses_and_leaves_the_rest() {
        let v4 = {
            let mut raw = vec![0u8; 16];
            raw[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            raw[2..4].copy_from_slice(&7001u16.to_be_bytes());
            raw[4..8].copy_from_slice(&[127, 0, 0, 2]);
            raw
        };
        assert_eq!(parse_sockaddr(&v4), Some("127.0.0.2:7001".parse().unwrap()));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&53u16.to_be_bytes());
        v6[23] = 1;
        assert_eq!(parse_sockaddr(&v6), Some("[::1]:53".parse().unwrap()));
        let unix = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
        assert_eq!(parse_sockaddr(&unix), None);
        assert_eq!(parse_sockaddr(&v4[..6]), None);
    }
}
