//! Side streams (protocol 1.4): each outgoing TCP connection on an agent
//! connection of its own (`OpenStream`), unframed, when the agent is
//! reached directly (a local agent's Unix socket, or its TCP address).
//! Both relays then move the bytes with `splice(2)`: no frames, no acks,
//! and nothing shared with other connections' traffic. Over a
//! port-forward there is one stream only, and connections stay framed.

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use mirrord_protocol::{codec, AgentMessage, ClientMessage, Endpoint, RemoteError};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::local_socket;

/// Where and how to open side streams to the agent.
#[derive(Debug)]
pub struct SideStreams {
    pub endpoint: Endpoint,
    pub secret: Option<String>,
}

/// A connection on a side stream: the stream's socket (nonblocking, ready
/// to relay) and the connection's local address in the target.
pub type Opened = (OwnedFd, SocketAddr);

impl SideStreams {
    /// Asks the agent to connect to `remote` from the target on a side
    /// stream: the connection, or the connect's error in the target
    /// (what the program gets). The outer error is the side stream's own
    /// (no descriptor left here, the agent unreachable or refusing it):
    /// the caller can still use the shared connection.
    pub async fn open(&self, remote: SocketAddr) -> io::Result<Result<Opened, RemoteError>> {
        match &self.endpoint {
            Endpoint::Unix(name) => {
                let mut stream = local_socket::connect_abstract(name)?;
                let opened = self.handshake(&mut stream, remote).await?;
                let fd = stream.into_std()?;
                Ok(opened.map(|local| (fd.into(), local)))
            }
            Endpoint::Tcp(addr) => {
                let mut stream = tokio::net::TcpStream::connect(addr).await?;
                let _ = stream.set_nodelay(true);
                let opened = self.handshake(&mut stream, remote).await?;
                let fd = stream.into_std()?;
                Ok(opened.map(|local| (fd.into(), local)))
            }
        }
    }

    /// Sends `OpenStream` and reads exactly the answer: what the remote
    /// peer sends first follows it on the stream, for the relay.
    async fn handshake<S>(
        &self,
        stream: &mut S,
        remote: SocketAddr,
    ) -> io::Result<Result<SocketAddr, RemoteError>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let open = ClientMessage::OpenStream {
            secret: self.secret.clone(),
            remote,
        };
        codec::write_one_frame(stream, &open)
            .await
            .map_err(io::Error::other)?;
        match codec::read_one_frame(stream).await {
            Ok(AgentMessage::StreamOpened { result }) => Ok(result),
            Ok(AgentMessage::Refused { reason }) => Err(io::Error::other(format!(
                "the agent refused the side stream: {reason}"
            ))),
            Ok(other) => Err(io::Error::other(format!(
                "unexpected answer to OpenStream: {other:?}"
            ))),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}
