//! Unconnected UDP on the syscall path: `sendto` with a destination and
//! `recvfrom` asking for the source (the filter stops only those, see
//! [`ADDRESSED`](super::filter::ADDRESSED)), and `sendmsg`/`recvmsg`
//! (every one stops: the address is inside the `msghdr`, out of the BPF
//! program's reach; those without one continue from the receiver thread).
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
//! `SO_RCVTIMEO`, and ended when the caller goes away or has a signal to
//! take, see [`signals`](super::signals)).

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
use super::msghdr::MsgHdr;
use super::net::{
    filled_sockaddr, inode, parse_sockaddr, sockaddr, sockaddr_bytes, socket_of, sockopt,
    write_sockaddr,
};
use super::notify::{Notification, Reply};
use super::supervisor::{Outcome, Supervisor};
use crate::intproxy::outgoing;

/// The largest datagram (IPv4's and IPv6's payload limit, rounded up).
const MAX_DATAGRAM: usize = 1 << 16;
/// How often a waiting receive checks that its caller is still there and
/// has no signal to take (an `ioctl` and a read of `/proc/TID/status`).
const RECHECK: Duration = Duration::from_millis(50);

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
    named(n.pid, n.args[4], n.args[5] as u32)
}

/// The internet address of `len` bytes at `addr` of the caller, if any.
pub(super) fn named(pid: u32, addr: u64, len: u32) -> Option<SocketAddr> {
    let len = (len as usize).min(128);
    let raw = memory::read(pid, addr, len).ok()?;
    parse_sockaddr(&raw).map(plain)
}

/// Whether a send to `to` (`None`: no internet address) continues.
pub(super) fn stays_local(sup: &Supervisor, to: Option<SocketAddr>) -> bool {
    to.is_none_or(|to| sup.policy.outgoing.route(Protocol::Udp, to, &[]) == Route::Local)
}

