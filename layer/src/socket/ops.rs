//! The logic behind the socket hooks: decide local or remote, talk to the
//! intproxy, keep [`TABLES`] right. Every function here returns `Ok(None)`
//! for "let libc do it", so the local path behaves exactly as without the
//! layer.

use std::ffi::CStr;
use std::net::{IpAddr, SocketAddr};
use std::os::raw::c_int;

use libc::addrinfo;
use mirrord_config::policy::Route;
use mirrord_config::Protocol;
use mirrord_protocol::{AddrFamily, LayerRequest, LayerResponse, NetProtocol};

use super::dns::{self, AddrInfoList, Failure, Hints};
use super::{addr, Link, Tracked, TABLES};
use crate::error::{errno, set_errno, HookError};
use crate::{client, fdbits, real, setup};

/// The family (`AF_*`) and protocol of an internet socket; `None` for
/// anything else (`AF_UNIX`, raw sockets, not a socket).
pub fn socket_kind(fd: c_int) -> Option<(c_int, NetProtocol)> {
    let family = sockopt(fd, libc::SO_DOMAIN)?;
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return None;
    }
    match sockopt(fd, libc::SO_TYPE)? {
        libc::SOCK_STREAM => Some((family, NetProtocol::Tcp)),
        libc::SOCK_DGRAM => Some((family, NetProtocol::Udp)),
        _ => None,
    }
}

fn sockopt(fd: c_int, name: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    let saved = errno();
    // SAFETY: a valid out pointer and its length.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            std::ptr::addr_of_mut!(value).cast(),
            &mut len,
        )
    };
    set_errno(saved);
    (rc == 0).then_some(value)
}

/// The real `connect`; returns its result and the errno it left.
fn real_connect(fd: c_int, to: SocketAddr) -> (c_int, c_int) {
    let (storage, len) = addr::to_storage(to);
    // SAFETY: a valid address of `len` bytes.
    let rc = unsafe {
        real!(connect: unsafe extern "C" fn(c_int, *const libc::sockaddr, libc::socklen_t) -> c_int)(
            fd,
            std::ptr::addr_of!(storage).cast(),
            len,
        )
    };
    (rc, errno())
}

fn policy_protocol(protocol: NetProtocol) -> Protocol {
    match protocol {
        NetProtocol::Tcp => Protocol::Tcp,
        NetProtocol::Udp => Protocol::Udp,
    }
}

/// The names the program resolved remotely to `ip`, for hostname filters.
fn names_of(ip: IpAddr) -> Vec<String> {
    TABLES.lock().names.names_of(ip)
}

