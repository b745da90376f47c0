//! `sendmmsg`/`recvmmsg` on the syscall path, message by message: each
//! message is what a `sendmsg`/`recvmsg` with its `msghdr` would be
//! ([`datagrams`](super::datagrams)), and its `msg_len` is written back.
//!
//! Both stop always (the addresses are inside the `struct mmsghdr`
//! array). The receiver thread lets a `sendmmsg` continue at once when no
//! message names an address the policy sends to the target (one read of
//! the caller's array: glibc's resolver sends its A and AAAA queries with
//! one `sendmmsg` on a connected socket), and a `recvmmsg` on a socket
//! without relays, exactly as `recvmsg`.
//!
//! Where the kernel's calls differ: the supervisor's `recvmmsg` waits (as
//! `recvmsg`, up to the socket's `SO_RCVTIMEO`) only for the first
//! message and then takes what is already queued, as with
//! `MSG_WAITFORONE`; the call's own `timeout` is not applied. A message
//! that fails after others were sent or received ends the call with the
//! count so far, as the kernel does.

use super::datagrams::{self, named, stays_local};
use super::memory;
use super::msghdr::MsgHdr;
use super::notify::{Notification, Reply};
use super::supervisor::{Outcome, Supervisor};

/// `sizeof(struct mmsghdr)` (LP64: a `msghdr`, `msg_len`, padding).
const SIZE: u64 = 64;
/// `offsetof(struct mmsghdr, msg_len)`.
const MSG_LEN: u64 = 56;
/// The most messages the kernel takes in one call (`UIO_MAXIOV`).
const MAX_MESSAGES: u64 = 1024;

/// The caller's array and its length, as the kernel bounds it.
fn messages(n: &Notification) -> (u64, u64) {
    (n.args[1], (n.args[2] & 0xffff_ffff).min(MAX_MESSAGES))
}

/// Whether a stopped `sendmmsg` runs as made: no message names an
/// internet address the policy sends to the target. One read of the
/// caller's array (the addresses only are looked at); an array that
/// cannot be read continues (the kernel reports `EFAULT`).
pub fn send_continues(sup: &Supervisor, n: &Notification) -> bool {
    let (at, count) = messages(n);
    if count == 0 {
        return true;
    }
    let Ok(raw) = memory::read(n.pid, at, (count * SIZE) as usize) else {
        return true;
    };
    let local =
        names(&raw).all(|(name, len)| name == 0 || stays_local(sup, named(n.pid, name, len)));
    local
}

/// The (`msg_name`, `msg_namelen`) of each message of a raw `mmsghdr`
/// array.
fn names(raw: &[u8]) -> impl Iterator<Item = (u64, u32)> + '_ {
    raw.chunks_exact(SIZE as usize).map(|entry| {
        let name = u64::from_ne_bytes(entry[..8].try_into().unwrap_or_default());
        let len = u32::from_ne_bytes(entry[8..12].try_into().unwrap_or_default());
        (name, len)
    })
}

/// `sendmmsg(fd, msgvec, vlen, flags)` with a message to the target:
/// every message sent by the supervisor ([`datagrams::send_message`]).
pub async fn send(sup: &Supervisor, n: &Notification) -> Outcome {
    let (fd, flags) = (n.args[0] as i32, n.args[3] as i32);
    let (at, count) = messages(n);
    let mut done = 0;
    for i in 0..count {
        let entry = at + i * SIZE;
        let sent = match MsgHdr::read(n.pid, entry) {
            Ok(msg) => datagrams::send_message(sup, n, fd, msg, flags).await,
            Err(_) => Err(Outcome::Reply(Reply::Errno(libc::EFAULT))),
        };
        match step(n, entry, sent, done) {
            Step::Next => done += 1,
            Step::End(outcome) => return outcome,
        }
    }
    Outcome::Reply(Reply::Value(done as i64))
}

/// `recvmmsg(fd, msgvec, vlen, flags, timeout)` on a socket with relays:
/// the first message as `recvmsg` would receive it (waiting if the socket
/// blocks), the others only if already queued.
pub async fn recv(sup: &Supervisor, n: &Notification) -> Outcome {
    let fd = n.args[0] as i32;
    // Not a `recvmsg` flag.
    let flags = n.args[3] as i32 & !libc::MSG_WAITFORONE;
    let (at, count) = messages(n);
    let mut done = 0;
    for i in 0..count {
        let entry = at + i * SIZE;
        let flags = if i == 0 {
            flags
        } else {
            flags | libc::MSG_DONTWAIT
        };
        let got = datagrams::recv_message(sup, n, fd, entry, flags).await;
        match step(n, entry, got, done) {
            Step::Next => done += 1,
            Step::End(outcome) => return outcome,
        }
    }
    Outcome::Reply(Reply::Value(done as i64))
}

enum Step {
    Next,
    End(Outcome),
}

/// After one message (`result`, at `entry`, with `done` before it): its
/// `msg_len` written and on to the next, or the call's answer.
fn step(n: &Notification, entry: u64, result: Result<usize, Outcome>, done: u64) -> Step {
    match result {
        Ok(len) => {
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            match memory::write(n.pid, entry + MSG_LEN, &len.to_ne_bytes()) {
                Ok(()) => Step::Next,
                Err(_) if done > 0 => Step::End(Outcome::Reply(Reply::Value(done as i64))),
                Err(_) => Step::End(Outcome::Reply(Reply::Errno(libc::EFAULT))),
            }
        }
        Err(Outcome::Gone) => Step::End(Outcome::Gone),
        // The count so far, as the kernel answers; the failure shows on
        // the caller's next call.
        Err(_) if done > 0 => Step::End(Outcome::Reply(Reply::Value(done as i64))),
        Err(outcome) => Step::End(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_kernels() {
        assert_eq!(std::mem::size_of::<libc::mmsghdr>() as u64, SIZE);
        // SAFETY: all-zero is a valid mmsghdr.
        let m: libc::mmsghdr = unsafe { std::mem::zeroed() };
        let base = &m as *const libc::mmsghdr as u64;
        assert_eq!(&m.msg_len as *const u32 as u64 - base, MSG_LEN);
        assert_eq!(MAX_MESSAGES, libc::UIO_MAXIOV as u64);
    }

    /// The addresses are read where the kernel's `struct mmsghdr` keeps
    /// them, from this process's memory as from a stopped caller's.
    #[test]
    fn each_messages_address_is_found_in_the_callers_array() {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        // SAFETY: all-zero is a valid mmsghdr.
        let mut msgs: [libc::mmsghdr; 3] = unsafe { std::mem::zeroed() };
        msgs[1].msg_hdr.msg_name = (&mut addr as *mut libc::sockaddr_in).cast();
        msgs[1].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        msgs[2].msg_len = 99;
        let at = msgs.as_ptr() as u64;
        let raw = memory::read(std::process::id(), at, (3 * SIZE) as usize).unwrap();
        let found: Vec<(u64, u32)> = names(&raw).collect();
        let named = (&addr as *const libc::sockaddr_in as u64, 16);
        assert_eq!(found, [(0, 0), named, (0, 0)]);
        std::hint::black_box(&msgs);
    }
}