/// Whether the `sendto`/`sendmsg`/`recvfrom`/`recvmsg` runs as made,
/// decided without waiting: no address or a destination the policy keeps
/// local, or a socket without relays. A `sendmsg` costs one read of the
/// caller's memory here (its `msghdr`'s address), a `recvmsg` nothing
/// while no relay exists.
pub fn continues_at_once(sup: &Supervisor, n: &Notification) -> bool {
    let relayed = || {
        socket_inode(n.pid, n.args[0] as i32)
            .is_some_and(|i| sup.datagrams.has(i) || sup.sockets.get(i).is_some())
    };
    match n.nr {
        libc::SYS_sendto => stays_local(sup, destination(n)),
        libc::SYS_sendmsg => match super::msghdr::name(n.pid, n.args[1]) {
            Ok((0, _)) | Err(_) => true,
            Ok((addr, len)) => stays_local(sup, named(n.pid, addr, len)),
        },
        libc::SYS_sendmmsg => super::mmsg::send_continues(sup, n),
        libc::SYS_recvfrom | libc::SYS_recvmsg | libc::SYS_recvmmsg => {
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

/// A stopped `sendto(fd, buf, len, flags, dest, dest_len)` or
/// `sendmsg(fd, msg, flags)` that names an internet address.
struct Outbound {
    fd: i32,
    remote: SocketAddr,
    flags: i32,
    /// `sendmsg`'s header; `None` for `sendto`.
    msg: Option<MsgHdr>,
}

impl Outbound {
    fn of(n: &Notification) -> Option<Outbound> {
        let fd = n.args[0] as i32;
        match n.nr {
            libc::SYS_sendto => Some(Outbound {
                fd,
                remote: destination(n)?,
                flags: n.args[3] as i32,
                msg: None,
            }),
            libc::SYS_sendmsg => {
                let msg = MsgHdr::read(n.pid, n.args[1]).ok()?;
                Some(Outbound {
                    fd,
                    remote: named(n.pid, msg.name, msg.name_len)?,
                    flags: n.args[2] as i32,
                    msg: Some(msg),
                })
            }
            _ => None,
        }
    }

    /// The data and control messages to send, read from the caller.
    fn payload(&self, n: &Notification) -> Result<(Vec<u8>, Vec<u8>), i32> {
        let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EFAULT);
        match &self.msg {
            None => {
                let len = n.args[2] as usize;
                if len > MAX_DATAGRAM {
                    return Err(libc::EMSGSIZE);
                }
                let data = memory::read(n.pid, n.args[1], len).map_err(|_| libc::EFAULT)?;
                Ok((data, Vec::new()))
            }
            Some(msg) => {
                let data = msg.gather(n.pid, MAX_DATAGRAM).map_err(errno)?;
                Ok((data, msg.control_bytes(n.pid).map_err(errno)?))
            }
        }
    }
}

/// The caller's UDP socket a send goes out of.
struct Sending {
    socket: OwnedFd,
    v6: bool,
    inode: u64,
}

/// `sendto`/`sendmsg` to a remote destination on a UDP socket: the data
/// (gathered from a `msghdr`'s iovecs, with its control messages) goes to
/// the destination's relay, made on the first send.
pub async fn send(sup: &Supervisor, n: &Notification) -> Outcome {
    let Some(out) = Outbound::of(n) else {
        return Outcome::Reply(Reply::Continue);
    };
    let sending = match sending(sup, n, &out) {
        Ok(sending) => sending,
        Err(outcome) => return outcome,
    };
    let relay = match sup.datagrams.relay_for(sending.inode, out.remote) {
        Some(relay) => relay,
        None => match open_relay(sup, out.remote).await {
            Ok(relay) => sup.datagrams.add(sending.inode, out.remote, relay),
            Err(errno) => return Outcome::Reply(Reply::Errno(errno)),
        },
    };
    transmit(sup, n, &out, &sending, relay)
}

/// A send whose relay exists, done at once on the receiver thread (no hop
/// to the runtime: most sends of a UDP client). `None` when the call needs
/// the runtime.
pub fn send_at_once(sup: &Supervisor, n: &Notification) -> Option<Outcome> {
    let out = Outbound::of(n)?;
    let sending = match sending(sup, n, &out) {
        Ok(sending) => sending,
        Err(outcome) => return Some(outcome),
    };
    let relay = sup.datagrams.relay_for(sending.inode, out.remote)?;
    Some(transmit(sup, n, &out, &sending, relay))
}

/// The socket of a send the target gets: a UDP socket of a family that
/// can reach the destination, which the policy sends to the target;
/// `Err(Continue)` otherwise.
fn sending(sup: &Supervisor, n: &Notification, out: &Outbound) -> Result<Sending, Outcome> {
    let continue_ = || Outcome::Reply(Reply::Continue);
    let socket = socket_of(n.pid, out.fd).map_err(|_| continue_())?;
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
        return Err(continue_());
    }
    let v6 = match sockopt(&socket, libc::SO_DOMAIN) {
        Some(libc::AF_INET6) => true,
        Some(libc::AF_INET) if out.remote.is_ipv4() => false,
        // An IPv6 destination on an IPv4 socket: the kernel's error.
        _ => return Err(continue_()),
    };
    if sup.policy.outgoing.route(Protocol::Udp, out.remote, &[]) == Route::Local {
        return Err(continue_());
    }
    let inode = inode(&socket).ok_or_else(continue_)?;
    Ok(Sending { socket, v6, inode })
}

/// Reads the payload and sends it from the caller's socket to `relay`.
fn transmit(
    sup: &Supervisor,
    n: &Notification,
    out: &Outbound,
    sending: &Sending,
    relay: SocketAddr,
) -> Outcome {
    let (data, control) = match out.payload(n) {
        Ok(read) => read,
        Err(errno) => return Outcome::Reply(Reply::Errno(errno)),
    };
    if !sup.listener.id_valid(n.id) {
        return Outcome::Gone;
    }
    let (to, to_len) = sockaddr(relay, sending.v6);
    let to = sockaddr_bytes(&to, to_len);
    let sent = send_datagram(&sending.socket, Some(to), &data, &control, out.flags);
    debug!(remote = %out.remote, %relay, sent, "datagram to the target");
    if sent < 0 {
        return Outcome::Reply(Reply::Errno(last_errno()));
    }
    Outcome::Reply(Reply::Value(sent as i64))
}

/// One `sendmsg` of `data` (with `control`) from `socket` to `to` (a
/// `sockaddr`'s bytes; `None`: the connected peer), never waiting; the
/// kernel's result (`errno` when negative).
fn send_datagram(
    socket: &OwnedFd,
    to: Option<&[u8]>,
    data: &[u8],
    control: &[u8],
    flags: i32,
) -> isize {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: all-zero is a valid msghdr; the fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    if let Some(to) = to {
        msg.msg_name = to.as_ptr() as *mut libc::c_void;
        msg.msg_namelen = to.len() as libc::socklen_t;
    }
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = control.len();
    }
    // Never blocks: a loopback datagram does not wait, and a full send
    // buffer answers `EAGAIN`.
    // SAFETY: `msg` points at `to`, `iov` (over `data`) and `control`,
    // alive for the call; the kernel only reads them.
    unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, flags | libc::MSG_DONTWAIT) }
}

