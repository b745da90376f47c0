//! Remote name resolution and the C results built from it: `addrinfo`
//! lists laid out the way glibc lays them out, and `hostent` structs in a
//! caller's (or a thread-local) buffer.
//!
//! Our `addrinfo` lists live in [`super::Tables::lists`] until the program
//! hands them to `freeaddrinfo`, which is how that hook tells ours from
//! libc's.

use std::ffi::{CStr, CString};
use std::mem::{align_of, size_of};
use std::net::{IpAddr, SocketAddr};
use std::os::raw::{c_char, c_int};

use libc::{addrinfo, hostent, sockaddr_storage};
use mirrord_protocol::{AddrFamily, Request, Response};

use super::{addr, TABLES};
use crate::client;
use crate::error::HookError;

/// `getaddrinfo` and `freeaddrinfo`, as the hooks and the service lookup
/// call them.
pub type GetAddrInfoFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;
pub type FreeAddrInfoFn = unsafe extern "C" fn(*mut addrinfo);

// `<netdb.h>` values the libc crate does not export.
pub const HOST_NOT_FOUND: c_int = 1;
pub const TRY_AGAIN: c_int = 2;
pub const NO_RECOVERY: c_int = 3;
pub const NO_DATA: c_int = 4;

extern "C" {
    fn __h_errno_location() -> *mut c_int;
}

/// Sets this thread's `h_errno`.
pub fn set_h_errno(value: c_int) {
    // SAFETY: glibc returns this thread's `h_errno` slot.
    unsafe { *__h_errno_location() = value };
}

/// An answer of the target's resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub canonical: Option<String>,
    pub addrs: Vec<IpAddr>,
}

/// How a failed lookup is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The name does not exist (or has no address of the family asked).
    NotFound,
    /// Try again later (a DNS timeout, the agent busy...).
    TryAgain,
    /// Anything else.
    Fail,
}

impl Failure {
    /// The agent reports `ENOENT` for an unknown name and `EAGAIN` or
    /// `ETIMEDOUT` for a temporary failure.
    pub fn of(err: &HookError) -> Self {
        match err {
            HookError::Remote(e) if e.errno == libc::ENOENT => Failure::NotFound,
            HookError::Remote(e) if e.errno == libc::EAGAIN || e.errno == libc::ETIMEDOUT => {
                Failure::TryAgain
            }
            HookError::Timeout => Failure::TryAgain,
            HookError::Remote(_)
            | HookError::ProxyLost(_)
            | HookError::UnexpectedResponse(_)
            | HookError::BadArgument(_)
            | HookError::Internal(_) => Failure::Fail,
        }
    }

    pub fn eai(self) -> c_int {
        match self {
            Failure::NotFound => libc::EAI_NONAME,
            Failure::TryAgain => libc::EAI_AGAIN,
            Failure::Fail => libc::EAI_FAIL,
        }
    }

    pub fn h_errno(self) -> c_int {
        match self {
            Failure::NotFound => HOST_NOT_FOUND,
            Failure::TryAgain => TRY_AGAIN,
            Failure::Fail => NO_RECOVERY,
        }
    }

    /// What `gethostbyname*_r` returns besides setting `h_errno`: like
    /// glibc, 0 for a name that does not exist (the result is NULL).
    pub fn errno(self) -> c_int {
        match self {
            Failure::NotFound => 0,
            Failure::TryAgain => libc::EAGAIN,
            Failure::Fail => libc::EIO,
        }
    }
}

/// Resolves `host` through the target and remembers the answer for the
/// outgoing policy's hostname filters.
pub fn resolve(host: &str, family: AddrFamily) -> Result<Resolved, HookError> {
    match client::remote(Request::Resolve {
        host: host.to_owned(),
        family,
    })? {
        Response::Addresses { canonical, addrs } => {
            let mut tables = TABLES.lock();
            tables.names.remember(host, &addrs);
            if let Some(canonical) = &canonical {
                tables.names.remember(canonical, &addrs);
            }
            Ok(Resolved { canonical, addrs })
        }
        _ => Err(HookError::UnexpectedResponse("not addresses for a resolve")),
    }
}

