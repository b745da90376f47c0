//! The capture sockets: `AF_PACKET`/`SOCK_DGRAM`, one for IPv4 and one for
//! IPv6, in the target's network namespace (every interface, `lo`
//! included), each with the same classic BPF filter so the kernel copies
//! to user space only TCP packets *to* a mirrored port that carry bytes, a
//! SYN or a FIN (and RSTs *from* one), never a fragment (nor an IPv6
//! packet with extension headers), and on loopback only one of the two
//! copies of each packet (the outgoing one is dropped).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::unix::AsyncFd;

use crate::netns::SocketFactory;

/// Bytes the kernel keeps for captured packets waiting to be read: a
/// 10 MiB request over loopback must fit while the reader catches up.
const RCVBUF: libc::c_int = 64 << 20;

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
    sockets: [AsyncFd<OwnedFd>; 2],
    /// Which socket [`Capture::try_recv`] reads first (alternating, so a
    /// busy family cannot hold the other back).
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
        self.sockets
            .iter()
            .try_for_each(|fd| set_filter(fd.get_ref(), ports))
    }

    /// Waits for the next packet of either family and reads it into
    /// `buf`; its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let [v4, v6] = &self.sockets;
        loop {
            let mut guard = tokio::select! {
                ready = v4.readable() => ready?,
                ready = v6.readable() => ready?,
            };
            match guard.try_io(|fd| recv(fd.get_ref(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The next packet already queued on either socket, without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let first = self.next.fetch_xor(1, Ordering::Relaxed) & 1;
        match recv(self.sockets[first].get_ref(), buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                recv(self.sockets[first ^ 1].get_ref(), buf)
            }
            other => other,
        }
    }
}

/// One capture socket for ethertype `protocol`, filtered to nothing until
/// the ports are set, with a large receive buffer.
async fn open_one(factory: &SocketFactory, protocol: u16) -> io::Result<AsyncFd<OwnedFd>> {
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
    // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the
    // same descriptor, until the AsyncFd is dropped.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| io::Error::other(format!("cannot watch the capture socket: {e}")))
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

// Classic BPF opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const LD_MEM: u16 = 0x60;
const LDX_IMM: u16 = 0x01;
const ST: u16 = 0x02;
const ALU_ADD_K: u16 = 0x04;
const ALU_ADD_X: u16 = 0x0c;
const ALU_AND_K: u16 = 0x54;
const ALU_RSH_K: u16 = 0x74;
const TAX: u16 = 0x07;
const JA: u16 = 0x05;
const JEQ_K: u16 = 0x15;
const JGT_X: u16 = 0x2d;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// Ancillary loads: the packet type and the device's hardware type.
const SKF_AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const SKF_AD_HATYPE: u32 = 0xffff_f000 + 28;
/// TCP flags that matter to reassembly even without a payload.
const FIN_SYN_RST: u32 = 0x07;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The filter program for `ports` (the packet starts at the IP header,
/// IPv4 or IPv6).
///
/// To a mirrored port it keeps a segment only if it carries a SYN, FIN or
/// RST or at least one byte of payload: the client's pure ACKs (about
/// half of its packets) never reach user space. From a mirrored port it
/// keeps only RSTs. Each version's header sets X to the IP header's
/// length and scratch word 0 to the packet's IP length, so the port and
/// payload checks are shared.
pub fn filter(ports: &[u16]) -> io::Result<Vec<libc::sock_filter>> {
    if ports.len() > MAX_PORTS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_PORTS} ports can be mirrored at once"),
        ));
    }
    let n = ports.len();
    // Layout: 0..=7 loopback and version checks, 8..=15 IPv4, 16..=21
    // IPv6, 22 the destination port load, n compares, the source port
    // load, n compares, drop, the RST check (2), the payload check (9),
    // accept, drop.
    const V6: usize = 16;
    const PORTS: usize = 22;
    let len = PORTS + 1 + n + 1 + n + 1 + 2 + 9 + 2;
    let (accept, drop) = (len - 2, len - 1);
    let payload = len - 11;
    let rst = payload - 2;
    let to = |at: usize, target: usize| (target - at - 1) as u8;
    let mut p = Vec::with_capacity(len);
    p.push(op(LD_W_ABS, 0, 0, SKF_AD_PKTTYPE)); // 0
    p.push(op(JEQ_K, 0, 2, PACKET_OUTGOING)); // 1
    p.push(op(LD_W_ABS, 0, 0, SKF_AD_HATYPE)); // 2
    p.push(op(JEQ_K, to(3, drop), 0, ARPHRD_LOOPBACK)); // 3
    p.push(op(LD_B_ABS, 0, 0, 0)); // 4: version and IHL
    p.push(op(ALU_RSH_K, 0, 0, 4)); // 5: version
    p.push(op(JEQ_K, to(6, V6), 0, 6)); // 6
    p.push(op(JEQ_K, 0, to(7, drop), 4)); // 7
    p.push(op(LD_B_ABS, 0, 0, 9)); // 8: IPv4 protocol
    p.push(op(JEQ_K, 0, to(9, drop), 6)); // 9: TCP
    p.push(op(LD_H_ABS, 0, 0, 6)); // 10: flags + fragment offset
    p.push(op(JSET_K, to(11, drop), 0, 0x3fff)); // 11: a fragment
    p.push(op(LD_H_ABS, 0, 0, 2)); // 12: total length
    p.push(op(ST, 0, 0, 0)); // 13: → M[0]
    p.push(op(LDX_B_MSH, 0, 0, 0)); // 14: X = IP header length
    p.push(op(JA, 0, 0, (PORTS - 15 - 1) as u32)); // 15
    debug_assert_eq!(p.len(), V6);
    p.push(op(LD_B_ABS, 0, 0, 6)); // 16: IPv6 next header
    p.push(op(JEQ_K, 0, to(17, drop), 6)); // 17: TCP, no extension header
    p.push(op(LD_H_ABS, 0, 0, 4)); // 18: payload length
    p.push(op(ALU_ADD_K, 0, 0, 40)); // 19: + the fixed header
    p.push(op(ST, 0, 0, 0)); // 20: → M[0]
    p.push(op(LDX_IMM, 0, 0, 40)); // 21: X = IP header length
    debug_assert_eq!(p.len(), PORTS);
    p.push(op(LD_H_IND, 0, 0, 2)); // 22: destination port
    for (i, port) in ports.iter().enumerate() {
        let at = PORTS + 1 + i;
        p.push(op(JEQ_K, to(at, payload), 0, u32::from(*port)));
    }
    p.push(op(LD_H_IND, 0, 0, 0)); // source port
    for (i, port) in ports.iter().enumerate() {
        let at = PORTS + 2 + n + i;
        p.push(op(JEQ_K, to(at, rst), 0, u32::from(*port)));
    }
    p.push(op(RET_K, 0, 0, 0)); // neither port: drop
    debug_assert_eq!(p.len(), rst);
    p.push(op(LD_B_IND, 0, 0, 13)); // rst: TCP flags
    p.push(op(JSET_K, to(rst + 1, accept), to(rst + 1, drop), 0x04));
    debug_assert_eq!(p.len(), payload);
    p.push(op(LD_B_IND, 0, 0, 13)); // payload: TCP flags
    p.push(op(JSET_K, to(payload + 1, accept), 0, FIN_SYN_RST));
    p.push(op(LD_B_IND, 0, 0, 12)); // TCP data offset, in its high nibble
    p.push(op(ALU_RSH_K, 0, 0, 2));
    p.push(op(ALU_AND_K, 0, 0, 0x3c)); // A = TCP header length
    p.push(op(ALU_ADD_X, 0, 0, 0)); // + IP header length
    p.push(op(TAX, 0, 0, 0));
    p.push(op(LD_MEM, 0, 0, 0)); // the packet's IP length
    p.push(op(JGT_X, 0, 1, 0)); // longer than its headers → accept
    p.push(op(RET_K, 0, 0, SNAPLEN as u32)); // accept
    p.push(op(RET_K, 0, 0, 0)); // drop
    debug_assert_eq!(p.len(), len);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
        assert!(filter(&vec![1; MAX_PORTS + 1]).is_err());
    }

    /// Runs `program` over `packet` as the kernel would (only the opcodes
    /// [`filter`] uses): the number of bytes kept, 0 for dropped.
    fn run(program: &[libc::sock_filter], packet: &[u8], pkttype: u32, hatype: u32) -> u32 {
        let (mut a, mut x, mut pc, mut mem) = (0u32, 0u32, 0usize, [0u32; 16]);
        let byte = |at: u32| u32::from(packet[at as usize]);
        let half = |at: u32| byte(at) << 8 | byte(at + 1);
        loop {
            let i = program[pc];
            pc += 1;
            let jump = |taken: bool| if taken { i.jt } else { i.jf } as usize;
            match i.code {
                LD_W_ABS if i.k == SKF_AD_PKTTYPE => a = pkttype,
                LD_W_ABS if i.k == SKF_AD_HATYPE => a = hatype,
                LD_H_ABS => a = half(i.k),
                LD_B_ABS => a = byte(i.k),
                LD_H_IND => a = half(x + i.k),
                LD_B_IND => a = byte(x + i.k),
                LDX_B_MSH => x = (byte(i.k) & 0x0f) * 4,
                LD_MEM => a = mem[i.k as usize],
                LDX_IMM => x = i.k,
                ST => mem[i.k as usize] = a,
                ALU_ADD_K => a += i.k,
                ALU_ADD_X => a += x,
                ALU_AND_K => a &= i.k,
                ALU_RSH_K => a >>= i.k,
                TAX => x = a,
                JA => pc += i.k as usize,
                JEQ_K => pc += jump(a == i.k),
                JGT_X => pc += jump(a > x),
                JSET_K => pc += jump(a & i.k != 0),
                RET_K => return i.k,
                other => panic!("opcode {other:#x} not interpreted"),
            }
        }
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
}
