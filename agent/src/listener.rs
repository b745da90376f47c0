//! Where the agent listens: a TCP address (`IP:PORT`, what a port-forward
//! reaches) or an abstract Unix socket (`unix:@NAME`, for a local agent: no
//! TCP stack on the path and no file left behind).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use mirrord_protocol::transport::{self, bind_abstract};
use mirrord_protocol::Endpoint;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// An accepted client connection.
pub enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

/// A client connection, before it is known to be a session (split in
/// halves for frames) or a side stream (its fd relayed with `splice`).
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Reader: AsyncRead + Unpin + Send + 'static;
    type Writer: AsyncWrite + Unpin + Send + 'static;
    fn into_halves(self) -> std::io::Result<(Self::Reader, Self::Writer)>;
    /// The socket itself, deregistered from the runtime (still nonblocking).
    fn into_fd(self) -> std::io::Result<OwnedFd>;
}

impl ClientStream for TcpStream {
    type Reader = tokio::net::tcp::OwnedReadHalf;
    type Writer = tokio::net::tcp::OwnedWriteHalf;
    fn into_halves(self) -> std::io::Result<(Self::Reader, Self::Writer)> {
        Ok(self.into_split())
    }
    fn into_fd(self) -> std::io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
}

impl ClientStream for UnixStream {
    type Reader = transport::ReadHalf;
    type Writer = transport::WriteHalf;
    fn into_halves(self) -> std::io::Result<(Self::Reader, Self::Writer)> {
        transport::split(self)
    }
    fn into_fd(self) -> std::io::Result<OwnedFd> {
        Ok(self.into_std()?.into())
    }
}

impl Listener {
    pub async fn bind(addr: &Endpoint) -> std::io::Result<Listener> {
        match addr {
            Endpoint::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            Endpoint::Unix(name) => Ok(Listener::Unix(bind_abstract(name)?)),
        }
    }

    /// The bound address (the real port when `:0` was asked).
    pub fn local_addr(&self, asked: &Endpoint) -> std::io::Result<Endpoint> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Endpoint::Tcp),
            Listener::Unix(_) => Ok(asked.clone()),
        }
    }

    pub async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Tcp(stream, peer))
            }
            Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abstract_unix_listener_accepts() {
        let name = format!("mirrord-agent-test-{}", std::process::id());
        let addr = Endpoint::Unix(name.clone());
        let listener = Listener::bind(&addr).await.unwrap();
        let client = mirrord_protocol::transport::connect_abstract(&name).unwrap();
        assert!(matches!(
            listener.accept().await.unwrap(),
            Accepted::Unix(_)
        ));
        drop(client);
    }
}
