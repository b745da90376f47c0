//! Outgoing connections: the agent connects from the target, and the
//! intproxy opens a one-use relay on the local loopback that the layer
//! connects the program's own socket to. Bytes flow program <-> relay <->
//! agent connection <-> target peer.
//!
//! Buffers towards the program are unbounded: a bounded queue would stall
//! the one agent connection (and every file request behind it) whenever a
//! program stops reading a socket. Per-connection flow control in the
//! protocol is the proper fix, noted in ARCHITECTURE.md.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mirrord_protocol::{ClientMessage, ConnId, LayerResponse, NetProtocol, RemoteError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, Instrument};

use super::agent::{AgentClient, ConnEvent, Connected};

/// How long the relay waits for the layer to connect the program's socket.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
const RELAY_BUF: usize = 64 * 1024;

/// A UDP relay, held by every layer that may still use it (the one that
/// made it, and its forked children). UDP has no close to see: when the
/// last holder lets go (the processes exited), the relay stops and the
/// agent closes its socket.
pub struct UdpRelay {
    conn: ConnId,
    agent: AgentClient,
    task: tokio::task::AbortHandle,
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.task.abort();
        self.agent
            .send(ClientMessage::ConnClose { conn: self.conn });
    }
}

/// Connects to `remote` from the target and returns the relay address, and
/// for UDP the relay to hold.
pub async fn connect(
    agent: &AgentClient,
    protocol: NetProtocol,
    remote: SocketAddr,
) -> Result<(LayerResponse, Option<UdpRelay>), RemoteError> {
    let Connected {
        conn,
        local,
        events,
    } = agent.connect(protocol, remote).await?;
    let span = tracing::debug_span!("outgoing", conn, %remote, ?protocol);
    let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let (relay, held) = match protocol {
        NetProtocol::Tcp => {
            let listener = TcpListener::bind(bind)
                .await
                .map_err(|e| relay_error(agent, conn, e))?;
            let relay = listener
                .local_addr()
                .map_err(|e| relay_error(agent, conn, e))?;
            tokio::spawn(relay_tcp(listener, agent.clone(), conn, events).instrument(span));
            (relay, None)
        }
        NetProtocol::Udp => {
            let socket = UdpSocket::bind(bind)
                .await
                .map_err(|e| relay_error(agent, conn, e))?;
            let relay = socket
                .local_addr()
                .map_err(|e| relay_error(agent, conn, e))?;
            let task =
                tokio::spawn(relay_udp(socket, agent.clone(), conn, events).instrument(span));
            let held = UdpRelay {
                conn,
                agent: agent.clone(),
                task: task.abort_handle(),
            };
            (relay, Some(held))
        }
    };
    Ok((LayerResponse::Outgoing { relay, local }, held))
}

fn relay_error(agent: &AgentClient, conn: ConnId, e: std::io::Error) -> RemoteError {
    agent.send(ClientMessage::ConnClose { conn });
    RemoteError::from_io(&e)
}

async fn relay_tcp(
    listener: TcpListener,
    agent: AgentClient,
    conn: ConnId,
    events: mpsc::UnboundedReceiver<ConnEvent>,
) {
    let stream = match tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await {
        Ok(Ok((stream, _))) => stream,
        _ => {
            debug!("the program never connected to the relay");
            agent.send(ClientMessage::ConnClose { conn });
            return;
        }
    };
    drop(listener);
    pump(stream, &agent, conn, events).await;
}

/// Moves bytes between a local TCP stream (the program's side) and an
/// agent connection until either side is done: both directions shut, an
/// error, or the agent's `ConnClosed`. Tells the agent `ConnClose` unless
/// the agent closed first. Shared by outgoing and incoming connections.
pub(crate) async fn pump(
    stream: TcpStream,
    agent: &AgentClient,
    conn: ConnId,
    mut events: mpsc::UnboundedReceiver<ConnEvent>,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buf = vec![0u8; RELAY_BUF];
    let mut local_open = true;
    let mut remote_open = true;
    while local_open || remote_open {
        tokio::select! {
            read = reader.read(&mut buf), if local_open => match read {
                Ok(0) => {
                    local_open = false;
                    agent.send(ClientMessage::ConnShutdown { conn });
                }
                Ok(n) => agent.send(ClientMessage::ConnData { conn, data: buf[..n].to_vec() }),
                Err(_) => break,
            },
            event = events.recv() => match event {
                Some(ConnEvent::Data(data)) => {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(ConnEvent::Eof) => {
                    remote_open = false;
                    let _ = writer.shutdown().await;
                }
                Some(ConnEvent::Closed(error)) => {
                    debug!(?error, "remote side closed");
                    return;
                }
                None => return,
            },
        }
    }
    agent.send(ClientMessage::ConnClose { conn });
}

async fn relay_udp(
    socket: UdpSocket,
    agent: AgentClient,
    conn: ConnId,
    mut events: mpsc::UnboundedReceiver<ConnEvent>,
) {
    let mut buf = vec![0u8; RELAY_BUF];
    // The program's socket, learnt from its first datagram.
    let mut program: Option<SocketAddr> = None;
    loop {
        tokio::select! {
            read = socket.recv_from(&mut buf) => match read {
                Ok((n, from)) => {
                    program = Some(from);
                    agent.send(ClientMessage::ConnData { conn, data: buf[..n].to_vec() });
                }
                Err(_) => break,
            },
            event = events.recv() => match event {
                Some(ConnEvent::Data(data)) => {
                    if let Some(to) = program {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
                Some(ConnEvent::Eof) => {}
                Some(ConnEvent::Closed(_)) | None => return,
            },
        }
    }
    agent.send(ClientMessage::ConnClose { conn });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_holder_of_a_udp_relay_stops_it_and_closes_the_connection() {
        let (agent, mut sent) = AgentClient::detached();
        let (_events_tx, events) = mpsc::unbounded_channel();
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let task = tokio::spawn(relay_udp(socket, agent.clone(), 7, events));
        let relay = std::sync::Arc::new(UdpRelay {
            conn: 7,
            agent,
            task: task.abort_handle(),
        });
        let child_copy = relay.clone();
        drop(relay);
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "stopped while a forked child holds it");
        assert_eq!(sent.try_recv_message(), None);
        drop(child_copy);
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(
            sent.try_recv_message(),
            Some(ClientMessage::ConnClose { conn: 7 })
        );
    }
}
