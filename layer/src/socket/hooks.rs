//! The socket and resolver hooks: thin `extern "C"` detours that check the
//! cheap local cases (an `AF_UNIX` address, an fd the layer does not track,
//! a debugger's loopback port: [`setup::keeps_local`])
//! before anything else, then hand the rest to [`super::ops`].
//!
//! Hooks: `connect`, `getpeername`, `getsockname`, `sendto`, `sendmsg`,
//! `sendmmsg`, `recvfrom`, `recvmsg`, `recvmmsg`, `getaddrinfo`,
//! `freeaddrinfo`, `gethostbyname`, `gethostbyname2`, `gethostbyname_r`,
//! `gethostbyname2_r`.

use std::cell::RefCell;
use std::ffi::CStr;
use std::mem::size_of;
use std::os::raw::{c_char, c_int, c_uint, c_void};

use libc::{
    addrinfo, hostent, mmsghdr, msghdr, size_t, sockaddr, sockaddr_storage, socklen_t, ssize_t,
};

use super::dns::{self, Failure, FreeAddrInfoFn, GetAddrInfoFn, Hints};
use super::{addr, ops};
use crate::detour::run;
use crate::error::{errno, set_errno, HookError};
use crate::{fdbits, real, setup};

type ConnectFn = unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int;
type NameFn = unsafe extern "C" fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int;
type SendToFn = unsafe extern "C" fn(
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;
type RecvFromFn = unsafe extern "C" fn(
    c_int,
    *mut c_void,
    size_t,
    c_int,
    *mut sockaddr,
    *mut socklen_t,
) -> ssize_t;
type SendMsgFn = unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t;
type RecvMsgFn = unsafe extern "C" fn(c_int, *mut msghdr, c_int) -> ssize_t;
type SendMmsgFn = unsafe extern "C" fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int;
type RecvMmsgFn =
    unsafe extern "C" fn(c_int, *mut mmsghdr, c_uint, c_int, *mut libc::timespec) -> c_int;
type HostFn = unsafe extern "C" fn(*const c_char) -> *mut hostent;
type Host2Fn = unsafe extern "C" fn(*const c_char, c_int) -> *mut hostent;
type HostRFn = unsafe extern "C" fn(
    *const c_char,
    *mut hostent,
    *mut c_char,
    size_t,
    *mut *mut hostent,
    *mut c_int,
) -> c_int;
type Host2RFn = unsafe extern "C" fn(
    *const c_char,
    c_int,
    *mut hostent,
    *mut c_char,
    size_t,
    *mut *mut hostent,
    *mut c_int,
) -> c_int;

#[inline]
fn tracked(fd: c_int) -> bool {
    fdbits::has(fd, fdbits::SOCKET)
}

/// # Safety
/// libc's `connect`.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, to: *const sockaddr, len: socklen_t) -> c_int {
    let real = || real!(connect: ConnectFn)(fd, to, len);
    match addr::family(to, len) {
        Some(libc::AF_INET | libc::AF_INET6) => {}
        Some(libc::AF_UNSPEC) if tracked(fd) => {
            return run(
                || {
                    ops::forget_peer(fd);
                    Ok(None)
                },
                real,
                HookError::fail,
            )
        }
        _ => return real(),
    }
    match addr::read(to, len) {
        // The debugger's own connection: local, before any policy. A
        // tracked fd (a UDP socket with a remote peer) goes through `ops`,
        // which forgets that peer first.
        Some(dest) if !tracked(fd) && setup::keeps_local(dest) => real(),
        Some(dest) => run(|| ops::connect(fd, dest), real, HookError::fail),
        None => real(),
    }
}

/// # Safety
/// libc's `getpeername`.
#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, out: *mut sockaddr, len: *mut socklen_t) -> c_int {
    report_name(fd, out, len, real!(getpeername: NameFn), ops::peer)
}

