//! The capture sockets: `AF_PACKET`/`SOCK_DGRAM`, one for IPv4 and one for
//! IPv6, in the target's network namespace (every interface, `lo`
//! included), each with the same classic BPF filter so the kernel copies
//! to user space only TCP packets *to* a mirrored port that carry bytes, a
//! SYN or a FIN (and RSTs *from* one), never a fragment (IPv6 hop-by-hop,
//! routing and destination options headers are walked past, as the
//! parser does), and on loopback only one of the two copies of each
//! packet (the outgoing one is dropped).
//!
//! The sockets are watched by the runtime's poller only while the reader
//! waits for a first packet ([`Capture::readable`]): a registered socket
//! wakes the runtime's thread for every packet that arrives, even while
//! the reader sleeps between batches, which cost the agent about one
//! wake-up per captured packet.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{bpf, packet};
use crate::netns::SocketFactory;

/// Bytes the kernel keeps for captured packets waiting to be read: a
/// 10 MiB request over loopback must fit while the reader catches up.
const RCVBUF: libc::c_int = 64 << 20;

/// At most this many packets read from one socket per [`Capture::drain`].
pub const DRAIN_LIMIT: usize = 1024;

/// At most this many ports in one filter (its jumps are 8-bit).
pub const MAX_PORTS: usize = 100;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ARPHRD_LOOPBACK: u32 = 772;
const PACKET_OUTGOING: u32 = 4;
/// The largest IP packet, plus room: what a capture asks the kernel for.
pub const SNAPLEN: usize = 65536 + 512;

/// The IPv4 and the IPv6 capture socket.
pub struct Capture {
    /// Non-blocking sockets, registered with the poller only inside
    /// [`Capture::readable`].
    sockets: [OwnedFd; 2],
    /// Which socket [`Capture::drain`] reads first (alternating between
    /// calls).
    next: AtomicUsize,
}

impl Capture {
    /// Opens both sockets in the target's namespace (needs
    /// `CAP_NET_RAW`); errors keep their errno, the caller names the step.
    pub async fn open(factory: &SocketFactory) -> io::Result<Capture> {
        Ok(Capture {
            sockets: [
                open_one(factory, ETH_P_IP).await?,
                open_one(factory, ETH_P_IPV6).await?,
            ],
            next: AtomicUsize::new(0),
        })
    }

    /// Mirrors `ports` from now on.
    pub fn set_ports(&self, ports: &[u16]) -> io::Result<()> {
        self.sockets.iter().try_for_each(|fd| set_filter(fd, ports))
    }

    /// Waits until either socket has a packet queued. The sockets are
    /// registered with the poller for this wait only (two `epoll_ctl`
    /// each way), so packets that arrive while nobody waits wake nobody.
    pub async fn readable(&self) -> io::Result<()> {
        let (v4, v6) = (watch(&self.sockets[0])?, watch(&self.sockets[1])?);
        tokio::select! {
            ready = v4.readable() => ready.map(drop),
            ready = v6.readable() => ready.map(drop),
        }
        // Dropping the `AsyncFd`s deregisters the descriptors (a
        // `BorrowedFd` closes nothing: the `OwnedFd`s keep them open).
    }