/// Remembers the addresses of a list libc resolved locally for `host`, so
/// hostname entries of the outgoing filter match names resolved either way.
///
/// # Safety
/// `list` must be null or a list `getaddrinfo` returned.
pub unsafe fn remember_list(host: &str, list: *const addrinfo) {
    let mut addrs = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        let ai = &*cur;
        if let Some(found) = addr::read(ai.ai_addr, ai.ai_addrlen) {
            if !addrs.contains(&found.ip()) {
                addrs.push(found.ip());
            }
        }
        cur = ai.ai_next;
    }
    if !addrs.is_empty() {
        TABLES.lock().names.remember(host, &addrs);
    }
}

/// Whether `host` is an address literal that libc handles without any
/// lookup (IPv6, or any IPv4 form `inet_aton` accepts, like `127.1`).
pub fn is_numeric(host: &CStr) -> bool {
    extern "C" {
        fn inet_aton(cp: *const c_char, inp: *mut libc::in_addr) -> c_int;
    }
    if host.to_bytes().contains(&b':') {
        return true;
    }
    let mut out = libc::in_addr { s_addr: 0 };
    // SAFETY: a NUL-terminated string and a valid out pointer.
    unsafe { inet_aton(host.as_ptr(), &mut out) != 0 }
}

/// One (socket type, protocol, port) combination of a result, as glibc
/// derives them from the hints and the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub socktype: c_int,
    pub protocol: c_int,
    pub port: u16,
}

/// The hints fields the lookup uses (`NULL` hints = all zero but the
/// flags, which glibc then sets to `AI_V4MAPPED | AI_ADDRCONFIG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub flags: c_int,
    pub family: c_int,
    pub socktype: c_int,
    pub protocol: c_int,
}

/// glibc's `AI_IDN` and `AI_CANONIDN` (IDNA conversion of the name and of
/// the canonical name; the target's resolver gets the name as given).
pub const AI_IDN: c_int = 0x0040;
pub const AI_CANONIDN: c_int = 0x0080;

/// The flags the remote path understands; hints with others go to libc,
/// which reports `EAI_BADFLAGS` or handles the exotic case itself.
pub const KNOWN_FLAGS: c_int = libc::AI_PASSIVE
    | libc::AI_CANONNAME
    | libc::AI_V4MAPPED
    | libc::AI_ALL
    | libc::AI_ADDRCONFIG
    | libc::AI_NUMERICSERV
    | AI_IDN
    | AI_CANONIDN;

impl Hints {
    /// Whether libc would accept these hints for a name lookup; otherwise
    /// the call goes to libc for its own error.
    pub fn acceptable(&self) -> bool {
        self.flags & !KNOWN_FLAGS == 0
            && matches!(
                self.family,
                libc::AF_UNSPEC | libc::AF_INET | libc::AF_INET6
            )
    }

    /// The family to ask the target for.
    pub fn wanted(&self) -> AddrFamily {
        match self.family {
            libc::AF_INET => AddrFamily::V4,
            libc::AF_INET6 if self.flags & libc::AI_V4MAPPED == 0 => AddrFamily::V6,
            _ => AddrFamily::Any,
        }
    }

    /// The addresses of `answer` a result holds, in the family asked
    /// (IPv4 becomes v4-mapped for `AF_INET6` with `AI_V4MAPPED` when there
    /// is no IPv6 address, or always with `AI_ALL`).
    pub fn select(&self, answer: &[IpAddr]) -> Vec<IpAddr> {
        let v4 = answer.iter().filter(|ip| ip.is_ipv4()).copied();
        let v6 = answer.iter().filter(|ip| ip.is_ipv6()).copied();
        match self.family {
            libc::AF_INET => v4.collect(),
            libc::AF_INET6 => {
                let mut out: Vec<IpAddr> = v6.collect();
                let mapped = self.flags & libc::AI_V4MAPPED != 0
                    && (out.is_empty() || self.flags & libc::AI_ALL != 0);
                if mapped {
                    out.extend(answer.iter().filter_map(|ip| match ip {
                        IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
                        IpAddr::V6(_) => None,
                    }));
                }
                out
            }
            _ => answer.to_vec(),
        }
    }
}

