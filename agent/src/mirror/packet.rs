//! Parsing one captured IPv4 or IPv6 packet (the capture sockets are
//! `SOCK_DGRAM`, so the buffer starts at the IP header) into the TCP
//! segment it carries. IPv6 hop-by-hop, routing and destination options
//! headers before TCP are walked past (at most [`MAX_EXTENSION_HEADERS`],
//! every length checked against the packet). Fragments (IPv4 or an IPv6
//! fragment header), IPv6 packets with any other extension header before
//! TCP (AH, ESP...), and non-TCP packets are not segments. TCP options
//! are skipped, not read (no window scaling or SACK is needed to
//! reassemble one direction of a stream).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP segment, borrowing the packet's payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// IPv6 extension headers walked before TCP; the capture filter walks
/// as many (its program has no loops, each one is unrolled). Four is what
/// RFC 8200's order allows before TCP without a fragment or security
/// header: hop-by-hop, destination options, routing, destination options.
pub const MAX_EXTENSION_HEADERS: usize = 4;
/// The IPv6 extension headers walked past: their length is the second
/// byte, in 8-byte units after the first 8.
pub const HOP_BY_HOP: u8 = 0;
pub const ROUTING: u8 = 43;
pub const DESTINATION_OPTIONS: u8 = 60;
/// The IP protocol number of TCP.
pub const TCP: u8 = 6;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The TCP segment in `packet`, or `None` for anything else (or a packet
/// too short for the lengths its headers claim).
pub fn parse(packet: &[u8]) -> Option<Segment<'_>> {
    match *packet.first()? >> 4 {
        4 => parse_v4(packet),
        6 => parse_v6(packet),
        _ => None,
    }
}

/// An IPv4 packet: the header's own length (IHL), the total length (link
/// padding past it is cut), no fragment.
fn parse_v4(packet: &[u8]) -> Option<Segment<'_>> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    let frag = u16::from_be_bytes([*packet.get(6)?, *packet.get(7)?]);
    // More fragments, or a fragment offset: not a whole segment.
    if frag & 0x3fff != 0 || *packet.get(9)? != 6 || ihl < 20 || total < ihl {
        return None;
    }
    let ip = packet.get(..total)?;
    let addr = |at: usize| Some(Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]));
    let (src_ip, dst_ip) = (addr(12)?, addr(16)?);
    tcp(src_ip.into(), dst_ip.into(), ip.get(ihl..)?)
}

/// An IPv6 packet: a 40-byte header, then up to
/// [`MAX_EXTENSION_HEADERS`] hop-by-hop, routing or destination options
/// headers, then TCP; the payload length (link padding past it is cut).
fn parse_v6(packet: &[u8]) -> Option<Segment<'_>> {
    const HEADER: usize = 40;
    let payload = usize::from(u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]));
    let ip = packet.get(..HEADER + payload)?;
    let addr = |at: usize| -> Option<Ipv6Addr> {
        let bytes: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
        Some(bytes.into())
    };
    let (src_ip, dst_ip) = (addr(8)?, addr(24)?);
    let mut next = *ip.get(6)?;
    let mut at = HEADER;
    for _ in 0..MAX_EXTENSION_HEADERS {
        if !matches!(next, HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS) {
            break;
        }
        next = *ip.get(at)?;
        at += (usize::from(*ip.get(at + 1)?) + 1) * 8;
    }
    if next != TCP {
        return None;
    }
    tcp(src_ip.into(), dst_ip.into(), ip.get(at..)?)
}