/// # Safety
/// libc's `getsockname`.
#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, out: *mut sockaddr, len: *mut socklen_t) -> c_int {
    report_name(fd, out, len, real!(getsockname: NameFn), ops::local)
}

/// Runs the real call first (so its errors, like `ENOTCONN` while a
/// non-blocking connect is pending, stay the kernel's), then replaces the
/// relay-side address with the remote one.
unsafe fn report_name(
    fd: c_int,
    out: *mut sockaddr,
    len: *mut socklen_t,
    real: NameFn,
    remote: fn(c_int) -> Option<std::net::SocketAddr>,
) -> c_int {
    let cap = if len.is_null() { 0 } else { *len };
    let rc = real(fd, out, len);
    if rc != 0 || !tracked(fd) || out.is_null() || len.is_null() {
        return rc;
    }
    run(
        || {
            Ok(remote(fd).map(|addr| {
                *len = cap;
                addr::write(addr, out, len);
                0
            }))
        },
        || rc,
        |_| rc,
    )
}

/// # Safety
/// libc's `sendto`.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    to: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    let real = real!(sendto: SendToFn);
    let dest = match addr::family(to, len) {
        Some(libc::AF_INET | libc::AF_INET6) => addr::read(to, len),
        _ => None,
    };
    let Some(dest) = dest.filter(|dest| !setup::keeps_local(*dest)) else {
        return real(fd, buf, n, flags, to, len);
    };
    run(
        || {
            Ok(ops::datagram_target(fd, dest)?.map(|relay| {
                let (storage, relay_len) = addr::to_storage(relay);
                real(
                    fd,
                    buf,
                    n,
                    flags,
                    std::ptr::addr_of!(storage).cast(),
                    relay_len,
                )
            }))
        },
        || real(fd, buf, n, flags, to, len),
        HookError::fail,
    )
}

/// # Safety
/// libc's `sendmsg`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let real = real!(sendmsg: SendMsgFn);
    let Some(dest) = msg_dest(msg).filter(|dest| !setup::keeps_local(*dest)) else {
        return real(fd, msg, flags);
    };
    run(
        || {
            Ok(ops::datagram_target(fd, dest)?.map(|relay| {
                let (storage, relay_len) = addr::to_storage(relay);
                let mut copy = *msg;
                copy.msg_name = std::ptr::addr_of!(storage).cast_mut().cast();
                copy.msg_namelen = relay_len;
                real(fd, &copy, flags)
            }))
        },
        || real(fd, msg, flags),
        HookError::fail,
    )
}

/// The internet destination of a message, if it names one.
unsafe fn msg_dest(msg: *const msghdr) -> Option<std::net::SocketAddr> {
    if msg.is_null() {
        return None;
    }
    let name = (*msg).msg_name.cast::<sockaddr>().cast_const();
    match addr::family(name, (*msg).msg_namelen) {
        Some(libc::AF_INET | libc::AF_INET6) => addr::read(name, (*msg).msg_namelen),
        _ => None,
    }
}

/// # Safety
/// libc's `sendmmsg`.
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, n: c_uint, flags: c_int) -> c_int {
    let real = real!(sendmmsg: SendMmsgFn);
    if msgs.is_null() || n == 0 {
        return real(fd, msgs, n, flags);
    }
    let entries = std::slice::from_raw_parts_mut(msgs, n as usize);
    if !entries.iter().any(|m| msg_dest(&m.msg_hdr).is_some()) {
        return real(fd, msgs, n, flags);
    }
    run(
        || {
            let mut copies: Vec<mmsghdr> = entries.to_vec();
            let mut names: Vec<sockaddr_storage> = Vec::with_capacity(copies.len());
            let mut changed = false;
            for copy in copies.iter_mut() {
                let relay = match msg_dest(&copy.msg_hdr) {
                    Some(dest) => ops::datagram_target(fd, dest)?,
                    None => None,
                };
                if let Some(relay) = relay {
                    let (storage, relay_len) = addr::to_storage(relay);
                    names.push(storage);
                    // `names` never reallocates: its capacity is the count.
                    copy.msg_hdr.msg_name = names
                        .last_mut()
                        .map_or(std::ptr::null_mut(), |s| std::ptr::addr_of_mut!(*s).cast());
                    copy.msg_hdr.msg_namelen = relay_len;
                    changed = true;
                }
            }
            if !changed {
                return Ok(None);
            }
            let rc = real(fd, copies.as_mut_ptr(), n, flags);
            let err = errno();
            for (entry, copy) in entries.iter_mut().zip(&copies) {
                entry.msg_len = copy.msg_len;
            }
            set_errno(err);
            Ok(Some(rc))
        },
        || real(fd, msgs, n, flags),
        HookError::fail,
    )
}