/// The kinds glibc would produce for `service` and the hints, found by
/// asking the real `getaddrinfo` with no host (no name lookup happens then,
/// and the port, socket types and errors are exactly libc's). `Err` is the
/// `EAI_*` code libc returns.
pub fn service_kinds(service: Option<&CStr>, hints: &Hints) -> Result<Vec<Kind>, c_int> {
    if service.is_none() && hints.socktype == libc::SOCK_RAW {
        // A raw socket has no service, and libc refuses one even if "0".
        return Ok(vec![Kind {
            socktype: libc::SOCK_RAW,
            protocol: hints.protocol,
            port: 0,
        }]);
    }
    let service = service.unwrap_or(c"0");
    // SAFETY: all-zero is a valid `addrinfo` (null pointers).
    let mut ask: addrinfo = unsafe { std::mem::zeroed() };
    ask.ai_flags = libc::AI_PASSIVE | (hints.flags & libc::AI_NUMERICSERV);
    if service.to_bytes() == b"0" {
        ask.ai_flags |= libc::AI_NUMERICSERV;
    }
    ask.ai_family = libc::AF_INET;
    ask.ai_socktype = hints.socktype;
    ask.ai_protocol = hints.protocol;
    let mut res: *mut addrinfo = std::ptr::null_mut();
    // SAFETY: valid strings and hints; `res` is freed below.
    let rc = unsafe {
        crate::real!(getaddrinfo: GetAddrInfoFn)(std::ptr::null(), service.as_ptr(), &ask, &mut res)
    };
    if rc != 0 {
        return Err(rc);
    }
    let mut kinds = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: a list libc just returned.
        let ai = unsafe { &*cur };
        // SAFETY: libc's entries carry a valid address of `ai_addrlen` bytes.
        let port = unsafe { addr::read(ai.ai_addr, ai.ai_addrlen) }.map_or(0, |a| a.port());
        kinds.push(Kind {
            socktype: ai.ai_socktype,
            protocol: ai.ai_protocol,
            port,
        });
        cur = ai.ai_next;
    }
    // SAFETY: the list libc returned, freed once.
    unsafe { crate::real!(freeaddrinfo: FreeAddrInfoFn)(res) };
    Ok(kinds)
}

/// An `addrinfo` list we allocated: the entries, their addresses and the
/// canonical name, each in a buffer that never moves.
pub struct AddrInfoList {
    entries: Vec<addrinfo>,
    _addrs: Vec<sockaddr_storage>,
    _canonical: Option<CString>,
}

// SAFETY: the raw pointers inside point only into the list's own buffers,
// which move with it; nothing is shared with another owner.
unsafe impl Send for AddrInfoList {}

impl AddrInfoList {
    /// One entry per address and kind, addresses outermost, like glibc.
    /// `None` when that makes no entry.
    pub fn build(
        addrs: &[IpAddr],
        kinds: &[Kind],
        flags: c_int,
        canonical: Option<&str>,
    ) -> Option<Self> {
        let count = addrs.len() * kinds.len();
        if count == 0 {
            return None;
        }
        let mut storage = Vec::with_capacity(count);
        let mut lens = Vec::with_capacity(count);
        for ip in addrs {
            for kind in kinds {
                let (s, len) = addr::to_storage(SocketAddr::new(*ip, kind.port));
                storage.push(s);
                lens.push(len);
            }
        }
        let canonical = canonical.and_then(|c| CString::new(c).ok());
        let mut entries: Vec<addrinfo> = Vec::with_capacity(count);
        let mut i = 0;
        for ip in addrs {
            for kind in kinds {
                entries.push(addrinfo {
                    ai_flags: flags,
                    ai_family: addr::family_of(SocketAddr::new(*ip, 0)),
                    ai_socktype: kind.socktype,
                    ai_protocol: kind.protocol,
                    ai_addrlen: lens[i],
                    ai_addr: std::ptr::addr_of_mut!(storage[i]).cast(),
                    ai_canonname: std::ptr::null_mut(),
                    ai_next: std::ptr::null_mut(),
                });
                i += 1;
            }
        }
        let base = entries.as_mut_ptr();
        for (i, entry) in entries.iter_mut().enumerate().take(count - 1) {
            // SAFETY: `i + 1 < count`, within the buffer.
            entry.ai_next = unsafe { base.add(i + 1) };
        }
        if let Some(name) = &canonical {
            entries[0].ai_canonname = name.as_ptr().cast_mut();
        }
        Some(Self {
            entries,
            _addrs: storage,
            _canonical: canonical,
        })
    }

