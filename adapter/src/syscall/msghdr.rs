//! A stopped `sendmsg`/`recvmsg`'s `struct msghdr`, read from the caller's
//! memory: the address, the data's iovecs and the control buffer (LP64
//! layout, the same on x86_64 and aarch64). Like every read of the
//! caller's memory, what is read here is checked against the notification
//! before it is acted upon.

use std::io;

use super::memory;

/// `sizeof(struct msghdr)`.
const SIZE: usize = 56;
/// `offsetof(struct msghdr, msg_namelen)`.
const NAMELEN: u64 = 8;
/// `offsetof(struct msghdr, msg_controllen)`.
const CONTROLLEN: u64 = 40;
/// `offsetof(struct msghdr, msg_flags)`.
const FLAGS: u64 = 48;
/// The most iovecs a call may pass (`UIO_MAXIOV`).
const MAX_IOV: usize = 1024;
/// The largest control buffer passed through.
pub const MAX_CONTROL: usize = 4096;

/// The fields of a caller's `struct msghdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgHdr {
    /// Where it is in the caller.
    pub at: u64,
    pub name: u64,
    pub name_len: u32,
    pub iov: u64,
    pub iov_len: usize,
    pub control: u64,
    pub control_len: usize,
}

/// Only the address of the `msghdr` at `at`: the cheap check of the
/// receiver thread (a `sendmsg` without an address continues).
pub fn name(pid: u32, at: u64) -> io::Result<(u64, u32)> {
    let raw = memory::read(pid, at, 12)?;
    Ok((word(&raw, 0), half(&raw, 8)))
}

impl MsgHdr {
    pub fn read(pid: u32, at: u64) -> io::Result<MsgHdr> {
        let raw = memory::read(pid, at, SIZE)?;
        Ok(MsgHdr::parse(at, &raw))
    }

    fn parse(at: u64, raw: &[u8]) -> MsgHdr {
        MsgHdr {
            at,
            name: word(raw, 0),
            name_len: half(raw, 8),
            iov: word(raw, 16),
            iov_len: word(raw, 24) as usize,
            control: word(raw, 32),
            control_len: word(raw, 40) as usize,
        }
    }

    /// The caller's iovecs as (address, length) pairs.
    pub fn iovecs(&self, pid: u32) -> io::Result<Vec<(u64, usize)>> {
        if self.iov_len > MAX_IOV {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        if self.iov_len == 0 {
            return Ok(Vec::new());
        }
        let raw = memory::read(pid, self.iov, self.iov_len * 16)?;
        Ok(raw
            .chunks_exact(16)
            .map(|pair| (word(pair, 0), word(pair, 8) as usize))
            .collect())
    }

    /// The bytes the iovecs hold, at most `limit` in all (`EMSGSIZE`
    /// beyond).
    pub fn gather(&self, pid: u32, limit: usize) -> io::Result<Vec<u8>> {
        let iovecs = self.iovecs(pid)?;
        let total = iovecs.iter().map(|(_, len)| *len).sum::<usize>();
        if total > limit {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let mut data = Vec::with_capacity(total);
        for (base, len) in iovecs {
            if len > 0 {
                data.extend_from_slice(&memory::read(pid, base, len)?);
            }
        }
        Ok(data)
    }

    /// Writes `data` across the iovecs, as far as they reach.
    pub fn scatter(&self, pid: u32, data: &[u8]) -> io::Result<()> {
        let mut rest = data;
        for (base, len) in self.iovecs(pid)? {
            if rest.is_empty() {
                break;
            }
            let take = len.min(rest.len());
            if take > 0 {
                memory::write(pid, base, &rest[..take])?;
            }
            rest = &rest[take..];
        }
        Ok(())
    }

    /// The room of all iovecs together.
    pub fn room(&self, pid: u32) -> io::Result<usize> {
        Ok(self.iovecs(pid)?.iter().map(|(_, len)| *len).sum())
    }

    /// The control buffer's bytes (passed through to a `sendmsg`).
    pub fn control_bytes(&self, pid: u32) -> io::Result<Vec<u8>> {
        if self.control == 0 || self.control_len == 0 {
            return Ok(Vec::new());
        }
        if self.control_len > MAX_CONTROL {
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        memory::read(pid, self.control, self.control_len)
    }

    /// Writes back what a `recvmsg` reports besides the data: the address
    /// length, the control messages and `msg_flags`.
    pub fn write_results(
        &self,
        pid: u32,
        name_len: u32,
        control: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        memory::write(pid, self.at + NAMELEN, &name_len.to_ne_bytes())?;
        let copied = control.len().min(self.control_len);
        if copied > 0 {
            memory::write(pid, self.control, &control[..copied])?;
        }
        if self.control != 0 || self.control_len != 0 {
            memory::write(pid, self.at + CONTROLLEN, &(copied as u64).to_ne_bytes())?;
        }
        memory::write(pid, self.at + FLAGS, &flags.to_ne_bytes())
    }
}

fn word(raw: &[u8], at: usize) -> u64 {
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

fn half(raw: &[u8], at: usize) -> u32 {
    raw.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gathers_and_scatters_like_the_kernel_layout() {
        let pid = std::process::id();
        let mut first = *b"abc";
        let mut second = *b"defgh";
        let mut name = [0u8; 16];
        let mut control = [7u8; 32];
        let mut iov = [
            libc::iovec {
                iov_base: first.as_mut_ptr().cast(),
                iov_len: first.len(),
            },
            libc::iovec {
                iov_base: second.as_mut_ptr().cast(),
                iov_len: second.len(),
            },
        ];
        // SAFETY: all-zero is a valid msghdr; the fields are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = name.as_mut_ptr().cast();
        msg.msg_namelen = name.len() as u32;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = control.len();
        assert_eq!(std::mem::size_of::<libc::msghdr>(), SIZE);
        let at = &msg as *const libc::msghdr as u64;
        let hdr = MsgHdr::read(pid, at).unwrap();
        assert_eq!(name_of(pid, at), (name.as_ptr() as u64, 16));
        assert_eq!(hdr.iov_len, 2);
        assert_eq!(hdr.room(pid).unwrap(), 8);
        assert_eq!(hdr.gather(pid, 8).unwrap(), b"abcdefgh");
        assert_eq!(
            hdr.gather(pid, 7).unwrap_err().raw_os_error(),
            Some(libc::EMSGSIZE)
        );
        assert_eq!(hdr.control_bytes(pid).unwrap(), [7u8; 32]);
        hdr.scatter(pid, b"XYZ12").unwrap();
        hdr.write_results(pid, 6, &[1, 2, 3], libc::MSG_TRUNC)
            .unwrap();
        let msg = std::hint::black_box(&msg);
        assert_eq!(std::hint::black_box(first), *b"XYZ");
        assert_eq!(std::hint::black_box(second), *b"12fgh");
        assert_eq!(msg.msg_namelen, 6);
        assert_eq!(msg.msg_controllen, 3);
        assert_eq!(msg.msg_flags, libc::MSG_TRUNC);
        assert_eq!(std::hint::black_box(control)[..4], [1, 2, 3, 7]);
    }

    fn name_of(pid: u32, at: u64) -> (u64, u32) {
        name(pid, at).unwrap()
    }
}
