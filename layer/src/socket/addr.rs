//! Conversions between C socket addresses (`sockaddr_in`, `sockaddr_in6`)
//! and Rust's [`SocketAddr`], and the family rules the hooks share: a
//! remote IPv4 address is reported to an `AF_INET6` socket in its
//! v4-mapped form (`::ffff:a.b.c.d`), as the kernel itself would.

use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{c_int, sa_family_t, sockaddr, sockaddr_in, sockaddr_in6, sockaddr_storage, socklen_t};

/// Reads an `AF_INET`/`AF_INET6` address; `None` for a null pointer, a
/// length too short for its family, or any other family (`AF_UNIX`...).
///
/// # Safety
/// `ptr` must be null or point to at least `len` readable bytes.
pub unsafe fn read(ptr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    if ptr.is_null() || len < size_of::<sa_family_t>() {
        return None;
    }
    match c_int::from((*ptr).sa_family) {
        libc::AF_INET if len >= size_of::<sockaddr_in>() => {
            let sin = ptr.cast::<sockaddr_in>().read_unaligned();
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<sockaddr_in6>() => {
            let sin6 = ptr.cast::<sockaddr_in6>().read_unaligned();
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The family of the address at `ptr`, or `None` when it cannot be read.
///
/// # Safety
/// As [`read`].
pub unsafe fn family(ptr: *const sockaddr, len: socklen_t) -> Option<c_int> {
    if ptr.is_null() || (len as usize) < size_of::<sa_family_t>() {
        None
    } else {
        Some(c_int::from((*ptr).sa_family))
    }
}

/// A C address for `addr`, with the length of its family's struct.
pub fn to_storage(addr: SocketAddr) -> (sockaddr_storage, socklen_t) {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut storage: sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(v4) => {
            let sin = sockaddr_in {
                sin_family: libc::AF_INET as sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*v4.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for `sockaddr_in`.
            unsafe {
                std::ptr::addr_of_mut!(storage)
                    .cast::<sockaddr_in>()
                    .write(sin)
            };
            size_of::<sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = sockaddr_in6 {
                sin6_family: libc::AF_INET6 as sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe {
                std::ptr::addr_of_mut!(storage)
                    .cast::<sockaddr_in6>()
                    .write(sin6)
            };
            size_of::<sockaddr_in6>()
        }
    };
    (storage, len as socklen_t)
}

/// Writes `addr` the way the kernel fills an address out-parameter: at most
/// `*len` bytes are copied (truncating silently), and `*len` becomes the
/// full size. Null pointers are left alone.
///
/// # Safety
/// `out` must be null or writable for `*len` bytes; `len` null or valid.
pub unsafe fn write(addr: SocketAddr, out: *mut sockaddr, len: *mut socklen_t) {
    if out.is_null() || len.is_null() {
        return;
    }
    let (storage, full) = to_storage(addr);
    let n = (*len).min(full) as usize;
    std::ptr::copy_nonoverlapping(
        std::ptr::addr_of!(storage).cast::<u8>(),
        out.cast::<u8>(),
        n,
    );
    *len = full;
}

/// The plain form used as a table key and sent to the intproxy: a
/// v4-mapped IPv6 address becomes IPv4 (flow info and scope dropped).
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// The IP in its plain form (see [`canonical`]).
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `addr` as a socket of `family` sees it: IPv4 becomes v4-mapped for
/// `AF_INET6`, a v4-mapped address becomes IPv4 for `AF_INET`; anything
/// else is returned unchanged.
pub fn in_family(addr: SocketAddr, family: c_int) -> SocketAddr {
    match (addr, family) {
        (SocketAddr::V4(v4), libc::AF_INET6) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        (SocketAddr::V6(_), libc::AF_INET) => canonical(addr),
        _ => addr,
    }
}

/// The `AF_*` family of an address.
pub fn family_of(addr: SocketAddr) -> c_int {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(addr: SocketAddr) {
        let (storage, len) = to_storage(addr);
        // SAFETY: a valid storage and its length.
        let back = unsafe { read(std::ptr::addr_of!(storage).cast(), len) };
        assert_eq!(back, Some(addr));
    }

    #[test]
    fn v4_v6_and_mapped_round_trip() {
        for a in [
            "1.2.3.4:80",
            "127.0.0.1:65535",
            "[2001:db8::1]:443",
            "[::ffff:10.0.0.1]:53",
        ] {
            round_trip(a.parse().unwrap());
        }
        round_trip(SocketAddr::V6(SocketAddrV6::new(
            "fe80::1".parse().unwrap(),
            9,
            7,
            3,
        )));
    }

    #[test]
    fn short_null_and_foreign_addresses_are_not_read() {
        let (storage, len) = to_storage("1.2.3.4:80".parse().unwrap());
        let p = std::ptr::addr_of!(storage).cast();
        // SAFETY: reading within the storage.
        unsafe {
            assert_eq!(read(p, len - 1), None);
            assert_eq!(read(p, 0), None);
            assert_eq!(read(std::ptr::null(), 16), None);
        }
        let mut unix: sockaddr_storage = unsafe { std::mem::zeroed() };
        unix.ss_family = libc::AF_UNIX as sa_family_t;
        // SAFETY: as above.
        unsafe { assert_eq!(read(std::ptr::addr_of!(unix).cast(), 110), None) };
    }

    #[test]
    fn families_map_like_the_kernel() {
        let v4: SocketAddr = "1.2.3.4:80".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(in_family(v4, libc::AF_INET6), mapped);
        assert_eq!(in_family(mapped, libc::AF_INET), v4);
        assert_eq!(in_family(v4, libc::AF_INET), v4);
        assert_eq!(in_family(v6, libc::AF_INET), v6);
        assert_eq!(canonical(mapped), v4);
        assert_eq!(canonical(v6), v6);
        assert_eq!(canonical_ip(mapped.ip()), v4.ip());
    }

    #[test]
    fn write_truncates_and_reports_the_full_length() {
        let addr: SocketAddr = "[2001:db8::2]:8080".parse().unwrap();
        let mut out = [0u8; 8];
        let mut len: socklen_t = 8;
        // SAFETY: `out` holds `len` bytes.
        unsafe { write(addr, out.as_mut_ptr().cast(), &mut len) };
        assert_eq!(len as usize, size_of::<sockaddr_in6>());
        assert_eq!(u16::from_ne_bytes([out[0], out[1]]), libc::AF_INET6 as u16);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 8080);

        let mut full: sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = size_of::<sockaddr_storage>() as socklen_t;
        // SAFETY: a whole storage.
        unsafe { write(addr, std::ptr::addr_of_mut!(full).cast(), &mut len) };
        // SAFETY: as above.
        assert_eq!(
            unsafe { read(std::ptr::addr_of!(full).cast(), len) },
            Some(addr)
        );
    }
}
