//! Outgoing connections: the agent connects from the target, and the
//! intproxy opens a one-use relay on the local loopback that the layer
//! connects the program's own socket to. Bytes flow program <-> relay <->
//! agent connection <-> target peer.
//!
//! A TCP relay is flow-controlled (protocol 1.2, [`CONN_WINDOW`]): it reads
//! the program's socket at most a window ahead of the agent's acks, and
//! acknowledges what it wrote to the program, so neither side buffers more
//! than a window per connection and a program that stops reading never
//! stalls the one agent connection. UDP relays are not counted.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use mirrord_protocol::chunk::Chunks;
use mirrord_protocol::splice;
use mirrord_protocol::{
    Acks, ClientMessage, ConnId, LayerResponse, NetProtocol, RemoteError, CONN_WINDOW,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, Instrument};

use super::agent::{AgentClient, ConnEvent, Connected};
use super::side_stream;

/// How long the relay waits for the layer to connect the program's socket.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
const RELAY_BUF: usize = 256 * 1024;

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
    if let (NetProtocol::Tcp, Some(side_streams)) = (protocol, agent.side_streams()) {
        match side_streams.open(remote).await {
            Ok(opened) => return relay_side_stream(opened?, remote).await,
            Err(e) => debug!(%remote, error = %e, "no side stream; the connection is framed"),
        }
    }
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

/// A TCP connection on a side stream: the relay and the side stream are
/// spliced together once the program has connected.
async fn relay_side_stream(
    (stream, local): side_stream::Opened,
    remote: SocketAddr,
) -> Result<(LayerResponse, Option<UdpRelay>), RemoteError> {
    let io = |e: std::io::Error| RemoteError::from_io(&e);
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(io)?;
    let relay = listener.local_addr().map_err(io)?;
    let span = tracing::debug_span!("side_stream", %remote, %local);
    tokio::spawn(
        async move {
            let program = match tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await {
                Ok(Ok((program, _))) => program,
                _ => return debug!("the program never connected to the relay"),
            };
            let _ = program.set_nodelay(true);
            let program = match program.into_std() {
                Ok(program) => program.into(),
                Err(e) => return debug!(error = %e, "cannot relay"),
            };
            match splice::relay(program, stream).await {
                Ok((sent, received)) => debug!(sent, received, "connection ended"),
                Err(e) => debug!(error = %e, "connection failed"),
            }
        }
        .instrument(span),
    );
    Ok((LayerResponse::Outgoing { relay, local }, None))
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
    pump(stream, &agent, conn, events, ProgramBytes::Forward).await;
}

