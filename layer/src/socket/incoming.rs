//! Incoming traffic: `listen`, `accept` and `accept4` on TCP sockets.
//!
//! `listen` first really listens (local clients keep working), then asks
//! the intproxy to subscribe the target's port (`feature.network.incoming`:
//! mode, `port_mapping`, `ports`, `ignore_ports`, `ignore_localhost`). The
//! intproxy delivers each stolen connection by connecting to this very
//! listener, so `accept` returns an ordinary kernel socket; for a loopback
//! peer `accept` asks the intproxy who is really behind it and reports
//! that address (and `getpeername`/`getsockname` do too, through the
//! socket's [`Link`]). Closing the last fd of the listener in the process
//! that subscribed unsubscribes.
//!
//! The cost on the local path: `accept` on an fd the layer does not track
//! is one bitmap load; `listen` is the real call plus, with incoming off,
//! one flag check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::raw::c_int;

use libc::{sockaddr, sockaddr_storage, socklen_t};
use mirrord_config::IncomingMode as ConfigMode;
use mirrord_protocol::{IncomingMode, LayerRequest, LayerResponse, NetProtocol, Subscription};

use super::{addr, ops, Link, Listening, Tracked, TABLES};
use crate::detour::run;
use crate::error::HookError;
use crate::{client, fdbits, real, setup};

type ListenFn = unsafe extern "C" fn(c_int, c_int) -> c_int;
type AcceptFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
type Accept4Fn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int;
type NameFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;

/// # Safety
/// libc's `listen`.
#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    let rc = real!(listen: ListenFn)(fd, backlog);
    if rc != 0 {
        return rc;
    }
    run(|| subscribe(fd).map(|()| Some(0)), || rc, HookError::fail)
}

/// # Safety
/// libc's `accept`.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, out: *mut sockaddr, len: *mut socklen_t) -> c_int {
    let real = real!(accept: AcceptFn);
    if !fdbits::has(fd, fdbits::SOCKET) {
        return real(fd, out, len);
    }
    accepted(fd, out, len, |a, l| real(fd, a, l))
}

/// # Safety
/// libc's `accept4`.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    out: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let real = real!(accept4: Accept4Fn);
    if !fdbits::has(fd, fdbits::SOCKET) {
        return real(fd, out, len, flags);
    }
    accepted(fd, out, len, |a, l| real(fd, a, l, flags))
}

/// Accepts into our own buffer (the program may pass `NULL`), then reports
/// the real client of a delivered connection, or the kernel's peer.
unsafe fn accepted(
    listener: c_int,
    out: *mut sockaddr,
    len: *mut socklen_t,
    real: impl FnOnce(*mut sockaddr, *mut socklen_t) -> c_int,
) -> c_int {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut storage: sockaddr_storage = std::mem::zeroed();
    let mut storage_len = std::mem::size_of::<sockaddr_storage>() as socklen_t;
    let new = real(std::ptr::addr_of_mut!(storage).cast(), &mut storage_len);
    if new < 0 {
        return new;
    }
    let kernel_peer = addr::read(std::ptr::addr_of!(storage).cast(), storage_len);
    let real_peer = run(
        || Ok(Some(adopt(listener, new, kernel_peer))),
        || None,
        |_| None,
    );
    if !out.is_null() && !len.is_null() {
        match real_peer {
            Some(peer) => addr::write(peer, out, len),
            None => {
                // What the kernel said, cut to the caller's buffer as it would be.
                let cap = (*len).min(storage_len) as usize;
                std::ptr::copy_nonoverlapping(
                    std::ptr::addr_of!(storage).cast::<u8>(),
                    out.cast::<u8>(),
                    cap,
                );
                *len = storage_len;
            }
        }
    }
    new
}

