//! The socket factory: one OS thread that has joined the target's network
//! namespace and creates every socket the agent opens for the target.
//!
//! A socket keeps the namespace it was created in, whatever thread uses it
//! later, so only creation has to happen in the joined thread; the tokio
//! runtime then connects and serves the sockets as usual. A dedicated thread
//! (rather than `setns` on a runtime worker) keeps every other thread of the
//! agent in its own namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "cannot join the target's network namespace: {0}; the agent needs root \
         (or CAP_SYS_ADMIN) to join the target"
    )]
    Setns(io::Error),
    #[error("cannot start the socket factory thread: {0}")]
    Spawn(io::Error),
}

struct Job {
    domain: i32,
    kind: i32,
    protocol: i32,
    reply: oneshot::Sender<io::Result<OwnedFd>>,
}

/// Creates sockets in the target's network namespace; cheap to clone.
#[derive(Clone)]
pub struct SocketFactory {
    jobs: std_mpsc::Sender<Job>,
}

impl SocketFactory {
    /// Starts the factory thread; it joins `netns` (if any) before serving
    /// and ends when the last clone of the factory is dropped.
    pub fn start(netns: Option<OwnedFd>) -> Result<Self, NetnsError> {
        let (jobs, rx) = std_mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel::<io::Result<()>>(1);
        std::thread::Builder::new()
            .name("netns-sockets".into())
            .spawn(move || {
                if let Some(ns) = netns {
                    // SAFETY: a valid namespace descriptor; only this thread moves.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                        let _ = ready_tx.send(Err(io::Error::last_os_error()));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    let _ = job
                        .reply
                        .send(new_socket(job.domain, job.kind, job.protocol));
                }
            })
            .map_err(NetnsError::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { jobs }),
            Ok(Err(e)) => Err(NetnsError::Setns(e)),
            Err(_) => Err(NetnsError::Spawn(io::Error::other("factory thread died"))),
        }
    }

    /// A non-blocking, close-on-exec socket of `kind` (`SOCK_STREAM`...).
    pub async fn socket(&self, v6: bool, kind: i32) -> io::Result<OwnedFd> {
        let (reply, rx) = oneshot::channel();
        let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        self.raw(domain, kind, 0, reply)?;
        rx.await
            .map_err(|_| io::Error::other("socket factory stopped"))?
    }

    /// An `AF_PACKET` socket of `kind` for the EtherType `protocol` (host
    /// order), in the target's namespace: the mirror's capture socket.
    pub async fn packet(&self, kind: i32, protocol: u16) -> io::Result<OwnedFd> {
        let (reply, rx) = oneshot::channel();
        self.raw(libc::AF_PACKET, kind, i32::from(protocol.to_be()), reply)?;
        rx.await
            .map_err(|_| io::Error::other("socket factory stopped"))?
    }

    fn raw(
        &self,
        domain: i32,
        kind: i32,
        protocol: i32,
        reply: oneshot::Sender<io::Result<OwnedFd>>,
    ) -> io::Result<()> {
        self.jobs
            .send(Job {
                domain,
                kind,
                protocol,
                reply,
            })
            .map_err(|_| io::Error::other("socket factory stopped"))
    }

    pub async fn tcp(&self, v6: bool) -> io::Result<tokio::net::TcpSocket> {
        let fd = self.socket(v6, libc::SOCK_STREAM).await?;
        Ok(tokio::net::TcpSocket::from_std_stream(
            std::net::TcpStream::from(fd),
        ))
    }

    pub async fn udp(&self, v6: bool) -> io::Result<tokio::net::UdpSocket> {
        let fd = self.socket(v6, libc::SOCK_DGRAM).await?;
        tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))
    }
}

fn new_socket(domain: i32, kind: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = unsafe {
        libc::socket(
            domain,
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        bypass_steal(&fd);
        Ok(fd)
    }
}

/// Marks the agent's own sockets so the steal chain lets them through:
/// an outgoing connection (or a pass-through) to a stolen port of the
/// target reaches the target's real server, not the agent again. Needs
/// `CAP_NET_ADMIN`; without it nothing is stolen either.
fn bypass_steal(fd: &OwnedFd) {
    let mark = crate::steal::iptables::BYPASS_MARK as libc::c_int;
    let _ = set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_MARK, mark);
}

/// `setsockopt` of an `int` option (`SO_MARK`, `IPV6_V6ONLY`,
/// `SO_RCVBUFFORCE`...).
pub fn set_int_option(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid `int` for the duration of the call; a bad
    // descriptor or option is an error, not undefined behaviour.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::addr_of!(value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn targetless_sockets_work() {
        let f = SocketFactory::start(None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = f.tcp(false).await.unwrap();
        let (c, a) = tokio::join!(s.connect(addr), listener.accept());
        assert_eq!(c.unwrap().local_addr().unwrap(), a.unwrap().1);
        let u = f.udp(true).await.unwrap();
        assert!(u.local_addr().unwrap().is_ipv6());
    }
}