    /// Whether `ptr` is one of the list's entries.
    pub fn contains(&self, ptr: usize) -> bool {
        let start = self.entries.as_ptr() as usize;
        let end = start + self.entries.len() * size_of::<addrinfo>();
        (start..end).contains(&ptr)
    }

    /// The list's head, as `getaddrinfo` returns it.
    pub fn head(&mut self) -> *mut addrinfo {
        self.entries.as_mut_ptr()
    }
}

/// The caller's buffer cannot hold the result (`ERANGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSmall;

/// Fills `ret` and `buf` as `gethostbyname_r` does: `h_name`, no or one
/// alias, and the addresses (all of family `af`). `Err` when `buf` is
/// too small.
///
/// # Safety
/// `buf` must be writable for `len` bytes.
pub unsafe fn fill_hostent(
    ret: &mut hostent,
    buf: *mut u8,
    len: usize,
    name: &str,
    alias: Option<&str>,
    af: c_int,
    addrs: &[IpAddr],
) -> Result<(), TooSmall> {
    let addr_len = if af == libc::AF_INET6 { 16 } else { 4 };
    let ptr = size_of::<*mut c_char>();
    let pad = buf.align_offset(align_of::<*mut c_char>());
    let aliases_at = pad;
    let list_at = aliases_at + ptr * 2;
    let bytes_at = list_at + ptr * (addrs.len() + 1);
    let name_at = bytes_at + addr_len * addrs.len();
    let alias_at = name_at + name.len() + 1;
    let end = alias_at + alias.map_or(0, |a| a.len() + 1);
    if pad > len || end > len {
        return Err(TooSmall);
    }
    let put_str = |at: usize, s: &str| {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.add(at), s.len());
        *buf.add(at + s.len()) = 0;
        buf.add(at).cast::<c_char>()
    };
    let aliases = buf.add(aliases_at).cast::<*mut c_char>();
    match alias {
        Some(a) => {
            *aliases = put_str(alias_at, a);
            *aliases.add(1) = std::ptr::null_mut();
        }
        None => *aliases = std::ptr::null_mut(),
    }
    let list = buf.add(list_at).cast::<*mut c_char>();
    for (i, ip) in addrs.iter().enumerate() {
        let at = buf.add(bytes_at + i * addr_len);
        match ip {
            IpAddr::V4(v4) => std::ptr::copy_nonoverlapping(v4.octets().as_ptr(), at, 4),
            IpAddr::V6(v6) => std::ptr::copy_nonoverlapping(v6.octets().as_ptr(), at, 16),
        }
        *list.add(i) = at.cast();
    }
    *list.add(addrs.len()) = std::ptr::null_mut();
    ret.h_name = put_str(name_at, name);
    ret.h_aliases = aliases;
    ret.h_addrtype = af;
    ret.h_length = addr_len as c_int;
    ret.h_addr_list = list;
    Ok(())
}

/// A buffer size that always fits [`fill_hostent`]'s output.
pub fn hostent_size(name: &str, alias: Option<&str>, addrs: usize) -> usize {
    let ptr = size_of::<*mut c_char>();
    ptr + ptr * (addrs + 3) + 16 * addrs + name.len() + alias.map_or(0, str::len) + 2
}

