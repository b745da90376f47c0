//! Handing the filter's listener from `mirrord exec` to the intproxy: one
//! abstract Unix stream connection carrying the fd (`SCM_RIGHTS`) and the
//! resolved config, answered by one status byte (then a reason on
//! failure).
//!
//! The exec side connects *before* it installs the filter (`connect` is
//! one of the stopped calls, and nobody would answer it yet), and sends
//! from a thread outside the filter (`sendmsg` and `sendmmsg` stop: see
//! [`install_and_hand_off`](super::install_and_hand_off)).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};

const OK: u8 = 1;
/// The largest config accepted (the resolved config is a few KiB).
const MAX_CONFIG: u32 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("cannot reach the intproxy's supervisor: {0}")]
    Io(#[from] io::Error),
    #[error("the intproxy refused the seccomp listener: {0}")]
    Refused(String),
    #[error("malformed hand-off: {0}")]
    Malformed(&'static str),
}

/// Sends `data` with `fd` attached (`SCM_RIGHTS`) on the Unix socket
/// `socket`. Never under the filter: `sendmsg` and `sendmmsg` stop there
/// until a supervisor answers them, and this is how the supervisor gets
/// its listener.
pub fn send_with_fd(socket: RawFd, data: &[u8], fd: RawFd) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Room for one cmsghdr carrying one int, aligned.
    let mut space = [0u64; 4];
    // SAFETY: CMSG_SPACE of one int fits in `space` (32 bytes); the header
    // and data are written inside it; `msg` points at `iov` and `space`,
    // alive for the call.
    unsafe {
        let space_len = libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = space.as_mut_ptr().cast();
        msg.msg_controllen = space_len as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<i32>(), fd);
        let sent = libc::sendmsg(socket, &msg, 0);
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// The exec side of the connection.
pub struct Sender {
    stream: std::os::unix::net::UnixStream,
}

impl Sender {
    /// Connects to the supervisor socket `name` (abstract).
    pub fn connect(name: &str) -> Result<Sender, HandoffError> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
        Ok(Sender { stream })
    }

    /// Sends the listener and the config, and waits for the supervisor to
    /// take them.
    pub fn send(self, listener: OwnedFd, config_json: &str) -> Result<(), HandoffError> {
        let fd = self.stream.as_raw_fd();
        let len = u32::try_from(config_json.len())
            .map_err(|_| HandoffError::Malformed("config too large"))?;
        let header = len.to_le_bytes();
        let sent = send_with_fd(fd, &header, listener.as_raw_fd())?;
        if sent != header.len() {
            return Err(HandoffError::Malformed("short header write"));
        }
        drop(listener);
        write_all(fd, config_json.as_bytes())?;
        let mut status = [0u8; 1];
        if read_some(fd, &mut status)? == 0 {
            return Err(HandoffError::Refused("the connection closed".into()));
        }
        if status[0] == OK {
            return Ok(());
        }
        let mut reason = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n @ 1..) = read_some(fd, &mut buf) {
            reason.extend_from_slice(&buf[..n]);
        }
        Err(HandoffError::Refused(
            String::from_utf8_lossy(&reason).into_owned(),
        ))
    }
}

fn write_all(fd: i32, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// `read(2)`, not `recv`: the stopped calls must not include what we use.
fn read_some(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What the supervisor side received.
pub struct Received {
    pub listener: OwnedFd,
    pub config_json: String,
    stream: tokio::net::UnixStream,
}

impl Received {
    /// Tells the sender the supervisor has taken over.
    pub async fn accept(mut self) {
        let _ = self.stream.write_all(&[OK]).await;
    }

    /// Tells the sender why not.
    pub async fn refuse(mut self, reason: &str) {
        let _ = self.stream.write_all(&[0]).await;
        let _ = self.stream.write_all(reason.as_bytes()).await;
    }
}

/// One `recvmsg` into `buf`; the first fd that came with it (`SCM_RIGHTS`,
/// close-on-exec), if any.
pub fn recv_with_fd(socket: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut fd = None;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel gave us this fd.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}

/// Reads one hand-off from `stream`.
pub async fn receive(mut stream: tokio::net::UnixStream) -> Result<Received, HandoffError> {
    let mut header = [0u8; 4];
    let (got, listener) = loop {
        stream.readable().await?;
        let result = stream.try_io(Interest::READABLE, || {
            recv_with_fd(stream.as_raw_fd(), &mut header)
        });
        match result {
            Ok(done) => break done,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let listener = listener.ok_or(HandoffError::Malformed("no fd"))?;
    if got == 0 {
        return Err(HandoffError::Malformed("empty"));
    }
    stream.read_exact(&mut header[got..]).await?;
    let len = u32::from_le_bytes(header);
    if len > MAX_CONFIG {
        return Err(HandoffError::Malformed("config too large"));
    }
    let mut config = vec![0u8; len as usize];
    stream.read_exact(&mut config).await?;
    let config_json =
        String::from_utf8(config).map_err(|_| HandoffError::Malformed("config is not UTF-8"))?;
    Ok(Received {
        listener,
        config_json,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_listener_and_config_cross_with_an_answer() {
        let name = crate::local_socket::unique_name("handoff-test");
        let listener = crate::local_socket::bind_abstract(&name).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let received = receive(stream).await.unwrap();
            assert_eq!(received.config_json, "{\"x\":1}");
            // The fd is a real one: the read end of a pipe.
            nix::unistd::write(&received.listener, b"?").unwrap_err();
            received.accept().await;
        });
        let (read_end, _write_end) = nix::unistd::pipe().unwrap();
        let sender = tokio::task::spawn_blocking(move || {
            Sender::connect(&name).unwrap().send(read_end, "{\"x\":1}")
        });
        sender.await.unwrap().unwrap();
        server.await.unwrap();
    }
}