    /// Reads what is queued on both sockets, without waiting, handing each
    /// packet to `packet`: one socket until it is empty (or
    /// [`DRAIN_LIMIT`] packets, so a flood of one family cannot hold the
    /// other back), then the other, the first one alternating between
    /// calls. Each socket costs one `EAGAIN` per call, not one per packet
    /// as reading them in turns did (the idle family answered `EAGAIN`
    /// before every other packet). How many packets it read.
    pub fn drain(&self, buf: &mut [u8], mut packet: impl FnMut(&[u8])) -> io::Result<usize> {
        let first = self.next.fetch_xor(1, Ordering::Relaxed) & 1;
        let mut read = 0;
        for fd in [&self.sockets[first], &self.sockets[first ^ 1]] {
            for _ in 0..DRAIN_LIMIT {
                match recv(fd, buf) {
                    Ok(n) => {
                        read += 1;
                        packet(&buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(read)
    }
}

impl Capture {
    /// Packets the kernel dropped (its queue full: the agent did not read
    /// fast enough) since the last call, both sockets together.
    pub fn dropped(&self) -> io::Result<u64> {
        let mut dropped = 0;
        for fd in &self.sockets {
            let mut stats = libc::tpacket_stats {
                tp_packets: 0,
                tp_drops: 0,
            };
            let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
            // SAFETY: `stats` is writable for `len` bytes; the kernel
            // resets the counters as it reads them.
            let rc = unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_STATISTICS,
                    std::ptr::addr_of_mut!(stats).cast(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            dropped += u64::from(stats.tp_drops);
        }
        Ok(dropped)
    }
}

/// `fd` registered with the runtime's poller for reading, until dropped.
fn watch(fd: &OwnedFd) -> io::Result<AsyncFd<BorrowedFd<'_>>> {
    // SAFETY: the descriptor is borrowed from `fd`, so it stays open, the
    // same file, for as long as the `AsyncFd` lives.
    unsafe { AsyncFd::register_with_interest(fd.as_fd(), Interest::READABLE) }
        .map_err(|e| io::Error::other(format!("cannot watch the capture socket: {e}")))
}

/// One capture socket for ethertype `protocol` (non-blocking), filtered
/// to nothing until the ports are set, with a large receive buffer.
async fn open_one(factory: &SocketFactory, protocol: u16) -> io::Result<OwnedFd> {
    let fd = factory.packet(libc::SOCK_DGRAM, protocol).await?;
    // Filter before anything queues: drop all until the ports are set.
    set_filter(&fd, &[])?;
    // The FORCE variant passes the rmem_max limit (the agent runs as root).
    if let Err(e) = crate::netns::set_int_option(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        RCVBUF,
    ) {
        tracing::warn!(
            "cannot enlarge the capture buffer ({e}); a burst may drop mirrored packets"
        );
    }
    Ok(fd)
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn set_filter(fd: &OwnedFd, ports: &[u16]) -> io::Result<()> {
    let mut program = filter(ports)?;
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `program`, alive for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(prog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TCP flags that matter to reassembly even without a payload.
const FIN_SYN_RST: u32 = 0x07;

/// The filter program for `ports` (the packet starts at the IP header,
/// IPv4 or IPv6).
///
/// To a mirrored port it keeps a segment only if it carries a SYN, FIN or
/// RST or at least one byte of payload: the client's pure ACKs (about
/// half of its packets) never reach user space. From a mirrored port it
/// keeps only RSTs. Each version's header sets X to the offset of the
/// TCP header and scratch word 0 to the packet's IP length, so the port
/// and payload checks are shared. IPv6 hop-by-hop, routing and
/// destination options headers are walked past like the parser does
/// ([`packet::MAX_EXTENSION_HEADERS`], unrolled: classic BPF has no
/// loops); any other next header (a fragment header, AH, ESP) drops the
/// packet. A header that claims bytes past the packet's end makes a later
/// load fail, which drops the packet too.
pub fn filter(ports: &[u16]) -> io::Result<Vec<libc::sock_filter>> {
    use bpf::*;
    use packet::{DESTINATION_OPTIONS, HOP_BY_HOP, ROUTING, TCP};
    if ports.len() > MAX_PORTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_PORTS} ports can be mirrored at once"),
        ));
    }
    let mut p = Asm::default();
    let [version, v4, early_drop, tcp, rst, payload, accept, drop] = [(); 8].map(|()| p.label());
    // The kernel checks that no path reads a scratch word before writing
    // it, and follows fall-through past a `ret` too: hence `early_drop`
    // sits before the IPv4 header (which writes M[0] before TCP), and the
    // IPv4 checks drop at the end (at most 255 ahead with 100 ports).
    let early = To::Label(early_drop);
    // Loopback shows each packet twice: skip the outgoing copy.
    p.op(LD_W_ABS, SKF_AD_PKTTYPE);
    p.jump(JEQ_K, PACKET_OUTGOING, To::Next, To::Label(version));
    p.op(LD_W_ABS, SKF_AD_HATYPE);
    p.jump(JEQ_K, ARPHRD_LOOPBACK, early, To::Next);
    // The version decides the header's layout.
    p.place(version);
    p.op(LD_B_ABS, 0);
    p.op(ALU_RSH_K, 4);
    p.jump(JEQ_K, 4, To::Label(v4), To::Next);
    p.jump(JEQ_K, 6, To::Next, early);
    // IPv6: the fixed header, then the extension header chain.
    p.op(LD_H_ABS, 4); // payload length
    p.op(ALU_ADD_K, 40); // + the fixed header
    p.op(ST, 0);
    p.op(LDX_IMM, 40);
    p.op(LD_B_ABS, 6); // A = next header
    for _ in 0..packet::MAX_EXTENSION_HEADERS {
        let walk = p.label();
        p.jump(JEQ_K, u32::from(TCP), To::Label(tcp), To::Next);
        p.jump(JEQ_K, u32::from(HOP_BY_HOP), To::Label(walk), To::Next);
        p.jump(JEQ_K, u32::from(ROUTING), To::Label(walk), To::Next);
        p.jump(JEQ_K, u32::from(DESTINATION_OPTIONS), To::Next, early);
        p.place(walk);
        p.op(LD_B_IND, 1); // this header's length, in 8 bytes after the first 8
        p.op(ALU_ADD_K, 1);
        p.op(ALU_LSH_K, 3);
        p.op(ALU_ADD_X, 0);
        p.op(ST, 1); // → M[1]: the next header's offset
        p.op(LD_B_IND, 0); // A = next header
        p.op(LDX_MEM, 1);
    }
    p.jump(JEQ_K, u32::from(TCP), To::Label(tcp), early);
    p.place(early_drop);
    p.op(RET_K, 0);
    // IPv4: TCP, not a fragment.
    p.place(v4);
    p.op(LD_B_ABS, 9);
    p.jump(JEQ_K, u32::from(TCP), To::Next, To::Label(drop));
    p.op(LD_H_ABS, 6); // flags + fragment offset
    p.jump(JSET_K, 0x3fff, To::Label(drop), To::Next);
    p.op(LD_H_ABS, 2); // total length
    p.op(ST, 0);
    p.op(LDX_B_MSH, 0); // X = IP header length
                        // TCP at X: the destination port, then the source port.
    p.place(tcp);
    p.op(LD_H_IND, 2);
    for port in ports {
        p.jump(JEQ_K, u32::from(*port), To::Label(payload), To::Next);
    }
    p.op(LD_H_IND, 0);
    for port in ports {
        p.jump(JEQ_K, u32::from(*port), To::Label(rst), To::Next);
    }
    p.op(RET_K, 0); // neither port: drop
                    // From a mirrored port: only RSTs.
    p.place(rst);
    p.op(LD_B_IND, 13);
    p.jump(JSET_K, 0x04, To::Label(accept), To::Label(drop));
    // To a mirrored port: SYN, FIN, RST, or a payload.
    p.place(payload);
    p.op(LD_B_IND, 13);
    p.jump(JSET_K, FIN_SYN_RST, To::Label(accept), To::Next);
    p.op(LD_B_IND, 12); // TCP data offset, in its high nibble
    p.op(ALU_RSH_K, 2);
    p.op(ALU_AND_K, 0x3c); // A = TCP header length
    p.op(ALU_ADD_X, 0); // + the TCP header's offset
    p.op(TAX, 0);
    p.op(LD_MEM, 0); // the packet's IP length
    p.jump(JGT_X, 0, To::Label(accept), To::Label(drop));
    p.place(accept);
    p.op(RET_K, SNAPLEN as u32);
    p.place(drop);
    p.op(RET_K, 0);
    p.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::bpf::{check_scratch_words, run, JA};

    #[test]
    fn every_jump_lands_inside_the_program() {
        for n in [0, 1, 3, MAX_PORTS] {
            let ports: Vec<u16> = (1..=n as u16).collect();
            let p = filter(&ports).unwrap();
            for (i, ins) in p.iter().enumerate() {
                if ins.code == JA {
                    assert!(i + 1 + (ins.k as usize) < p.len(), "ja at {i}");
                } else if ins.code & 0x07 == 0x05 {
                    assert!(i + 1 + (ins.jt as usize) < p.len(), "jt at {i}");
                    assert!(i + 1 + (ins.jf as usize) < p.len(), "jf at {i}");
                }
            }
            assert_eq!(p[p.len() - 1].k, 0);
            assert_eq!(p[p.len() - 2].k, SNAPLEN as u32);
            check_scratch_words(&p).unwrap_or_else(|e| panic!("{n} ports: {e}"));
        }
        assert!(filter(&vec![1; MAX_PORTS + 1]).is_err());
    }

    #[test]
    fn only_segments_that_matter_to_reassembly_pass() {
        use crate::mirror::packet::tests::packet;
        const SYN: u8 = 0x02;
        const ACK: u8 = 0x10;
        const FIN: u8 = 0x01;
        const RST: u8 = 0x04;
        let p = filter(&[80, 8080]).unwrap();
        let kept = |pkt: Vec<u8>| run(&p, &pkt, 0, 1) != 0;
        // To a mirrored port: SYN, data, FIN, RST pass; a pure ACK does
        // not, with or without TCP options.
        assert!(kept(packet(5000, 8080, 0, SYN, b"", 5, 0)));
        assert!(kept(packet(5000, 8080, 1, ACK, b"x", 3, 0)));
        assert!(kept(packet(5000, 80, 1, ACK | FIN, b"", 0, 0)));
        assert!(kept(packet(5000, 80, 1, RST, b"", 0, 0)));
        assert!(!kept(packet(5000, 8080, 1, ACK, b"", 0, 0)));
        assert!(
            !kept(packet(5000, 8080, 1, ACK, b"", 3, 6)),
            "padding is no payload"
        );
        // From a mirrored port: only RSTs.
        assert!(!kept(packet(8080, 5000, 1, ACK, b"answer", 0, 0)));
        assert!(kept(packet(8080, 5000, 1, RST | ACK, b"", 0, 0)));
        // Other ports, other protocols, fragments, loopback's second copy.
        assert!(!kept(packet(5000, 9090, 0, SYN, b"", 0, 0)));
        let mut udp = packet(5000, 8080, 0, 0, b"x", 0, 0);
        udp[9] = 17;
        assert!(!kept(udp));
        let mut fragment = packet(5000, 8080, 1, ACK, b"x", 0, 0);
        fragment[6] = 0x20;
        assert!(!kept(fragment));
        let data = packet(5000, 8080, 1, ACK, b"x", 0, 0);
        assert_eq!(run(&p, &data, PACKET_OUTGOING, ARPHRD_LOOPBACK), 0);
        assert_eq!(run(&p, &data, 0, ARPHRD_LOOPBACK), SNAPLEN as u32);
        assert_eq!(run(&p, &data, PACKET_OUTGOING, 1), SNAPLEN as u32);
        // No ports: nothing passes.
        assert_eq!(run(&filter(&[]).unwrap(), &data, 0, 1), 0);
        // IPv6: the same rules; extension headers (a fragment) are dropped.
        use crate::mirror::packet::tests::packet_v6;
        let kept6 = |pkt: Vec<u8>| run(&p, &pkt, 0, 1) != 0;
        assert!(kept6(packet_v6(5000, 8080, 0, SYN, b"", 0, 6)));
        assert!(kept6(packet_v6(5000, 80, 1, ACK, b"x", 0, 6)));
        assert!(!kept6(packet_v6(5000, 8080, 1, ACK, b"", 0, 6)));
        assert!(
            !kept6(packet_v6(5000, 8080, 1, ACK, b"", 6, 6)),
            "padding is no payload"
        );
        assert!(!kept6(packet_v6(8080, 5000, 1, ACK, b"answer", 0, 6)));
        assert!(kept6(packet_v6(8080, 5000, 1, RST, b"", 0, 6)));
        assert!(!kept6(packet_v6(5000, 9090, 0, SYN, b"", 0, 6)));
        assert!(!kept6(packet_v6(5000, 8080, 1, ACK, b"x", 0, 44)));
        let data6 = packet_v6(5000, 8080, 1, ACK, b"x", 0, 6);
        assert_eq!(run(&p, &data6, PACKET_OUTGOING, ARPHRD_LOOPBACK), 0);
        assert_eq!(run(&p, &data6, 0, ARPHRD_LOOPBACK), SNAPLEN as u32);
        // Neither version 4 nor 6.
        let mut v5 = data;
        v5[0] = 0x55;
        assert!(!kept(v5));
    }

    #[test]
    fn ipv6_extension_headers_pass_as_the_parser_walks_them() {
        use crate::mirror::packet::tests::{garbage, packet_v6_ext};
        use crate::mirror::packet::{
            parse, DESTINATION_OPTIONS as DEST, HOP_BY_HOP as HBH, MAX_EXTENSION_HEADERS, ROUTING,
        };
        const ACK: u8 = 0x10;
        let p = filter(&[8080]).unwrap();
        let kept = |pkt: &[u8]| run(&p, pkt, 0, 1) != 0;
        let walked: [&[(u8, u8)]; 4] = [
            &[(HBH, 0)],
            &[(ROUTING, 3)],
            &[(HBH, 0), (DEST, 1), (ROUTING, 255)],
            &[(HBH, 0), (DEST, 0), (ROUTING, 0), (DEST, 2)],
        ];
        for exts in walked {
            let data = packet_v6_ext(exts, 8080, ACK, b"data");
            assert!(kept(&data), "{exts:?}");
            assert!(parse(&data).is_some(), "{exts:?}");
            // Still no pure ACKs, nor other ports.
            assert!(!kept(&packet_v6_ext(exts, 8080, ACK, b"")), "{exts:?}");
            assert!(!kept(&packet_v6_ext(exts, 9090, ACK, b"x")), "{exts:?}");
        }
        // What the parser drops, the filter drops: a fragment header, AH,
        // no next header, one header too many, a length past the end.
        let mut dropped: Vec<Vec<u8>> = [44, 51, 59]
            .into_iter()
            .flat_map(|kind| {
                [
                    packet_v6_ext(&[(kind, 0)], 8080, ACK, b"x"),
                    packet_v6_ext(&[(HBH, 0), (kind, 0)], 8080, ACK, b"x"),
                ]
            })
            .collect();
        dropped.push(packet_v6_ext(
            &[(DEST, 0); MAX_EXTENSION_HEADERS + 1],
            8080,
            ACK,
            b"x",
        ));
        let mut past_the_end = packet_v6_ext(&[(HBH, 0)], 8080, ACK, b"x");
        past_the_end[41] = 200;
        dropped.push(past_the_end);
        for pkt in &dropped {
            assert!(!kept(pkt), "{pkt:?}");
            assert_eq!(parse(pkt), None, "{pkt:?}");
        }
        // Cut anywhere: the filter reads up to the TCP flags (a packet
        // shorter than its IP length past them is the parser's to drop),
        // so a cut before them is dropped by the filter.
        let whole = packet_v6_ext(&[(HBH, 1), (ROUTING, 0)], 8080, ACK, b"abc");
        let flags = 40 + 16 + 8 + 13;
        for len in 0..=flags {
            assert!(!kept(&whole[..len]), "cut at {len}");
        }
        // Mutated packets: the filter always ends, and every segment the
        // parser reads to the port with a payload (or SYN, FIN, RST)
        // passes it: nothing the reassembly needs is lost.
        let mut seed = 0x2545_f491_4f6c_dd1d;
        let mut checked = 0;
        for round in 0..50_000 {
            let mut pkt = packet_v6_ext(walked[round % walked.len()], 8080, ACK, b"data");
            let noise = garbage(&mut seed, 6);
            for pair in noise.chunks(2).take(1 + round % 3) {
                let at = usize::from(pair[0]) % pkt.len();
                pkt[at] = pair[1];
            }
            let keep = kept(&pkt);
            if let Some(s) = parse(&pkt) {
                if s.dst.port() == 8080 && (!s.payload.is_empty() || s.syn || s.fin || s.rst) {
                    assert!(keep, "{pkt:?}");
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 10_000,
            "only {checked} mutated packets were still segments"
        );
    }
}
