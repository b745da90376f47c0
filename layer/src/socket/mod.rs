//! Sockets: outgoing connections and datagrams made from the target,
//! listeners of the target's ports ([`incoming`]), and name resolution.
//!
//! # How an outgoing connection works
//!
//! `connect(fd, addr)` on an `AF_INET`/`AF_INET6` socket whose destination
//! the outgoing policy routes remote asks the intproxy to connect from the
//! target (`LayerRequest::ConnectOutgoing`); the intproxy answers with a
//! loopback *relay* address, and the program's own fd is really connected
//! to it. The fd stays a genuine kernel socket, so `read`, `send`, `poll`,
//! `epoll`, `dup` and `fork` need no hooks. What the layer must fix up is
//! only what the kernel would report about the relay: `getpeername`,
//! `getsockname` and the source address of received datagrams.
//!
//! Unconnected UDP gets one relay per (fd, destination) on the first
//! `sendto`/`sendmsg` to a remote destination.
//!
//! # Tables
//!
//! One lock, [`TABLES`], holds the tracked sockets, the names the remote
//! resolver returned for each address (so the outgoing policy can match
//! hostname filters) and the `addrinfo` lists we allocated. It is never held
//! while talking to the intproxy, and it is taken in [`fork_prepare`].
//!
//! Files: [`addr`] (C address conversions), [`dns`] (resolution and the
//! `addrinfo`/`hostent` results), [`ops`] (the logic), [`hooks`] (the
//! `extern "C"` detours).
//!
//! # Known limits
//!
//! - The relay is an IPv4 loopback address: an `AF_INET6` socket with
//!   `IPV6_V6ONLY` set cannot reach it, so its remote connect fails.
//! - The remote connection is made while `connect` runs, even on a
//!   non-blocking socket: the thread waits for the target, and a refusal is
//!   reported by `connect` itself, never later through `SO_ERROR`.
//! - A `dup`ed fd gets its own copy of the record: a later `connect` of one
//!   copy is not seen by the other.
//! - Remote `getaddrinfo` ignores `AI_ADDRCONFIG` (the target's addresses
//!   are what counts), keeps the agent's order, and reports "no address of
//!   that family" as `EAI_NONAME`. `gethostbyname`'s static result is per
//!   thread (glibc's is per process).
//! - Programs that make raw syscalls (Go) are not seen by these hooks.

pub mod addr;
pub mod dns;
pub mod hooks;
pub mod incoming;
pub mod ops;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use parking_lot::Mutex;

use crate::fdbits;

/// A relayed remote peer of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// The destination as the program gave it (in the socket's family), which
    /// is what `getpeername` and `recvfrom` report.
    pub remote: SocketAddr,
    /// The intproxy's relay, in plain form ([`addr::canonical`]).
    pub relay: SocketAddr,
    /// The agent socket's own address in the target, for `getsockname`.
    pub local: Option<SocketAddr>,
}

/// A listener subscribed to a target port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    /// The target's port (after `port_mapping`).
    pub port: u16,
    /// The process that subscribed; a forked child's `close` of its copy
    /// does not unsubscribe.
    pub owner_pid: i32,
}

/// What the layer knows about one socket fd.
#[derive(Clone, Debug, Default)]
pub struct Tracked {
    /// The socket's `AF_*` family.
    pub family: i32,
    /// Set when the socket is connected (TCP or UDP) to a remote peer, or
    /// is an incoming connection the intproxy delivered (`remote` is then
    /// the real client, `local` the address it connected to).
    pub connected: Option<Link>,
    /// Unconnected UDP: one relay per remote destination.
    pub relays: Vec<Link>,
    /// Set on a listener whose target port is subscribed.
    pub listening: Option<Listening>,
}

impl Tracked {
    /// The remote address behind a datagram's source `from`, when `from` is
    /// one of this socket's relays.
    pub fn remote_behind(&self, from: SocketAddr) -> Option<SocketAddr> {
        let from = addr::canonical(from);
        self.connected
            .iter()
            .chain(self.relays.iter())
            .find(|link| link.relay == from)
            .map(|link| link.remote)
    }

    /// The relay already set up for a send to `remote`: the connected
    /// peer's (a connected UDP socket only hears from its own relay), or
    /// the one of an earlier unconnected send.
    pub fn relay_for(&self, remote: SocketAddr) -> Option<SocketAddr> {
        let remote = addr::canonical(remote);
        self.connected
            .iter()
            .chain(self.relays.iter())
            .find(|link| addr::canonical(link.remote) == remote)
            .map(|link| link.relay)
    }
}

/// The most addresses whose names are remembered; past it the memory is
/// cleared (a program resolving that many names does not reuse old ones).
const MAX_REMEMBERED: usize = 4096;
/// The most names remembered per address.
const MAX_NAMES_PER_ADDR: usize = 8;

/// Remote resolution results: address -> the names that resolved to it.
#[derive(Default)]
pub struct NameMemory {
    names: BTreeMap<IpAddr, Vec<String>>,
}

impl NameMemory {
    pub const fn new() -> Self {
        Self {
            names: BTreeMap::new(),
        }
    }