/// One message of a `sendmmsg` on fd `fd` (its header `msg`, the call's
/// `flags`): to a remote destination through its relay, as `sendmsg`;
/// any other (a local destination, none on a connected socket) sent as
/// given from the supervisor's copy of the socket. The byte count, or how
/// to answer the call instead (`Continue` when it is not a UDP socket).
pub(super) async fn send_message(
    sup: &Supervisor,
    n: &Notification,
    fd: i32,
    msg: MsgHdr,
    flags: i32,
) -> Result<usize, Outcome> {
    let remote = named(n.pid, msg.name, msg.name_len);
    if let Some(remote) = remote {
        let out = Outbound {
            fd,
            remote,
            flags,
            msg: Some(msg),
        };
        if let Ok(sending) = sending(sup, n, &out) {
            let relay = match sup.datagrams.relay_for(sending.inode, remote) {
                Some(relay) => relay,
                None => match open_relay(sup, remote).await {
                    Ok(relay) => sup.datagrams.add(sending.inode, remote, relay),
                    Err(errno) => return Err(Outcome::Reply(Reply::Errno(errno))),
                },
            };
            return match transmit(sup, n, &out, &sending, relay) {
                Outcome::Reply(Reply::Value(sent)) => Ok(sent as usize),
                other => Err(other),
            };
        }
    }
    send_as_given(sup, n, fd, &msg, flags)
}

/// A message sent from the supervisor's copy of the caller's UDP socket
/// exactly as the caller asked (its address, if any, its data and control
/// messages).
fn send_as_given(
    sup: &Supervisor,
    n: &Notification,
    fd: i32,
    msg: &MsgHdr,
    flags: i32,
) -> Result<usize, Outcome> {
    let errno =
        |e: std::io::Error| Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)));
    let socket = socket_of(n.pid, fd).map_err(|_| Outcome::Reply(Reply::Continue))?;
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
        return Err(Outcome::Reply(Reply::Continue));
    }
    let name = match msg.name {
        0 => None,
        at => Some(memory::read(n.pid, at, (msg.name_len as usize).min(128)).map_err(errno)?),
    };
    let data = msg.gather(n.pid, MAX_DATAGRAM).map_err(errno)?;
    let control = msg.control_bytes(n.pid).map_err(errno)?;
    if !sup.listener.id_valid(n.id) {
        return Err(Outcome::Gone);
    }
    let sent = send_datagram(&socket, name.as_deref(), &data, &control, flags);
    if sent < 0 {
        return Err(Outcome::Reply(Reply::Errno(last_errno())));
    }
    Ok(sent as usize)
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
    let (buf, len, flags) = (n.args[1], n.args[2] as usize, n.args[3] as i32);
    let got = match recv(sup, n, n.args[0] as i32, flags, len, 0).await {
        Ok(got) => got,
        Err(outcome) => return outcome,
    };
    let copied = got.data.len().min(len);
    if copied > 0 {
        if let Err(e) = memory::write(n.pid, buf, &got.data[..copied]) {
            return Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)));
        }
    }
    let (src, src_len) = (n.args[4], n.args[5]);
    if src != 0 && src_len != 0 {
        if let Err(errno) = write_sockaddr(n, src, src_len, &got.source, got.source_len) {
            return Outcome::Reply(Reply::Errno(errno));
        }
    }
    Outcome::Reply(Reply::Value(got.count as i64))
}

/// `recvmsg(fd, msg, flags)` on a socket with relays (or connected to
/// one): as `recvfrom`, the data scattered over the `msghdr`'s iovecs,
/// the source, its length, the control messages and `msg_flags` written
/// back into it.
pub async fn recvmsg(sup: &Supervisor, n: &Notification) -> Outcome {
    let flags = n.args[2] as i32;
    match recv_message(sup, n, n.args[0] as i32, n.args[1], flags).await {
        Ok(count) => Outcome::Reply(Reply::Value(count as i64)),
        Err(outcome) => outcome,
    }
}

/// One message received into the caller's `msghdr` at `at`, as `recvmsg`
/// does (also for each message of a `recvmmsg`): the call's result, or
/// how to answer the call instead.
pub(super) async fn recv_message(
    sup: &Supervisor,
    n: &Notification,
    fd: i32,
    at: u64,
    flags: i32,
) -> Result<usize, Outcome> {
    let errno =
        |e: std::io::Error| Outcome::Reply(Reply::Errno(e.raw_os_error().unwrap_or(libc::EFAULT)));
    let Ok(hdr) = MsgHdr::read(n.pid, at) else {
        return Err(Outcome::Reply(Reply::Continue));
    };
    let room = hdr.room(n.pid).map_err(errno)?;
    let control_room = if hdr.control == 0 {
        0
    } else {
        hdr.control_len.min(super::msghdr::MAX_CONTROL)
    };
    let got = recv(sup, n, fd, flags, room, control_room).await?;
    hdr.scatter(n.pid, &got.data).map_err(errno)?;
    let mut name_len = 0;
    if hdr.name != 0 {
        let size = got.source_len.min(hdr.name_len as usize);
        let bytes = sockaddr_bytes(&got.source, size);
        memory::write(n.pid, hdr.name, bytes).map_err(errno)?;
        name_len = got.source_len as u32;
    }
    hdr.write_results(n.pid, name_len, &got.control, got.msg_flags)
        .map_err(errno)?;
    Ok(got.count)
}