/// Subscribes the target's port for a socket that just started listening,
/// when the config says so. `ENOTSUP` from the agent (a mode it lacks), or
/// any failure in mirror mode, leaves the listener local; a failed steal
/// fails the program's `listen` with the agent's errno (`EADDRINUSE` for a
/// port another session steals).
fn subscribe(fd: c_int) -> Result<(), HookError> {
    let Some(state) = setup::state() else {
        return Ok(());
    };
    let config = &state.config.feature.network.incoming;
    if config.mode == ConfigMode::Off {
        return Ok(());
    }
    let Some((family, NetProtocol::Tcp)) = ops::socket_kind(fd) else {
        return Ok(());
    };
    let Some(bound) = bound_address(fd) else {
        return Ok(());
    };
    // A debugger's port stays the debugger's.
    if setup::keeps_local(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        bound.port(),
    )) {
        return Ok(());
    }
    let Some(wanted) = config.wanted(bound) else {
        return Ok(());
    };
    let port = wanted.port;
    let subscription = Subscription::new(port, wanted.steal, wanted.take_over, wanted.http_filter);
    let app = mirrord_protocol::reachable(bound);
    let mirror = subscription.mode == IncomingMode::Mirror;
    match client::request(LayerRequest::Listen { subscription, app }) {
        Ok(_) => {}
        // A mode the agent lacks, or a failed mirror (a copy of the
        // traffic is not worth failing the program's listen over): local.
        Err(HookError::Remote(e)) if e.errno == libc::ENOTSUP => return Ok(()),
        Err(_) if mirror => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut tables = TABLES.lock();
    let tracked = tables.sockets.entry(fd).or_insert_with(|| Tracked {
        family,
        ..Tracked::default()
    });
    tracked.listening = Some(Listening {
        port,
        // SAFETY: plain syscall.
        owner_pid: unsafe { libc::getpid() },
    });
    fdbits::set(fd, fdbits::SOCKET);
    Ok(())
}

/// Records a connection accepted on `listener`; returns the real client's
/// address (in the listener's family) when the intproxy delivered it.
fn adopt(listener: c_int, new: c_int, kernel_peer: Option<SocketAddr>) -> Option<SocketAddr> {
    let family = {
        let tables = TABLES.lock();
        let tracked = tables.sockets.get(&listener)?;
        tracked.listening?;
        tracked.family
    };
    let relay = addr::canonical(kernel_peer?);
    if !relay.ip().is_loopback() {
        return None; // Only the intproxy on this machine delivers.
    }
    let peer = match client::request(LayerRequest::IncomingPeer { peer: relay }) {
        Ok(LayerResponse::Peer(Some(peer))) => peer,
        _ => return None,
    };
    let remote = addr::in_family(peer.remote, family);
    if addr::family_of(remote) != family {
        // An IPv6 client of an IPv4-only listener (`0.0.0.0`): no IPv4
        // address can name it, so the kernel's peer is reported.
        return None;
    }
    TABLES.lock().sockets.insert(
        new,
        Tracked {
            family,
            connected: Some(Link {
                remote,
                relay,
                local: Some(peer.local),
            }),
            ..Tracked::default()
        },
    );
    fdbits::set(new, fdbits::SOCKET);
    Some(remote)
}

/// `fd`'s record is gone (closed): unsubscribe its port unless another fd
/// of this process still listens on it, or a forked child closes what its
/// parent subscribed.
pub fn closed(record: &Tracked) {
    let Some(listening) = record.listening else {
        return;
    };
    // SAFETY: plain syscall.
    if listening.owner_pid != unsafe { libc::getpid() } {
        return;
    }
    let shared = TABLES
        .lock()
        .sockets
        .values()
        .any(|t| t.listening.is_some_and(|l| l.port == listening.port));
    if !shared {
        let _ = client::request(LayerRequest::Unlisten {
            port: listening.port,
        });
    }
}

/// The address the socket is bound to (the real one, not a reported one).
fn bound_address(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut storage: sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<sockaddr_storage>() as socklen_t;
    // SAFETY: a valid buffer and length.
    let rc =
        unsafe { real!(getsockname: NameFn)(fd, std::ptr::addr_of_mut!(storage).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the kernel filled `len` bytes.
    unsafe { addr::read(std::ptr::addr_of!(storage).cast(), len) }
}
