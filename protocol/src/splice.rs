//! A zero-copy relay between two connected stream sockets: the bytes move
//! from one socket into a pipe and from the pipe into the other with
//! `splice(2)`, and never enter user space. The intproxy and the agent
//! relay side streams this way (`ClientMessage::OpenStream`).
//!
//! A half-close is passed on: once one side has sent everything, the
//! other is shut for writing. A failure on either side (a reset, a
//! broken pipe) ends both directions, and the TCP sockets among the two
//! are closed with a reset, so a reset also reaches the far end.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The size a pipe grows to once a connection fills it: a bulk transfer
/// then moves more per wake-up. A pipe starts at the system's default
/// (64 KiB), so idle and small connections do not count a megabyte each
/// against the user's pipe allowance (`fs.pipe-user-pages-soft`, 64 MiB
/// by default: past it, new pipes get two pages).
const PIPE_BYTES: usize = 1024 * 1024;

/// The bytes relayed each way: (first to second, second to first).
pub type Relayed = (u64, u64);

/// Relays bytes between `a` and `b` (connected, nonblocking stream
/// sockets, e.g. from `into_std`) until both have ended, or either fails.
pub async fn relay(a: OwnedFd, b: OwnedFd) -> io::Result<Relayed> {
    let both = Interest::READABLE | Interest::WRITABLE;
    // SAFETY (both registrations): each `AsyncFd` owns its `OwnedFd`, so
    // the fd stays open while registered and is deregistered before it is
    // closed.
    let a = unsafe { AsyncFd::register_with_interest(a, both)? };
    let b = unsafe { AsyncFd::register_with_interest(b, both)? };
    let result = tokio::try_join!(lane(&a, &b), lane(&b, &a));
    if result.is_err() {
        reset_on_close(a.get_ref());
        reset_on_close(b.get_ref());
    }
    result
}

/// One direction: everything `from` sends, given to `to`, then `to` shut
/// for writing. The pipe is emptied before more is taken, so a `splice`
/// would block only on the socket it waits for.
async fn lane(from: &AsyncFd<OwnedFd>, to: &AsyncFd<OwnedFd>) -> io::Result<u64> {
    let mut pipe = Pipe::new()?;
    let mut total = 0u64;
    loop {
        let room = pipe.size;
        let taken = from
            .async_io(Interest::READABLE, |fd| {
                splice(fd.as_raw_fd(), pipe.write.as_raw_fd(), room)
            })
            .await?;
        if taken == room {
            pipe.grow();
        }
        if taken == 0 {
            // SAFETY: a plain syscall on an fd this function borrows. A
            // peer already gone is not an error here: the other lane
            // sees it.
            unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
            return Ok(total);
        }
        let mut pending = taken;
        while pending > 0 {
            pending -= to
                .async_io(Interest::WRITABLE, |fd| {
                    splice(pipe.read.as_raw_fd(), fd.as_raw_fd(), pending)
                })
                .await?;
        }
        total += taken as u64;
    }
}

/// Moves up to `len` bytes without blocking; `WouldBlock` when `from` has
/// none or `to` has no room.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: no offsets (both ends are a socket or a pipe), fds borrowed
    // for the call only.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Makes a TCP socket send a reset instead of a FIN when it is closed;
/// other sockets ignore it.
fn reset_on_close(fd: impl AsFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid `linger` and its size; errors (not a TCP socket)
    // change nothing.
    unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity in bytes.
    size: usize,
    may_grow: bool,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds `pipe2` writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: a plain fcntl on an fd owned here.
        let size = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        Ok(Pipe {
            read,
            write,
            size: usize::try_from(size).unwrap_or(4096).max(4096),
            may_grow: true,
        })
    }

    /// Grows the pipe to [`PIPE_BYTES`]; asked once: if the system
    /// refuses, the pipe keeps its size.
    fn grow(&mut self) {
        if !self.may_grow {
            return;
        }
        self.may_grow = false;
        let grown = PIPE_BYTES as libc::c_int;
        // SAFETY: a plain fcntl on an fd owned here; growing keeps what
        // the pipe holds.
        let size = unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_SETPIPE_SZ, grown) };
        if let Ok(size) = usize::try_from(size) {
            self.size = self.size.max(size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream, UnixStream};

    fn owned(stream: UnixStream) -> OwnedFd {
        OwnedFd::from(stream.into_std().unwrap())
    }

    /// Two TCP connections on loopback: (the far end we keep, the near
    /// end the relay gets) for each side.
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let far = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (near, _) = listener.accept().await.unwrap();
        (far, near)
    }

    #[tokio::test]
    async fn bytes_and_half_closes_pass_both_ways() {
        let (mut left, left_relay) = UnixStream::pair().unwrap();
        let (mut right, right_relay) = UnixStream::pair().unwrap();
        let relay = tokio::spawn(relay(owned(left_relay), owned(right_relay)));

        left.write_all(b"request").await.unwrap();
        left.shutdown().await.unwrap();
        let mut got = Vec::new();
        right.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request", "the half-close arrives after the bytes");

        right
            .write_all(b"answer after the half-close")
            .await
            .unwrap();
        drop(right);
        let mut got = Vec::new();
        left.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"answer after the half-close");
        assert_eq!(relay.await.unwrap().unwrap(), (7, 27));
    }

    /// A full-duplex echo fills both directions at once: a relay that
    /// waited on one direction's write could deadlock it.
    #[tokio::test]
    async fn both_directions_stream_at_once() {
        const LEN: usize = 8 << 20;
        let (left, left_relay) = UnixStream::pair().unwrap();
        let (right, right_relay) = UnixStream::pair().unwrap();
        let relay = tokio::spawn(relay(owned(left_relay), owned(right_relay)));
        let pattern = |seed: u8| {
            (0..LEN)
                .map(|i| (i % 251) as u8 ^ seed)
                .collect::<Vec<u8>>()
        };
        let send_and_take = |stream: UnixStream, seed: u8| async move {
            let (mut reader, mut writer) = stream.into_split();
            let sending = tokio::spawn(async move {
                writer.write_all(&pattern(seed)).await.unwrap();
                writer.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.unwrap();
            sending.await.unwrap();
            got
        };
        let (left_got, right_got) = tokio::join!(send_and_take(left, 1), send_and_take(right, 2));
        assert!(right_got == pattern(1), "left's bytes reach right intact");
        assert!(left_got == pattern(2), "right's bytes reach left intact");
        assert_eq!(relay.await.unwrap().unwrap(), (LEN as u64, LEN as u64));
    }

    #[test]
    fn a_pipe_grows_once_when_asked() {
        let mut pipe = Pipe::new().unwrap();
        assert!(pipe.size < PIPE_BYTES, "starts at the default");
        pipe.grow();
        assert_eq!(pipe.size, PIPE_BYTES);
        // SAFETY: a plain fcntl on the test's own pipe.
        let real = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(real as usize, PIPE_BYTES);
        pipe.grow();
        assert_eq!(pipe.size, PIPE_BYTES);
    }

    #[tokio::test]
    async fn a_reset_ends_the_relay_and_reaches_the_other_side() {
        let (mut left, left_relay) = tcp_pair().await;
        let (right, right_relay) = tcp_pair().await;
        let relay = tokio::spawn(relay(
            OwnedFd::from(left_relay.into_std().unwrap()),
            OwnedFd::from(right_relay.into_std().unwrap()),
        ));
        // Unread bytes at close, with lingering off: a reset.
        reset_on_close(&right);
        drop(right);
        assert!(relay.await.unwrap().is_err());
        let mut buf = [0; 16];
        let err = left.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }
}