/// Copies a received source address to the caller's buffer of `cap`
/// bytes, as the remote address when it came from one of `fd`'s relays.
unsafe fn report_source(
    fd: c_int,
    got: &sockaddr_storage,
    got_len: socklen_t,
    out: *mut sockaddr,
    out_len: *mut socklen_t,
    cap: socklen_t,
) {
    let saved = errno();
    let from = addr::read(std::ptr::addr_of!(*got).cast(), got_len);
    let remote = match from {
        Some(from) => run(|| Ok(Some(ops::remote_source(fd, from))), || None, |_| None),
        None => None,
    };
    match remote {
        Some(remote) => {
            *out_len = cap;
            addr::write(remote, out, out_len);
        }
        None => {
            let n = cap.min(got_len) as usize;
            std::ptr::copy_nonoverlapping(
                std::ptr::addr_of!(*got).cast::<u8>(),
                out.cast::<u8>(),
                n,
            );
            *out_len = got_len;
        }
    }
    set_errno(saved);
}

fn empty_storage() -> (sockaddr_storage, socklen_t) {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let storage = unsafe { std::mem::zeroed() };
    (storage, size_of::<sockaddr_storage>() as socklen_t)
}

/// # Safety
/// libc's `recvfrom`.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    from: *mut sockaddr,
    from_len: *mut socklen_t,
) -> ssize_t {
    let real = real!(recvfrom: RecvFromFn);
    if from.is_null() || from_len.is_null() || !tracked(fd) || !setup::enabled() {
        return real(fd, buf, n, flags, from, from_len);
    }
    let cap = *from_len;
    let (mut storage, mut len) = empty_storage();
    let rc = real(
        fd,
        buf,
        n,
        flags,
        std::ptr::addr_of_mut!(storage).cast(),
        &mut len,
    );
    if rc >= 0 {
        report_source(fd, &storage, len, from, from_len, cap);
    }
    rc
}

/// # Safety
/// libc's `recvmsg`.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let real = real!(recvmsg: RecvMsgFn);
    if msg.is_null() || (*msg).msg_name.is_null() || !tracked(fd) || !setup::enabled() {
        return real(fd, msg, flags);
    }
    let name = (*msg).msg_name;
    let cap = (*msg).msg_namelen;
    let (mut storage, len) = empty_storage();
    (*msg).msg_name = std::ptr::addr_of_mut!(storage).cast();
    (*msg).msg_namelen = len;
    let rc = real(fd, msg, flags);
    let got_len = (*msg).msg_namelen;
    (*msg).msg_name = name;
    (*msg).msg_namelen = cap;
    if rc >= 0 {
        report_source(
            fd,
            &storage,
            got_len,
            name.cast(),
            &mut (*msg).msg_namelen,
            cap,
        );
    }
    rc
}