/// What becomes of the bytes the program writes on a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgramBytes {
    /// Sent to the agent (outgoing and stolen connections), with the
    /// program's half-close.
    Forward,
    /// Read and dropped here (a mirrored connection: the target's own
    /// server answers the client), so the hop and the agent carry nothing
    /// for them.
    Drop,
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
    program_bytes: ProgramBytes,
) {
    let forward = program_bytes == ProgramBytes::Forward;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut chunks = Chunks::new(RELAY_BUF);
    let flow_control = agent.flow_control();
    // Bytes sent to the agent that it has not acknowledged yet.
    let mut unacked: u64 = 0;
    let mut acks = Acks::default();
    let mut local_open = true;
    let mut remote_open = true;
    while local_open || remote_open {
        let room = !flow_control || unacked < CONN_WINDOW;
        tokio::select! {
            read = reader.read_buf(chunks.buffer()), if local_open && room => match read {
                Ok(0) => {
                    local_open = false;
                    if forward {
                        agent.send(ClientMessage::ConnShutdown { conn });
                    }
                }
                // Dropped: the next read reuses the buffer.
                Ok(_) if !forward => {}
                Ok(n) => {
                    unacked += n as u64;
                    agent.send(ClientMessage::ConnData { conn, data: chunks.take().into() });
                }
                Err(_) => break,
            },
            event = events.recv() => match event {
                Some(ConnEvent::Data(data)) => {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                    // A mirrored copy is not flow-controlled by the agent
                    // (the capture never waits): an ack would be one more
                    // message for each side to handle per request.
                    if flow_control && forward {
                        if let Some(bytes) = acks.wrote(data.len() as u64) {
                            agent.send(ClientMessage::ConnAck { conn, bytes });
                        }
                    }
                }
                Some(ConnEvent::Ack(bytes)) => unacked = unacked.saturating_sub(bytes),
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
                    agent.send(ClientMessage::ConnData { conn, data: buf[..n].to_vec().into() });
                }
                Err(_) => break,
            },
            event = events.recv() => match event {
                Some(ConnEvent::Data(data)) => {
                    if let Some(to) = program {
                        let _ = socket.send_to(&data, to).await;
                    }
                }
                Some(ConnEvent::Eof | ConnEvent::Ack(_)) => {}
                Some(ConnEvent::Closed(_)) | None => return,
            },
        }
    }
    agent.send(ClientMessage::ConnClose { conn });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intproxy::side_stream::SideStreams;
    use mirrord_protocol::{codec, AgentMessage, Endpoint, ACK_EVERY};

    /// A stand-in agent for one side stream: it reads the opening,
    /// answers that the connection is made, with the remote peer's first
    /// bytes in the same write, then echoes.
    async fn side_stream_agent(name: &str) -> tokio::task::JoinHandle<ClientMessage> {
        use tokio::io::AsyncReadExt;
        let listener = crate::local_socket::bind_abstract(name).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let opening: ClientMessage = codec::read_one_frame(&mut stream).await.unwrap();
            let local = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 40_000));
            let mut answer =
                codec::encode_frame(&AgentMessage::StreamOpened { result: Ok(local) }).unwrap();
            answer.extend_from_slice(b"banner;");
            stream.write_all(&answer).await.unwrap();
            let mut buf = [0u8; 64];
            loop {
                match stream.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => stream.write_all(&buf[..n]).await.unwrap(),
                }
            }
            opening
        })
    }

    #[tokio::test]
    async fn a_side_stream_relays_from_the_first_byte_after_the_answer() {
        use tokio::io::AsyncReadExt;
        let name = crate::local_socket::unique_name("side-stream-test");
        let agent_task = side_stream_agent(&name).await;
        let (agent, mut sent) = AgentClient::detached();
        let agent = agent.with_side_streams(SideStreams {
            endpoint: Endpoint::Unix(name),
            secret: Some("s".into()),
        });
        let remote = SocketAddr::from((Ipv4Addr::LOCALHOST, 7001));
        let (answer, held) = connect(&agent, NetProtocol::Tcp, remote).await.unwrap();
        let LayerResponse::Outgoing { relay, local } = answer else {
            panic!("{answer:?}")
        };
        assert!(held.is_none());
        assert_eq!(
            local,
            SocketAddr::from((Ipv4Addr::new(10, 0, 0, 7), 40_000))
        );
        let mut program = TcpStream::connect(relay).await.unwrap();
        program.write_all(b"ping").await.unwrap();
        program.shutdown().await.unwrap();
        let mut got = Vec::new();
        program.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"banner;ping");
        assert_eq!(
            agent_task.await.unwrap(),
            ClientMessage::OpenStream {
                secret: Some("s".into()),
                remote
            }
        );
        assert_eq!(sent.try_recv_connect(), None, "nothing went framed");
    }

    #[tokio::test]
    async fn without_a_side_stream_a_connection_is_framed() {
        let (agent, mut sent) = AgentClient::detached();
        let agent = agent.with_side_streams(SideStreams {
            endpoint: Endpoint::Unix(crate::local_socket::unique_name("nobody-listens")),
            secret: None,
        });
        let remote = SocketAddr::from((Ipv4Addr::LOCALHOST, 7001));
        let connecting = tokio::spawn(async move {
            let _ = connect(&agent, NetProtocol::Tcp, remote).await;
        });
        let asked = sent
            .eventually(Duration::from_secs(5), |sent| sent.try_recv_connect())
            .await;
        assert_eq!(asked, Some((NetProtocol::Tcp, remote)));
        connecting.abort();
    }

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

    /// What the relay sent the agent until it has been quiet for a while:
    /// data bytes and acknowledged bytes.
    async fn quiet_total(sent: &mut crate::intproxy::agent::Sent) -> (usize, u64) {
        let (mut data, mut acked) = (0, 0);
        let mut idle = 0;
        while idle < 10 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            idle += 1;
            while let Some(msg) = sent.try_recv_message() {
                idle = 0;
                match msg {
                    ClientMessage::ConnData { data: d, .. } => data += d.len(),
                    ClientMessage::ConnAck { bytes, .. } => acked += bytes,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        (data, acked)
    }

    #[tokio::test]
    async fn a_tcp_relay_reads_one_window_ahead_of_the_agent_and_acks_what_it_writes() {
        let (agent, mut sent) = AgentClient::detached();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let mut program = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (relay_side, _) = listener.accept().await.unwrap();
        let (events_tx, events) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            pump(relay_side, &agent, 3, events, ProgramBytes::Forward).await
        });

        // The program has far more to send than one window and the
        // kernel's socket buffers together.
        let (mut program_rd, mut program_wr) = program.split();
        let total = 64 * CONN_WINDOW as usize;
        let bytes = vec![2u8; total];
        let send = program_wr.write_all(&bytes);
        let check = async {
            let (first, _) = quiet_total(&mut sent).await;
            assert!(
                first as u64 >= CONN_WINDOW && first as u64 <= CONN_WINDOW + RELAY_BUF as u64,
                "read {first} bytes with nothing acknowledged"
            );
            events_tx.send(ConnEvent::Ack(first as u64)).unwrap();
            let (second, _) = quiet_total(&mut sent).await;
            assert!(second > 0, "an ack lets the relay read on");

            // The agent's bytes reach the program and are acknowledged,
            // in batches of ACK_EVERY bytes.
            events_tx
                .send(ConnEvent::Data(b"xyz".to_vec().into()))
                .unwrap();
            let mut got = [0u8; 3];
            program_rd.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"xyz");
            assert_eq!(quiet_total(&mut sent).await.1, 0, "3 bytes owe no ack yet");
            let rest = ACK_EVERY as usize - 3;
            events_tx
                .send(ConnEvent::Data(vec![3u8; rest].into()))
                .unwrap();
            let mut got = vec![0u8; rest];
            program_rd.read_exact(&mut got).await.unwrap();
            assert_eq!(quiet_total(&mut sent).await.1, ACK_EVERY);
        };
        tokio::select! {
            _ = send => panic!("the relay took everything without acks"),
            () = check => {}
        }
        events_tx.send(ConnEvent::Closed(None)).unwrap();
        pump.await.unwrap();
    }
}