/// One datagram received for the caller.
struct Received {
    /// The call's result (the datagram's length with `MSG_TRUNC`).
    count: usize,
    data: Vec<u8>,
    /// The source to report: the remote a relay stands for.
    source: libc::sockaddr_storage,
    source_len: usize,
    control: Vec<u8>,
    msg_flags: i32,
}

/// Receives one datagram for the caller on its socket `fd`, when that is a
/// UDP socket with relays (or connected to one); `Err(Continue)` otherwise.
/// `room`: the caller's buffer; `control_room`: its control buffer.
async fn recv(
    sup: &Supervisor,
    n: &Notification,
    fd: i32,
    flags: i32,
    room: usize,
    control_room: usize,
) -> Result<Received, Outcome> {
    let continue_ = || Outcome::Reply(Reply::Continue);
    if flags & libc::MSG_ERRQUEUE != 0 {
        return Err(continue_());
    }
    let socket = socket_of(n.pid, fd).map_err(|_| continue_())?;
    if sockopt(&socket, libc::SO_TYPE) != Some(libc::SOCK_DGRAM) {
        return Err(continue_());
    }
    let ino = inode(&socket).ok_or_else(continue_)?;
    let connected = sup.sockets.get(ino);
    if connected.is_none() && !sup.datagrams.has(ino) {
        return Err(continue_());
    }
    if !sup.listener.id_valid(n.id) {
        return Err(Outcome::Gone);
    }
    let mut got = receive(sup, n, &socket, flags, room.min(MAX_DATAGRAM), control_room).await?;
    let kernel = parse_sockaddr(sockaddr_bytes(&got.source, got.source_len)).map(plain);
    let remote = kernel.and_then(|k| {
        sup.datagrams
            .remote_behind(ino, k)
            .or_else(|| connected.filter(|_| peer_of(&socket) == Some(k)))
    });
    if let Some(remote) = remote {
        let v6 = sockopt(&socket, libc::SO_DOMAIN) == Some(libc::AF_INET6);
        (got.source, got.source_len) = sockaddr(remote, v6);
    }
    Ok(got)
}

/// Receives one datagram on `socket` without ever blocking the
/// supervisor's thread: a blocking socket (without `MSG_DONTWAIT`) is
/// waited for here, until its `SO_RCVTIMEO` (`EAGAIN`), until the
/// caller goes away, or until it has a signal to take.
async fn receive(
    sup: &Supervisor,
    n: &Notification,
    socket: &OwnedFd,
    flags: i32,
    room: usize,
    control_room: usize,
) -> Result<Received, Outcome> {
    // SAFETY: plain fcntl on our copy (the status flags are the socket's).
    let status = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_GETFL) };
    let blocking = status >= 0 && status & libc::O_NONBLOCK == 0 && flags & libc::MSG_DONTWAIT == 0;
    let deadline = receive_timeout(socket).map(|t| Instant::now() + t);
    let (mut data, mut control) = (vec![0u8; room], vec![0u8; control_room]);
    let mut waiter: Option<AsyncFd<OwnedFd>> = None;
    loop {
        if let Some(got) = recv_once(socket, &mut data, &mut control, flags) {
            return Ok(got);
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
        if super::signals::deliverable(n.pid) {
            // As the kernel's socket wait: `EINTR` under a receive timeout
            // (even with `SA_RESTART`), else a restart by the handler's flags.
            let errno = match deadline {
                Some(_) => libc::EINTR,
                None => super::signals::ERESTARTSYS,
            };
            return Err(Outcome::Reply(Reply::Errno(errno)));
        }
    }
}

/// One `recvmsg` on `socket` that does not wait, into `data` and
/// `control` (given up on success); `None` when it failed (`errno` says
/// why).
fn recv_once(
    socket: &OwnedFd,
    data: &mut Vec<u8>,
    control: &mut Vec<u8>,
    flags: i32,
) -> Option<Received> {
    // SAFETY: all-zero is a valid sockaddr_storage and msghdr.
    let mut from: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
    }
    // SAFETY: `msg` points at `from`, `iov` (over `data`) and `control`,
    // alive and as large as it says for the call.
    let rc = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, flags | libc::MSG_DONTWAIT) };
    if rc < 0 {
        return None;
    }
    let (room, control_room) = (data.len(), control.len());
    let mut data = std::mem::take(data);
    let mut control = std::mem::take(control);
    data.truncate((rc as usize).min(room));
    control.truncate(msg.msg_controllen.min(control_room));
    Some(Received {
        count: rc as usize,
        data,
        source: from,
        source_len: msg.msg_namelen as usize,
        control,
        msg_flags: msg.msg_flags,
    })
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