/// Whether the outgoing policy sends `dest` over `protocol` to the target.
fn routes_remote(protocol: NetProtocol, dest: SocketAddr, names: &[String]) -> bool {
    let Some(state) = setup::state() else {
        return false;
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    state
        .outgoing
        .route(policy_protocol(protocol), dest, &names)
        == Route::Remote
}

/// Asks the intproxy for a relay to `remote`: (relay, the target-side local address).
fn open_relay(
    protocol: NetProtocol,
    remote: SocketAddr,
) -> Result<(SocketAddr, SocketAddr), HookError> {
    match client::request(LayerRequest::ConnectOutgoing {
        protocol,
        remote: addr::canonical(remote),
    })? {
        LayerResponse::Outgoing { relay, local } => Ok((addr::canonical(relay), local)),
        LayerResponse::Remote(_) | LayerResponse::Peer(_) => Err(HookError::UnexpectedResponse(
            "a remote response to an outgoing connection",
        )),
    }
}

/// `connect(fd, dest)` for an internet address.
pub fn connect(fd: c_int, dest: SocketAddr) -> Result<Option<c_int>, HookError> {
    let names = names_of(dest.ip());
    let tracked = fdbits::has(fd, fdbits::SOCKET);
    // The common local case costs no syscall: neither protocol is remote.
    if !tracked
        && !routes_remote(NetProtocol::Tcp, dest, &names)
        && !routes_remote(NetProtocol::Udp, dest, &names)
    {
        return Ok(None);
    }
    let Some((family, protocol)) = socket_kind(fd) else {
        return Ok(None);
    };
    if family != addr::family_of(dest) {
        return Ok(None); // The kernel reports the mismatch.
    }
    if tracked {
        let known = TABLES.lock().sockets.get(&fd).and_then(|t| t.connected);
        if let Some(link) = known {
            if addr::canonical(link.remote) == addr::canonical(dest) {
                // Polling a non-blocking connect, or reconnecting UDP to the
                // same peer: same relay, and the kernel's answer (EALREADY,
                // then 0 once, then EISCONN).
                let (rc, err) = real_connect(fd, addr::in_family(link.relay, family));
                set_errno(err);
                return Ok(Some(rc));
            }
            if protocol == NetProtocol::Tcp {
                return Ok(None); // Already connected: the kernel says EISCONN.
            }
            forget_peer(fd);
        }
    }
    if setup::keeps_local(dest) || !routes_remote(protocol, dest, &names) {
        return Ok(None);
    }
    let (relay, local) = open_relay(protocol, dest)?;
    let (rc, err) = real_connect(fd, addr::in_family(relay, family));
    // EINTR: a TCP connect goes on in the background, as EINPROGRESS.
    if rc == 0 || err == libc::EINPROGRESS || err == libc::EINTR {
        let mut tables = TABLES.lock();
        let tracked = tables.sockets.entry(fd).or_insert_with(|| Tracked {
            family,
            ..Tracked::default()
        });
        tracked.connected = Some(Link {
            remote: dest,
            relay,
            local: Some(local),
        });
        fdbits::set(fd, fdbits::SOCKET);
    }
    set_errno(err);
    Ok(Some(rc))
}

/// A UDP socket is being disconnected (`connect` with `AF_UNSPEC`) or
/// connected elsewhere: it no longer has a remote peer.
pub fn forget_peer(fd: c_int) {
    let mut tables = TABLES.lock();
    if let Some(tracked) = tables.sockets.get_mut(&fd) {
        tracked.connected = None;
        if tracked.relays.is_empty() {
            tables.sockets.remove(&fd);
            fdbits::clear(fd, fdbits::SOCKET);
        }
    }
}

/// Where a datagram for `dest` really goes: `Some(relay)` (in the socket's
/// family) when `dest` is remote, `None` to send it as is.
pub fn datagram_target(fd: c_int, dest: SocketAddr) -> Result<Option<SocketAddr>, HookError> {
    if setup::keeps_local(dest) || !routes_remote(NetProtocol::Udp, dest, &names_of(dest.ip())) {
        return Ok(None);
    }
    let Some((family, NetProtocol::Udp)) = socket_kind(fd) else {
        return Ok(None);
    };
    if family != addr::family_of(dest) {
        return Ok(None);
    }
    let known = TABLES
        .lock()
        .sockets
        .get(&fd)
        .and_then(|t| t.relay_for(dest));
    if let Some(relay) = known {
        return Ok(Some(addr::in_family(relay, family)));
    }
    let (relay, local) = open_relay(NetProtocol::Udp, dest)?;
    let mut tables = TABLES.lock();
    let tracked = tables.sockets.entry(fd).or_insert_with(|| Tracked {
        family,
        ..Tracked::default()
    });
    // Another thread may have opened one meanwhile: the first one stays.
    let relay = match tracked.relay_for(dest) {
        Some(first) => first,
        None => {
            tracked.relays.push(Link {
                remote: dest,
                relay,
                local: Some(local),
            });
            relay
        }
    };
    fdbits::set(fd, fdbits::SOCKET);
    Ok(Some(addr::in_family(relay, family)))
}

/// The remote address to report for a datagram that came from `from`.
pub fn remote_source(fd: c_int, from: SocketAddr) -> Option<SocketAddr> {
    TABLES.lock().sockets.get(&fd)?.remote_behind(from)
}

/// The remote peer `getpeername` reports.
pub fn peer(fd: c_int) -> Option<SocketAddr> {
    Some(TABLES.lock().sockets.get(&fd)?.connected?.remote)
}

/// The target-side local address `getsockname` reports for a connected socket.
pub fn local(fd: c_int) -> Option<SocketAddr> {
    let tables = TABLES.lock();
    let tracked = tables.sockets.get(&fd)?;
    Some(addr::in_family(tracked.connected?.local?, tracked.family))
}

/// The outcome of a remote `getaddrinfo`: a list head or an `EAI_*` code.
pub type GaiOutcome = Result<*mut addrinfo, c_int>;

/// `getaddrinfo(node, service, hints)` for a non-`NULL` node.
pub fn getaddrinfo(
    node: &CStr,
    service: Option<&CStr>,
    hints: Hints,
) -> Result<Option<GaiOutcome>, HookError> {
    let Some(state) = setup::state() else {
        return Ok(None);
    };
    if !hints.acceptable() || dns::is_numeric(node) {
        return Ok(None);
    }
    let Ok(host) = node.to_str() else {
        return Ok(None);
    };
    if host.is_empty() || !state.dns.remote(host) {
        return Ok(None);
    }
    let kinds = match dns::service_kinds(service, &hints) {
        Ok(kinds) => kinds,
        Err(eai) => return Ok(Some(Err(eai))),
    };
    let answer = match dns::resolve(host, hints.wanted()) {
        Ok(answer) => answer,
        Err(err) => return Ok(Some(Err(Failure::of(&err).eai()))),
    };
    let addrs = hints.select(&answer.addrs);
    let canonical = (hints.flags & libc::AI_CANONNAME != 0)
        .then(|| answer.canonical.as_deref().unwrap_or(host));
    let Some(mut list) = AddrInfoList::build(&addrs, &kinds, hints.flags, canonical) else {
        return Ok(Some(Err(libc::EAI_NONAME)));
    };
    let head = list.head();
    TABLES.lock().lists.insert(head as usize, list);
    Ok(Some(Ok(head)))
}

/// Frees a list we built; `false` when `head` is not ours (libc's). Any
/// entry of our list identifies it, for a program that re-linked its
/// entries before freeing.
pub fn free_list(head: usize) -> bool {
    let list = {
        let mut tables = TABLES.lock();
        match tables.lists.remove(&head) {
            Some(list) => Some(list),
            None => {
                let owner = tables
                    .lists
                    .iter()
                    .find(|(_, list)| list.contains(head))
                    .map(|(key, _)| *key);
                owner.and_then(|key| tables.lists.remove(&key))
            }
        }
    };
    list.is_some()
}

/// What a `gethostbyname*` call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAnswer {
    pub name: String,
    pub alias: Option<String>,
    pub family: c_int,
    pub addrs: Vec<IpAddr>,
}