    /// Remembers that `name` resolved to each of `addrs`.
    pub fn remember(&mut self, name: &str, addrs: &[IpAddr]) {
        if self.names.len() + addrs.len() > MAX_REMEMBERED {
            self.names.clear();
        }
        for ip in addrs {
            let names = self.names.entry(addr::canonical_ip(*ip)).or_default();
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                if names.len() >= MAX_NAMES_PER_ADDR {
                    names.remove(0);
                }
                names.push(name.to_owned());
            }
        }
    }

    /// The names that resolved to `ip` (v4-mapped or not).
    pub fn names_of(&self, ip: IpAddr) -> Vec<String> {
        self.names
            .get(&addr::canonical_ip(ip))
            .cloned()
            .unwrap_or_default()
    }
}

/// Everything behind [`TABLES`].
pub struct Tables {
    pub sockets: BTreeMap<i32, Tracked>,
    pub names: NameMemory,
    /// `addrinfo` lists we allocated, by head pointer, until `freeaddrinfo`.
    pub lists: BTreeMap<usize, dns::AddrInfoList>,
}

/// `parking_lot` so the atfork handlers can lock it in `prepare` and
/// release it on both sides without a guard crossing the callbacks.
pub static TABLES: Mutex<Tables> = parking_lot::const_mutex(Tables {
    sockets: BTreeMap::new(),
    names: NameMemory::new(),
    lists: BTreeMap::new(),
});

/// `fd` is being closed (or replaced).
pub fn on_close(fd: i32) {
    let record = TABLES.lock().sockets.remove(&fd);
    fdbits::clear(fd, fdbits::SOCKET);
    if let Some(record) = record {
        incoming::closed(&record);
    }
}

/// `new` is a duplicate of `old`. (The copy is independent: a later
/// `connect` on one of them does not update the other.)
pub fn on_dup(old: i32, new: i32) {
    let mut tables = TABLES.lock();
    match tables.sockets.get(&old).cloned() {
        Some(tracked) => {
            tables.sockets.insert(new, tracked);
            fdbits::set(new, fdbits::SOCKET);
        }
        None => {
            if tables.sockets.remove(&new).is_some() {
                fdbits::clear(new, fdbits::SOCKET);
            }
        }
    }
}

/// `pthread_atfork` prepare: no other thread may hold the lock across fork.
pub(crate) fn fork_prepare() {
    std::mem::forget(TABLES.lock());
}

pub(crate) fn fork_parent() {
    // SAFETY: locked by `fork_prepare` on this thread.
    unsafe { TABLES.force_unlock() };
}

/// The child inherits the fds, so the tables stay as they are.
pub(crate) fn fork_child() {
    // SAFETY: locked by `fork_prepare` on the thread that forked, the only
    // thread in the child.
    unsafe { TABLES.force_unlock() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_remembered_per_plain_address() {
        let mut memory = NameMemory::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        memory.remember("db.internal", &[a, b]);
        memory.remember("DB.internal", &[a]);
        memory.remember("cache.internal", &[a]);
        assert_eq!(memory.names_of(a), ["db.internal", "cache.internal"]);
        assert_eq!(
            memory.names_of("::ffff:10.0.0.1".parse().unwrap()),
            ["db.internal", "cache.internal"]
        );
        assert_eq!(memory.names_of(b), ["db.internal"]);
        assert!(memory.names_of("10.0.0.2".parse().unwrap()).is_empty());
    }

    #[test]
    fn name_memory_is_bounded() {
        let mut memory = NameMemory::new();
        for i in 0..(MAX_NAMES_PER_ADDR + 3) {
            memory.remember(&format!("n{i}"), &["10.0.0.1".parse().unwrap()]);
        }
        let names = memory.names_of("10.0.0.1".parse().unwrap());
        assert_eq!(names.len(), MAX_NAMES_PER_ADDR);
        assert_eq!(names.last().map(String::as_str), Some("n10"));
        for i in 0..MAX_REMEMBERED as u32 + 10 {
            memory.remember("many", &[IpAddr::from(i.to_be_bytes())]);
        }
        assert!(memory.names.len() <= MAX_REMEMBERED);
    }

    #[test]
    fn datagram_sources_map_back_to_remotes() {
        let relay: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let remote: SocketAddr = "[::ffff:10.1.1.1]:53".parse().unwrap();
        let tracked = Tracked {
            family: libc::AF_INET6,
            connected: None,
            relays: vec![Link {
                remote,
                relay,
                local: None,
            }],
            listening: None,
        };
        assert_eq!(
            tracked.remote_behind("[::ffff:127.0.0.1]:4000".parse().unwrap()),
            Some(remote)
        );
        assert_eq!(
            tracked.remote_behind("127.0.0.1:4001".parse().unwrap()),
            None
        );
        assert_eq!(
            tracked.relay_for("10.1.1.1:53".parse().unwrap()),
            Some(relay)
        );
        assert_eq!(tracked.relay_for("10.1.1.1:54".parse().unwrap()), None);
    }
}