/// # Safety
/// libc's `recvmmsg`.
#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    timeout: *mut libc::timespec,
) -> c_int {
    let real = real!(recvmmsg: RecvMmsgFn);
    if msgs.is_null() || n == 0 || !tracked(fd) || !setup::enabled() {
        return real(fd, msgs, n, flags, timeout);
    }
    let entries = std::slice::from_raw_parts_mut(msgs, n as usize);
    let saved: Vec<(*mut c_void, socklen_t)> = entries
        .iter()
        .map(|m| (m.msg_hdr.msg_name, m.msg_hdr.msg_namelen))
        .collect();
    let mut names: Vec<sockaddr_storage> = (0..n).map(|_| empty_storage().0).collect();
    for (entry, name) in entries.iter_mut().zip(names.iter_mut()) {
        if !entry.msg_hdr.msg_name.is_null() {
            entry.msg_hdr.msg_name = std::ptr::addr_of_mut!(*name).cast();
            entry.msg_hdr.msg_namelen = size_of::<sockaddr_storage>() as socklen_t;
        }
    }
    let rc = real(fd, msgs, n, flags, timeout);
    let received = usize::try_from(rc).unwrap_or(0);
    for (i, (entry, (name, cap))) in entries.iter_mut().zip(saved).enumerate() {
        let got_len = entry.msg_hdr.msg_namelen;
        entry.msg_hdr.msg_name = name;
        entry.msg_hdr.msg_namelen = cap;
        if i < received && !name.is_null() {
            report_source(
                fd,
                &names[i],
                got_len,
                name.cast(),
                &mut entry.msg_hdr.msg_namelen,
                cap,
            );
        }
    }
    rc
}

// ---------------------------------------------------------------------------
// resolver

/// # Safety
/// libc's `getaddrinfo`.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let real = || real!(getaddrinfo: GetAddrInfoFn)(node, service, hints, res);
    if node.is_null() || res.is_null() || !setup::enabled() {
        return real();
    }
    let hints = if hints.is_null() {
        Hints {
            flags: libc::AI_V4MAPPED | libc::AI_ADDRCONFIG,
            family: libc::AF_UNSPEC,
            socktype: 0,
            protocol: 0,
        }
    } else {
        Hints {
            flags: (*hints).ai_flags,
            family: (*hints).ai_family,
            socktype: (*hints).ai_socktype,
            protocol: (*hints).ai_protocol,
        }
    };
    if hints.flags & libc::AI_NUMERICHOST != 0 {
        return real();
    }
    let node = CStr::from_ptr(node);
    let service = (!service.is_null()).then(|| CStr::from_ptr(service));
    run(
        || match ops::getaddrinfo(node, service, hints)? {
            Some(Ok(head)) => {
                *res = head;
                Ok(Some(0))
            }
            Some(Err(eai)) => Ok(Some(eai)),
            None => {
                // Resolved by libc; its answer still names the addresses for
                // the outgoing filter's hostname entries.
                let Some(host) = node.to_str().ok().filter(|_| !dns::is_numeric(node)) else {
                    return Ok(None);
                };
                let rc = real();
                if rc == 0 {
                    let saved = errno();
                    dns::remember_list(host, *res);
                    set_errno(saved);
                }
                Ok(Some(rc))
            }
        },
        real,
        |err| Failure::of(&err).eai(),
    )
}

/// Frees our lists; libc's go to libc.
///
/// # Safety
/// libc's `freeaddrinfo`.
#[no_mangle]
pub unsafe extern "C" fn freeaddrinfo(ai: *mut addrinfo) {
    if !ai.is_null() && setup::enabled() && ops::free_list(ai as usize) {
        return;
    }
    real!(freeaddrinfo: FreeAddrInfoFn)(ai)
}

/// `gethostbyname`'s static result: one per thread, replaced by the next call.
struct StaticHost {
    host: hostent,
    buf: Vec<u8>,
}

thread_local! {
    static STATIC_HOST: RefCell<Option<Box<StaticHost>>> = const { RefCell::new(None) };
}

/// # Safety
/// libc's `gethostbyname`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut hostent {
    host_static(name, libc::AF_INET, || real!(gethostbyname: HostFn)(name))
}

/// # Safety
/// libc's `gethostbyname2`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut hostent {
    host_static(name, af, || real!(gethostbyname2: Host2Fn)(name, af))
}