/// `gethostbyname2(name, af)` resolved by the target.
pub fn gethostbyname(
    name: &CStr,
    family: c_int,
) -> Result<Option<Result<HostAnswer, Failure>>, HookError> {
    let Some(state) = setup::state() else {
        return Ok(None);
    };
    if (family != libc::AF_INET && family != libc::AF_INET6) || dns::is_numeric(name) {
        return Ok(None);
    }
    let Ok(host) = name.to_str() else {
        return Ok(None);
    };
    if host.is_empty() || !state.dns.remote(host) {
        return Ok(None);
    }
    let wanted = if family == libc::AF_INET6 {
        AddrFamily::V6
    } else {
        AddrFamily::V4
    };
    let answer = match dns::resolve(host, wanted) {
        Ok(answer) => answer,
        Err(err) => return Ok(Some(Err(Failure::of(&err)))),
    };
    let addrs = dns::hostent_addrs(family, &answer.addrs);
    if addrs.is_empty() {
        return Ok(Some(Err(Failure::NotFound)));
    }
    let (name, alias) = match answer.canonical {
        Some(canonical) if canonical != host => (canonical, Some(host.to_owned())),
        _ => (host.to_owned(), None),
    };
    Ok(Some(Ok(HostAnswer {
        name,
        alias,
        family,
        addrs,
    })))
}
