//! Connected Unix sockets for tokio, split so that they do not wake the
//! thread for nothing (used by the intproxy and the agent for local hops).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use std::os::linux::net::SocketAddrExt;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use tokio::net::{UnixListener, UnixStream};

/// Listens on the abstract Unix socket `name`.
pub fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Connects to the abstract Unix socket `name`.
pub fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

/// Splits a connected stream into halves that do not wake the thread for
/// nothing.
///
/// A tokio `UnixStream` is registered for reading and writing, and every
/// frame written comes back as a writable edge once the peer has read it:
/// one useless wake-up of the intproxy per message. Here the read half is
/// registered for readability only; the write half sends without waiting
/// and registers for writability only while a send would block.
pub fn split(stream: UnixStream) -> io::Result<(ReadHalf, WriteHalf)> {
    let fd = OwnedFd::from(stream.into_std()?);
    let write = fd.try_clone()?;
    // SAFETY (both registrations): the `AsyncFd` owns its `OwnedFd`, so the
    // fd stays open for as long as it is registered and is deregistered
    // before it is closed.
    let read = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
    Ok((
        ReadHalf(read),
        WriteHalf {
            fd: write,
            blocked: None,
        },
    ))
}

pub struct ReadHalf(AsyncFd<OwnedFd>);

pub struct WriteHalf {
    fd: OwnedFd,
    /// A registration for writability, only while a send would block.
    blocked: Option<AsyncFd<OwnedFd>>,
}

fn last_error(rc: isize) -> io::Result<usize> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            // Not zeroed first: `recv` writes what it reports (zeroing a
            // 256 KiB read buffer per read cost more than the read).
            // SAFETY: only written to by `recv`, and only the `n` bytes it
            // reports are marked initialised.
            let unfilled = unsafe { buf.unfilled_mut() };
            let room = unfilled.len();
            let read = guard.try_io(|fd| {
                // SAFETY: a valid fd and a writable buffer of that length.
                let rc = unsafe {
                    libc::recv(
                        fd.as_raw_fd(),
                        unfilled.as_mut_ptr().cast(),
                        unfilled.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                last_error(rc)
            });
            match read {
                Ok(Ok(n)) => {
                    // A short read took all the socket had: forget the
                    // readiness now rather than learn it from one more
                    // `recv` that fails with `EAGAIN` (one per message on a
                    // request/answer hop). Only the readiness this guard
                    // saw is cleared: an edge that came after it stays.
                    if n > 0 && n < room {
                        guard.clear_ready();
                    }
                    // SAFETY: `recv` wrote these `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The most buffers one vectored write passes to the kernel (below
/// `IOV_MAX`); the rest go in the next call.
const MAX_IOVECS: usize = 64;

impl WriteHalf {
    /// Sends with `send` (a `send` or `sendmsg` on the fd) without
    /// waiting; when the socket is full, registers for writability and
    /// waits for it.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        send: impl Fn(std::os::fd::RawFd) -> isize,
    ) -> Poll<io::Result<usize>> {
        loop {
            match last_error(send(self.fd.as_raw_fd())) {
                Ok(n) => {
                    self.blocked = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.blocked.is_none() {
                let fd = self.fd.try_clone()?;
                // SAFETY: as in `split`.
                let registered =
                    unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE)? };
                self.blocked = Some(registered);
            }
            if let Some(blocked) = &self.blocked {
                let mut guard = ready!(blocked.poll_write_ready(cx))?;
                guard.clear_ready();
            }
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_send(cx, |fd| {
            // SAFETY: a valid fd and a readable buffer of that length.
            unsafe {
                libc::send(
                    fd,
                    data.as_ptr().cast(),
                    data.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            }
        })
    }

    /// One `sendmsg` of all the buffers (a frame's head and its payload
    /// without first copying them together).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let count = bufs.len().min(MAX_IOVECS);
        self.get_mut().poll_send(cx, |fd| {
            // SAFETY: `IoSlice` has the layout of `iovec` on Unix; the
            // header points at `count` live buffers and nothing else.
            unsafe {
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = count as _;
                libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            }
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: a valid fd.
        let rc = unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(last_error(rc as isize).map(|_| ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More than a socket buffer each way at once: the write half waits for
    /// writability while the read half keeps reading, and every byte
    /// arrives in order.
    #[tokio::test]
    async fn halves_carry_a_large_stream_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a_read, mut a_write) = split(a).unwrap();
        let (mut b_read, mut b_write) = split(b).unwrap();
        let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            a_write.write_all(&sent).await.unwrap();
            a_write.shutdown().await.unwrap();
        });
        let echo = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = b_read.read(&mut buf).await.unwrap();
                if n == 0 {
                    b_write.shutdown().await.unwrap();
                    return;
                }
                b_write.write_all(&buf[..n]).await.unwrap();
            }
        });
        let mut back = Vec::new();
        a_read.read_to_end(&mut back).await.unwrap();
        writer.await.unwrap();
        echo.await.unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data);
    }
}