/// The TCP header and payload of a packet from `src_ip` to `dst_ip`.
fn tcp(src_ip: std::net::IpAddr, dst_ip: std::net::IpAddr, tcp: &[u8]) -> Option<Segment<'_>> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*tcp.get(at)?, *tcp.get(at + 1)?]));
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    let offset = usize::from(*tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    if offset < 20 {
        return None;
    }
    Some(Segment {
        src: SocketAddr::new(src_ip, be16(0)?),
        dst: SocketAddr::new(dst_ip, be16(2)?),
        seq,
        syn: flags & SYN != 0,
        ack: flags & ACK != 0,
        fin: flags & FIN != 0,
        rst: flags & RST != 0,
        payload: tcp.get(offset..)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv4/TCP packet (`options` words of TCP options), padded with
    /// `trailer` bytes past the IP total length (as Ethernet padding is).
    pub(crate) fn packet(
        src: u16,
        dst: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
        options: usize,
        trailer: usize,
    ) -> Vec<u8> {
        let tcp_len = 20 + options * 4;
        let total = 20 + tcp_len + payload.len();
        let mut p = vec![0u8; total + trailer];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[127, 0, 0, 1]);
        p[20..22].copy_from_slice(&src.to_be_bytes());
        p[22..24].copy_from_slice(&dst.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = ((tcp_len / 4) as u8) << 4;
        p[33] = flags;
        p[20 + tcp_len..total].copy_from_slice(payload);
        p
    }

    /// [`packet`] as IPv6 (`2001:db8::1` to `::1`), with `next` as the
    /// next header.
    pub(crate) fn packet_v6(
        src: u16,
        dst: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
        trailer: usize,
        next: u8,
    ) -> Vec<u8> {
        let v4 = packet(src, dst, seq, flags, payload, 0, 0);
        let tcp = &v4[20..];
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
        p[6] = next;
        p[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        p[24..40].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(tcp);
        p.resize(p.len() + trailer, 0);
        p
    }

    /// [`packet_v6`] with extension headers before TCP: each `(kind,
    /// units)` is a header of type `kind` and length byte `units` (so
    /// `(units + 1) * 8` bytes, filled with `0xee`).
    pub(crate) fn packet_v6_ext(exts: &[(u8, u8)], dst: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let plain = packet_v6(40000, dst, 1, flags, payload, 0, TCP);
        let mut chain = Vec::new();
        for (i, (_, units)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(TCP, |(kind, _)| *kind);
            let mut header = vec![0xee; (usize::from(*units) + 1) * 8];
            header[0] = next;
            header[1] = *units;
            chain.extend(header);
        }
        let mut p = plain[..40].to_vec();
        p[6] = exts.first().map_or(TCP, |(kind, _)| *kind);
        let length = plain.len() - 40 + chain.len();
        p[4..6].copy_from_slice(&(length as u16).to_be_bytes());
        p.extend(chain);
        p.extend_from_slice(&plain[40..]);
        p
    }

    #[test]
    fn ipv6_extension_headers_before_tcp_are_walked_past() {
        let check = |exts: &[(u8, u8)]| {
            let p = packet_v6_ext(exts, 8080, ACK, b"data");
            let s = parse(&p).unwrap_or_else(|| panic!("{exts:?}"));
            assert_eq!(s.dst, "[::1]:8080".parse().unwrap(), "{exts:?}");
            assert_eq!(s.payload, b"data", "{exts:?}");
        };
        check(&[]);
        check(&[(HOP_BY_HOP, 0)]);
        check(&[(ROUTING, 2)]);
        check(&[(HOP_BY_HOP, 0), (DESTINATION_OPTIONS, 1), (ROUTING, 255)]);
        check(&[
            (HOP_BY_HOP, 0),
            (DESTINATION_OPTIONS, 0),
            (ROUTING, 0),
            (DESTINATION_OPTIONS, 3),
        ]);
    }

    #[test]
    fn ipv6_packets_the_parser_does_not_walk_are_dropped() {
        // A fragment header, AH, no next header; one header too many.
        for kind in [44, 51, 59] {
            assert_eq!(parse(&packet_v6_ext(&[(kind, 0)], 8080, ACK, b"x")), None);
            let p = packet_v6_ext(&[(HOP_BY_HOP, 0), (kind, 0)], 8080, ACK, b"x");
            assert_eq!(parse(&p), None, "{kind}");
        }
        let five = [(DESTINATION_OPTIONS, 0); MAX_EXTENSION_HEADERS + 1];
        assert_eq!(parse(&packet_v6_ext(&five, 8080, ACK, b"x")), None);
        // A header whose length runs past the packet.
        let mut p = packet_v6_ext(&[(HOP_BY_HOP, 0)], 8080, ACK, b"x");
        p[41] = 200;
        assert_eq!(parse(&p), None);
    }

    #[test]
    fn truncated_ipv6_packets_are_not_segments() {
        let exts = [(HOP_BY_HOP, 1), (ROUTING, 0)];
        let whole = packet_v6_ext(&exts, 8080, ACK, b"abc");
        assert!(parse(&whole).is_some());
        for len in 0..whole.len() {
            assert_eq!(parse(&whole[..len]), None, "cut at {len}");
        }
    }

    /// A small xorshift generator: the same bytes on every run.
    pub(crate) fn garbage(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed as u8
            })
            .collect()
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            let len = round % 160;
            let mut p = garbage(&mut seed, len);
            if let Some(first) = p.first_mut() {
                // Mostly IPv6 with small lengths, so the walk runs deep.
                *first = if round % 3 == 0 { 0x45 } else { 0x60 };
            }
            if p.len() > 6 && round % 2 == 0 {
                p[4] = 0;
                p[6] = [HOP_BY_HOP, ROUTING, DESTINATION_OPTIONS, TCP][round % 4];
            }
            if let Some(segment) = parse(&p) {
                assert!(segment.payload.len() <= p.len());
            }
        }
    }

    #[test]
    fn an_ipv6_segment_with_padding() {
        let p = packet_v6(40000, 8080, 9, SYN, b"hi", 4, 6);
        let s = parse(&p).unwrap();
        assert_eq!(s.src, "[2001:db8::1]:40000".parse().unwrap());
        assert_eq!(s.dst, "[::1]:8080".parse().unwrap());
        assert_eq!((s.seq, s.syn, s.ack), (9, true, false));
        assert_eq!(s.payload, b"hi");
        // A fragment header (here garbage: the TCP bytes) before TCP.
        assert_eq!(parse(&packet_v6(40000, 8080, 9, SYN, b"hi", 0, 44)), None);
        let whole = packet_v6(1, 2, 0, 0, b"abc", 0, 6);
        assert_eq!(parse(&whole[..whole.len() - 1]), None);
    }

    #[test]
    fn a_segment_with_options_and_padding() {
        let p = packet(40000, 8080, 7, ACK | FIN, b"hello", 3, 6);
        let s = parse(&p).unwrap();
        assert_eq!(s.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(s.dst, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            (s.seq, s.syn, s.ack, s.fin, s.rst),
            (7, false, true, true, false)
        );
        assert_eq!(s.payload, b"hello");
    }

    #[test]
    fn not_segments() {
        let mut udp = packet(1, 2, 0, 0, b"x", 0, 0);
        udp[9] = 17;
        assert_eq!(parse(&udp), None);
        let mut fragment = packet(1, 2, 0, 0, b"x", 0, 0);
        fragment[6] = 0x20;
        assert_eq!(parse(&fragment), None);
        let mut v5 = packet(1, 2, 0, 0, b"x", 0, 0);
        v5[0] = 0x55;
        assert_eq!(parse(&v5), None);
        let whole = packet(1, 2, 0, 0, b"abc", 0, 0);
        assert_eq!(parse(&whole[..whole.len() - 1]), None);
        assert_eq!(parse(&[]), None);
    }
}