/// The addresses of `answer` a `hostent` of family `af` holds.
pub fn hostent_addrs(af: c_int, answer: &[IpAddr]) -> Vec<IpAddr> {
    answer
        .iter()
        .filter(|ip| match af {
            libc::AF_INET6 => ip.is_ipv6(),
            _ => ip.is_ipv4(),
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn tcp_udp_raw() -> Vec<Kind> {
        vec![
            Kind {
                socktype: libc::SOCK_STREAM,
                protocol: libc::IPPROTO_TCP,
                port: 80,
            },
            Kind {
                socktype: libc::SOCK_DGRAM,
                protocol: libc::IPPROTO_UDP,
                port: 80,
            },
            Kind {
                socktype: libc::SOCK_RAW,
                protocol: 0,
                port: 80,
            },
        ]
    }

    /// Reads a list back into (family, socktype, protocol, address, canonical name).
    fn walk(head: *const addrinfo) -> Vec<(c_int, c_int, c_int, SocketAddr, Option<String>)> {
        let mut out = Vec::new();
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: a list built by the code under test.
            let ai = unsafe { &*cur };
            let addr = unsafe { addr::read(ai.ai_addr, ai.ai_addrlen) }.unwrap();
            let canon = (!ai.ai_canonname.is_null()).then(|| {
                // SAFETY: a NUL-terminated name we stored.
                unsafe { CStr::from_ptr(ai.ai_canonname) }
                    .to_string_lossy()
                    .into_owned()
            });
            out.push((ai.ai_family, ai.ai_socktype, ai.ai_protocol, addr, canon));
            cur = ai.ai_next;
        }
        out
    }

    #[test]
    fn lists_have_one_entry_per_address_and_kind_in_glibc_order() {
        let mut list = AddrInfoList::build(
            &ips(&["10.0.0.1", "2001:db8::1"]),
            &tcp_udp_raw(),
            libc::AI_CANONNAME,
            Some("db.internal"),
        )
        .unwrap();
        let entries = walk(list.head());
        assert_eq!(entries.len(), 6);
        assert_eq!(entries[0].0, libc::AF_INET);
        assert_eq!(entries[0].1, libc::SOCK_STREAM);
        assert_eq!(entries[1].2, libc::IPPROTO_UDP);
        assert_eq!(entries[2].1, libc::SOCK_RAW);
        assert_eq!(entries[3].0, libc::AF_INET6);
        assert_eq!(entries[0].3, "10.0.0.1:80".parse().unwrap());
        assert_eq!(entries[5].3, "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(entries[0].4.as_deref(), Some("db.internal"));
        assert!(entries[1..].iter().all(|e| e.4.is_none()));
        // SAFETY: the head of a list we built.
        assert_eq!(unsafe { (*list.head()).ai_addrlen } as usize, 16);
    }

    #[test]
    fn empty_answers_make_no_list() {
        assert!(AddrInfoList::build(&[], &tcp_udp_raw(), 0, None).is_none());
        assert!(AddrInfoList::build(&ips(&["10.0.0.1"]), &[], 0, None).is_none());
    }

    #[test]
    fn lists_are_freed_through_the_table_by_head() {
        let mut list =
            AddrInfoList::build(&ips(&["10.0.0.9"]), &tcp_udp_raw()[..1], 0, None).unwrap();
        let head = list.head() as usize;
        TABLES.lock().lists.insert(head, list);
        assert!(TABLES.lock().lists.get(&head).unwrap().contains(head));
        assert!(!TABLES
            .lock()
            .lists
            .get(&head)
            .unwrap()
            .contains(head + 4096));
        assert!(TABLES.lock().lists.remove(&head).is_some());
        assert!(TABLES.lock().lists.remove(&head).is_none());
    }

    #[test]
    fn service_kinds_match_glibc() {
        let any = Hints {
            flags: 0,
            family: libc::AF_UNSPEC,
            socktype: 0,
            protocol: 0,
        };
        let kinds = service_kinds(Some(c"8080"), &any).unwrap();
        assert_eq!(
            kinds
                .iter()
                .map(|k| (k.socktype, k.port))
                .collect::<Vec<_>>(),
            [
                (libc::SOCK_STREAM, 8080),
                (libc::SOCK_DGRAM, 8080),
                (libc::SOCK_RAW, 8080)
            ]
        );
        let stream = Hints {
            socktype: libc::SOCK_STREAM,
            ..any
        };
        let kinds = service_kinds(None, &stream).unwrap();
        assert_eq!(
            kinds,
            [Kind {
                socktype: libc::SOCK_STREAM,
                protocol: libc::IPPROTO_TCP,
                port: 0
            }]
        );
        assert_eq!(
            service_kinds(Some(c"no-such-service-x"), &any),
            Err(libc::EAI_SERVICE)
        );
        let numeric_only = Hints {
            flags: libc::AI_NUMERICSERV,
            ..stream
        };
        assert_eq!(
            service_kinds(Some(c"http"), &numeric_only),
            Err(libc::EAI_NONAME)
        );
    }

    #[test]
    fn families_are_selected_like_glibc() {
        let answer = ips(&["10.0.0.1", "2001:db8::1"]);
        let hints = |family, flags| Hints {
            flags,
            family,
            socktype: 0,
            protocol: 0,
        };
        assert_eq!(hints(libc::AF_INET, 0).select(&answer), ips(&["10.0.0.1"]));
        assert_eq!(
            hints(libc::AF_INET6, 0).select(&answer),
            ips(&["2001:db8::1"])
        );
        assert_eq!(hints(libc::AF_UNSPEC, 0).select(&answer), answer);
        let v4only = ips(&["10.0.0.1"]);
        assert!(hints(libc::AF_INET6, 0).select(&v4only).is_empty());
        assert_eq!(
            hints(libc::AF_INET6, libc::AI_V4MAPPED).select(&v4only),
            ips(&["::ffff:10.0.0.1"])
        );
        assert_eq!(
            hints(libc::AF_INET6, libc::AI_V4MAPPED | libc::AI_ALL).select(&answer),
            ips(&["2001:db8::1", "::ffff:10.0.0.1"])
        );
        assert_eq!(
            hints(libc::AF_INET6, libc::AI_V4MAPPED).wanted(),
            AddrFamily::Any
        );
        assert!(!hints(libc::AF_UNIX, 0).acceptable());
        assert!(!hints(libc::AF_INET, 0x10000).acceptable());
    }

    #[test]
    fn numeric_hosts_are_recognised() {
        for numeric in [c"127.0.0.1", c"127.1", c"0x7f.1", c"::1", c"fe80::1%lo"] {
            assert!(is_numeric(numeric), "{numeric:?}");
        }
        for name in [c"localhost", c"db.internal", c"cafe"] {
            assert!(!is_numeric(name), "{name:?}");
        }
    }

    #[test]
    fn hostents_fit_or_report_erange() {
        // SAFETY: all-zero is a valid `hostent`.
        let mut ret: hostent = unsafe { std::mem::zeroed() };
        let mut buf = vec![0u8; 256];
        let addrs = ips(&["10.0.0.1", "10.0.0.2"]);
        // SAFETY: `buf` is writable for its length.
        unsafe {
            fill_hostent(
                &mut ret,
                buf.as_mut_ptr().add(1),
                255,
                "db.example",
                Some("db"),
                libc::AF_INET,
                &addrs,
            )
        }
        .unwrap();
        // SAFETY: reading back what was written.
        unsafe {
            assert_eq!(CStr::from_ptr(ret.h_name).to_str().unwrap(), "db.example");
            assert_eq!(CStr::from_ptr(*ret.h_aliases).to_str().unwrap(), "db");
            assert!((*ret.h_aliases.add(1)).is_null());
            assert_eq!(ret.h_length, 4);
            let second = std::slice::from_raw_parts((*ret.h_addr_list.add(1)).cast::<u8>(), 4);
            assert_eq!(second, [10, 0, 0, 2]);
            assert!((*ret.h_addr_list.add(2)).is_null());
        }
        // SAFETY: as above, a too small buffer.
        let small = unsafe {
            fill_hostent(
                &mut ret,
                buf.as_mut_ptr(),
                20,
                "db.example",
                None,
                libc::AF_INET,
                &addrs,
            )
        };
        assert_eq!(small, Err(TooSmall));
    }

    #[test]
    fn failures_map_to_eai_and_h_errno() {
        let remote = |errno| HookError::Remote(mirrord_protocol::RemoteError::new(errno, "x"));
        assert_eq!(Failure::of(&remote(libc::ENOENT)).eai(), libc::EAI_NONAME);
        assert_eq!(Failure::of(&remote(libc::ETIMEDOUT)).eai(), libc::EAI_AGAIN);
        assert_eq!(Failure::of(&remote(libc::EAGAIN)).h_errno(), TRY_AGAIN);
        assert_eq!(Failure::of(&remote(libc::EPERM)).eai(), libc::EAI_FAIL);
        assert_eq!(Failure::of(&HookError::Timeout).eai(), libc::EAI_AGAIN);
    }
}
