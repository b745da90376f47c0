//! Side streams (protocol 1.4): each outgoing TCP connection on an agent
//! connection of its own (`OpenStream`), unframed, when the agent is
//! reached directly (a local agent's Unix socket, or its TCP address).
//! Both relays then move the bytes with `splice(2)`: no frames, no acks,
//! and nothing shared with other connections' traffic. Over a
//! port-forward there is one stream only, and connections stay framed.

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

impl SideStreams {
    /// Connects to `remote` from the target on a side stream: the stream's
    /// socket (nonblocking, ready to relay) and the connection's local
    /// address in the target.
    pub async fn open(&self, remote: SocketAddr) -> Result<(OwnedFd, SocketAddr), RemoteError> {
        let unreachable = |e: std::io::Error| {
            RemoteError::new(
                libc::EIO,
                format!("cannot reach the mirrord agent at {}: {e}", self.endpoint),
            )
        };
        match &self.endpoint {
            Endpoint::Unix(name) => {
                let mut stream = local_socket::connect_abstract(name).map_err(unreachable)?;
                let local = self.handshake(&mut stream, remote).await?;
                let fd = stream.into_std().map_err(unreachable)?;
                Ok((fd.into(), local))
            }
            Endpoint::Tcp(addr) => {
                let mut stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(unreachable)?;
                let _ = stream.set_nodelay(true);
                let local = self.handshake(&mut stream, remote).await?;
                let fd = stream.into_std().map_err(unreachable)?;
                Ok((fd.into(), local))
            }
        }
    }

    /// Sends `OpenStream` and reads exactly the answer: what the remote
    /// peer sends first follows it on the stream, for the relay.
    async fn handshake<S>(
        &self,
        stream: &mut S,
        remote: SocketAddr,
    ) -> Result<SocketAddr, RemoteError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let lost =
            |e: String| RemoteError::new(libc::EIO, format!("the mirrord agent is gone: {e}"));
        let open = ClientMessage::OpenStream {
            secret: self.secret.clone(),
            remote,
        };
        codec::write_one_frame(stream, &open)
            .await
            .map_err(|e| lost(e.to_string()))?;
        match codec::read_one_frame(stream).await {
            Ok(AgentMessage::StreamOpened { result }) => result,
            Ok(AgentMessage::Refused { reason }) => Err(lost(format!("it refused us: {reason}"))),
            Ok(AgentMessage::Closing { reason }) => Err(lost(reason)),
            Ok(other) => Err(lost(format!("unexpected answer to OpenStream: {other:?}"))),
            Err(e) => Err(lost(e.to_string())),
        }
    }
}