unsafe fn host_static(
    name: *const c_char,
    af: c_int,
    real: impl FnOnce() -> *mut hostent,
) -> *mut hostent {
    if name.is_null() || !setup::enabled() {
        return real();
    }
    let name = CStr::from_ptr(name);
    run(
        || {
            Ok(ops::gethostbyname(name, af)?.map(|answer| match answer {
                Ok(answer) => fill_static(&answer),
                Err(failure) => {
                    dns::set_h_errno(failure.h_errno());
                    std::ptr::null_mut()
                }
            }))
        },
        real,
        |err| {
            dns::set_h_errno(Failure::of(&err).h_errno());
            std::ptr::null_mut()
        },
    )
}

fn fill_static(answer: &ops::HostAnswer) -> *mut hostent {
    let size = dns::hostent_size(&answer.name, answer.alias.as_deref(), answer.addrs.len());
    STATIC_HOST
        .try_with(|cell| {
            let mut slot = cell.borrow_mut();
            let host = slot.get_or_insert_with(|| {
                Box::new(StaticHost {
                    // SAFETY: all-zero is a valid `hostent`.
                    host: unsafe { std::mem::zeroed() },
                    buf: Vec::new(),
                })
            });
            host.buf.resize(size, 0);
            let StaticHost { host: ret, buf } = &mut **host;
            // SAFETY: `buf` is writable for its length.
            let filled = unsafe {
                dns::fill_hostent(
                    ret,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &answer.name,
                    answer.alias.as_deref(),
                    answer.family,
                    &answer.addrs,
                )
            };
            match filled {
                Ok(()) => std::ptr::addr_of_mut!(*ret),
                Err(dns::TooSmall) => {
                    dns::set_h_errno(dns::NO_RECOVERY);
                    std::ptr::null_mut()
                }
            }
        })
        .unwrap_or(std::ptr::null_mut())
}

/// # Safety
/// libc's `gethostbyname_r`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    host_r(name, libc::AF_INET, ret, buf, len, result, h_errnop, || {
        real!(gethostbyname_r: HostRFn)(name, ret, buf, len, result, h_errnop)
    })
}

/// # Safety
/// libc's `gethostbyname2_r`.
#[no_mangle]
pub unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
) -> c_int {
    host_r(name, af, ret, buf, len, result, h_errnop, || {
        real!(gethostbyname2_r: Host2RFn)(name, af, ret, buf, len, result, h_errnop)
    })
}

#[allow(clippy::too_many_arguments)]
unsafe fn host_r(
    name: *const c_char,
    af: c_int,
    ret: *mut hostent,
    buf: *mut c_char,
    len: size_t,
    result: *mut *mut hostent,
    h_errnop: *mut c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if name.is_null() || ret.is_null() || buf.is_null() || result.is_null() || !setup::enabled() {
        return real();
    }
    let set_h = |value: c_int| {
        if !h_errnop.is_null() {
            *h_errnop = value;
        }
    };
    let name = CStr::from_ptr(name);
    run(
        || {
            Ok(ops::gethostbyname(name, af)?.map(|answer| {
                *result = std::ptr::null_mut();
                match answer {
                    Ok(answer) => {
                        let filled = dns::fill_hostent(
                            &mut *ret,
                            buf.cast(),
                            len,
                            &answer.name,
                            answer.alias.as_deref(),
                            answer.family,
                            &answer.addrs,
                        );
                        match filled {
                            Ok(()) => {
                                *result = ret;
                                0
                            }
                            Err(dns::TooSmall) => {
                                set_h(-1); // NETDB_INTERNAL: see errno.
                                set_errno(libc::ERANGE);
                                libc::ERANGE
                            }
                        }
                    }
                    Err(failure) => {
                        set_h(failure.h_errno());
                        failure.errno()
                    }
                }
            }))
        },
        real,
        |err| {
            let failure = Failure::of(&err);
            *result = std::ptr::null_mut();
            set_h(failure.h_errno());
            failure.errno()
        },
    )
}
