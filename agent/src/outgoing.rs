//! Outgoing connections made from the target's network namespace for one
//! client connection: connect, then relay bytes both ways. Stolen incoming
//! connections are adopted and relayed the same way.
//!
//! Each connection gets a writer task (client bytes to the peer, fed by a
//! bounded queue) and a reader task (peer bytes to the client through the
//! connection's bounded outbound queue). Both queues are bounded: a slow
//! peer or a slow client makes the other side wait instead of buffering
//! without limit. The price is head-of-line blocking: while one peer's
//! queue is full the client connection's reader waits for it.
//!
//! With a client that speaks flow control (protocol 1.2), a stream's reader
//! also stops once [`CONN_WINDOW`] bytes are unacknowledged, and the
//! writer acknowledges what it wrote to the peer (`ConnAck`).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mirrord_protocol::{Acks, AgentMessage, ConnId, NetProtocol, RemoteError, CONN_WINDOW};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

use crate::netns::SocketFactory;

/// How long a TCP connect may take before `ETIMEDOUT`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages queued towards one peer before the client's reader waits.
const PEER_QUEUE: usize = 64;
/// The largest chunk read from a TCP peer, and the largest UDP datagram.
const CHUNK: usize = 256 * 1024;

/// Connects a TCP socket from the target's network namespace, within
/// `timeout` (`ETIMEDOUT` after it).
pub async fn connect_tcp(
    factory: &SocketFactory,
    remote: SocketAddr,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, RemoteError> {
    let io = |e: io::Error| RemoteError::from_io(&e);
    let sock = factory.tcp(remote.is_ipv6()).await.map_err(io)?;
    let stream = tokio::time::timeout(timeout, sock.connect(remote))
        .await
        .map_err(|_| RemoteError::new(libc::ETIMEDOUT, format!("connect to {remote} timed out")))?
        .map_err(io)?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub enum ToPeer {
    Data(mirrord_protocol::Payload),
    Shutdown,
}

/// The bytes a stream connection sent the client that the client has not
/// acknowledged yet.
#[derive(Default)]
struct Window {
    unacked: AtomicU64,
    room: Notify,
}

impl Window {
    /// Waits until fewer than [`CONN_WINDOW`] bytes are unacknowledged.
    async fn room(&self) {
        loop {
            // Registered before the check: an ack in between still wakes us.
            let acked = self.room.notified();
            if self.unacked.load(Ordering::Acquire) < CONN_WINDOW {
                return;
            }
            acked.await;
        }
    }

    fn sent(&self, bytes: usize) {
        self.unacked.fetch_add(bytes as u64, Ordering::AcqRel);
    }

    /// A client's ack; one acknowledging more than was sent cannot wrap
    /// the count around.
    fn acked(&self, bytes: u64) {
        let _ = self
            .unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |unacked| {
                Some(unacked.saturating_sub(bytes))
            });
        self.room.notify_waiters();
    }
}

/// One connection as the client's messages reach it.
struct Slot {
    tx: mpsc::Sender<ToPeer>,
    window: Arc<Window>,
}

/// The outgoing connections of one client connection.
pub struct Outgoing {
    /// A std mutex: plain map operations, never held across an `.await`.
    conns: Mutex<HashMap<ConnId, Slot>>,
    next: Mutex<ConnId>,
    factory: SocketFactory,
    out: mpsc::Sender<AgentMessage>,
    connect_timeout: Duration,
    /// The client acknowledges stream data and expects acks (1.2+).
    flow_control: bool,
}

impl Outgoing {
    pub fn new(
        factory: SocketFactory,
        out: mpsc::Sender<AgentMessage>,
        flow_control: bool,
    ) -> Arc<Self> {
        Self::with_timeout(factory, out, flow_control, CONNECT_TIMEOUT)
    }

    pub fn with_timeout(
        factory: SocketFactory,
        out: mpsc::Sender<AgentMessage>,
        flow_control: bool,
        connect_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            conns: Mutex::new(HashMap::new()),
            next: Mutex::new(1),
            factory,
            out,
            connect_timeout,
            flow_control,
        })
    }

    /// Connects to `remote`; on success returns the connection id, the
    /// local address and the relay, which the caller runs after queueing
    /// the `Connected` answer (so no `ConnData` can overtake it).
    pub async fn connect(
        self: &Arc<Self>,
        protocol: NetProtocol,
        remote: SocketAddr,
    ) -> Result<(ConnId, SocketAddr, Relay), RemoteError> {
        let io = |e: io::Error| RemoteError::from_io(&e);
        let stream = match protocol {
            NetProtocol::Tcp => {
                Peer::Tcp(connect_tcp(&self.factory, remote, self.connect_timeout).await?)
            }
            NetProtocol::Udp => {
                let sock = self.factory.udp(remote.is_ipv6()).await.map_err(io)?;
                sock.connect(remote).await.map_err(io)?;
                Peer::Udp(sock)
            }
        };
        let local = stream.local_addr().map_err(io)?;
        let (conn, relay) = self.register(stream);
        Ok((conn, local, relay))
    }

    /// Takes a connection the agent accepted for the client (a stolen
    /// one): it gets an id from the same counter as outgoing connections
    /// and is relayed the same way.
    pub fn adopt(self: &Arc<Self>, stream: tokio::net::TcpStream) -> (ConnId, Relay) {
        self.register(Peer::Tcp(stream))
    }

    /// Takes an in-agent stream (the HTTP filter's side of a stolen
    /// connection's matching requests), relayed like a TCP connection.
    pub fn adopt_local(self: &Arc<Self>, stream: tokio::io::DuplexStream) -> (ConnId, Relay) {
        self.register(Peer::Local(stream))
    }

    fn register(self: &Arc<Self>, peer: Peer) -> (ConnId, Relay) {
        let conn = {
            let mut next = lock(&self.next);
            let c = *next;
            *next += 1;
            c
        };
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let window = Arc::new(Window::default());
        let slot = Slot {
            tx,
            window: window.clone(),
        };
        lock(&self.conns).insert(conn, slot);
        let window = match peer {
            Peer::Tcp(_) | Peer::Local(_) if self.flow_control => Some(window),
            _ => None,
        };
        (
            conn,
            Relay {
                conn,
                peer,
                rx,
                window,
                owner: self.clone(),
            },
        )
    }

    /// Queues bytes (or a half-close) for the peer; unknown ids are ignored
    /// (the connection may have just closed).
    pub async fn send(&self, conn: ConnId, msg: ToPeer) {
        let tx = lock(&self.conns).get(&conn).map(|slot| slot.tx.clone());
        match tx {
            Some(tx) => {
                let _ = tx.send(msg).await;
            }
            None => tracing::debug!(conn, "data for an unknown connection dropped"),
        }
    }

    /// The client wrote `bytes` more of a connection's data: its reader may
    /// go on. Unknown ids are ignored (closed, or not ours to count).
    pub fn ack(&self, conn: ConnId, bytes: u64) {
        if let Some(slot) = lock(&self.conns).get(&conn) {
            slot.window.acked(bytes);
        }
    }

    /// Forgets a connection: its tasks end and the socket closes.
    pub fn close(&self, conn: ConnId) {
        lock(&self.conns).remove(&conn);
    }

    pub fn open_count(&self) -> usize {
        lock(&self.conns).len()
    }
}

enum Peer {
    Tcp(tokio::net::TcpStream),
    Udp(tokio::net::UdpSocket),
    Local(tokio::io::DuplexStream),
}

impl Peer {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Peer::Tcp(s) => s.local_addr(),
            Peer::Udp(s) => s.local_addr(),
            Peer::Local(_) => Err(io::Error::other("an in-agent stream has no address")),
        }
    }
}

/// A connected peer whose relay has not started yet (it starts after the
/// `Connected` answer is queued, so `ConnData` never overtakes it).
pub struct Relay {
    conn: ConnId,
    peer: Peer,
    rx: mpsc::Receiver<ToPeer>,
    /// Set when the stream is flow-controlled.
    window: Option<Arc<Window>>,
    owner: Arc<Outgoing>,
}

impl Relay {
    pub async fn run(self) {
        let Relay {
            conn,
            peer,
            rx,
            window,
            owner,
        } = self;
        {
            let out = owner.out.clone();
            let window = window.as_deref();
            let error = match peer {
                Peer::Tcp(stream) => {
                    let (rd, wr) = stream.into_split();
                    relay_stream(conn, rd, wr, rx, &out, window).await
                }
                Peer::Local(stream) => {
                    let (rd, wr) = tokio::io::split(stream);
                    relay_stream(conn, rd, wr, rx, &out, window).await
                }
                Peer::Udp(sock) => relay_udp(conn, sock, rx, &out).await,
            };
            // Only a connection the client has not closed itself is reported.
            let known = lock(&owner.conns).remove(&conn).is_some();
            if known {
                let error = error.map(|e| RemoteError::from_io(&e));
                let _ = out.send(AgentMessage::ConnClosed { conn, error }).await;
            }
        }
    }
}

/// Relays a byte stream until the client closes the connection (`None`)
/// or I/O fails. With a `window`, the reader waits for the client's acks
/// and the writer sends them.
async fn relay_stream<R, W>(
    conn: ConnId,
    mut rd: R,
    mut wr: W,
    mut rx: mpsc::Receiver<ToPeer>,
    out: &mpsc::Sender<AgentMessage>,
    window: Option<&Window>,
) -> Option<io::Error>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let reader = async {
        let mut chunks = mirrord_protocol::chunk::Chunks::new(CHUNK);
        loop {
            if let Some(window) = window {
                window.room().await;
            }
            match rd.read_buf(chunks.buffer()).await {
                Ok(0) => {
                    let _ = out.send(AgentMessage::ConnEof { conn }).await;
                    // Keep the writing side open until the client is done.
                    std::future::pending::<()>().await;
                }
                Ok(n) => {
                    if let Some(window) = window {
                        window.sent(n);
                    }
                    let data = chunks.take();
                    if out
                        .send(AgentMessage::ConnData {
                            conn,
                            data: data.into(),
                        })
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                Err(e) => return Some(e),
            }
        }
    };
    let writer = async {
        let mut acks = Acks::default();
        while let Some(msg) = rx.recv().await {
            let r = match msg {
                ToPeer::Data(data) => {
                    let written = wr.write_all(&data).await;
                    if written.is_ok() && window.is_some() {
                        if let Some(bytes) = acks.wrote(data.len() as u64) {
                            let _ = out.send(AgentMessage::ConnAck { conn, bytes }).await;
                        }
                    }
                    written
                }
                ToPeer::Shutdown => wr.shutdown().await,
            };
            if let Err(e) = r {
                return Some(e);
            }
        }
        None
    };
    tokio::select! {
        e = reader => e,
        e = writer => e,
    }
}

async fn relay_udp(
    conn: ConnId,
    sock: tokio::net::UdpSocket,
    mut rx: mpsc::Receiver<ToPeer>,
    out: &mpsc::Sender<AgentMessage>,
) -> Option<io::Error> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(n) => {
                    if out.send(AgentMessage::ConnData { conn, data: buf[..n].to_vec().into() }).await.is_err() {
                        return None;
                    }
                }
                Err(e) => return Some(e),
            },
            msg = rx.recv() => match msg {
                Some(ToPeer::Data(d)) => {
                    if let Err(e) = sock.send(&d).await {
                        return Some(e);
                    }
                }
                Some(ToPeer::Shutdown) => {}
                None => return None,
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirrord_protocol::ACK_EVERY;

    fn outgoing() -> (Arc<Outgoing>, mpsc::Receiver<AgentMessage>) {
        let (tx, rx) = mpsc::channel(16);
        let factory = SocketFactory::start(None).unwrap();
        (
            Outgoing::with_timeout(factory, tx, true, Duration::from_millis(500)),
            rx,
        )
    }

    #[tokio::test]
    async fn a_connect_nobody_answers_times_out_with_etimedout() {
        // A listener whose accept queue is full drops further SYNs.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            if let Ok(Ok(c)) =
                tokio::time::timeout(Duration::from_millis(200), s.connect(addr)).await
            {
                fillers.push(c);
            }
        }
        assert!(
            !fillers.is_empty() && fillers.len() < 4,
            "{} fillers",
            fillers.len()
        );
        let (out, _rx) = outgoing();
        let err = out
            .connect(NetProtocol::Tcp, addr)
            .await
            .err()
            .expect("no answer, no connection");
        assert_eq!(err.errno, libc::ETIMEDOUT, "{err}");
        assert_eq!(out.open_count(), 0);
    }

    #[tokio::test]
    async fn refused_connect_keeps_the_errno_and_close_forgets() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let (out, mut rx) = outgoing();
        let err = out
            .connect(NetProtocol::Tcp, port)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.errno, libc::ECONNREFUSED);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (conn, local, relay) = out
            .connect(NetProtocol::Tcp, listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut peer, from) = listener.accept().await.unwrap();
        assert_eq!(from, local);
        let relay = tokio::spawn(relay.run());
        peer.write_all(b"hi").await.unwrap();
        assert_eq!(
            rx.recv().await,
            Some(AgentMessage::ConnData {
                conn,
                data: b"hi".to_vec().into()
            })
        );
        out.close(conn);
        relay.await.unwrap();
        // The client closed it: no ConnClosed, and the peer sees EOF.
        let mut buf = [0u8; 8];
        assert_eq!(peer.read(&mut buf).await.unwrap(), 0);
        assert!(rx.try_recv().is_err());
    }

    /// Collects `ConnData` bytes of `conn` until nothing arrives for a
    /// while; acks from the agent's writer are counted apart.
    async fn drain(rx: &mut mpsc::Receiver<AgentMessage>) -> (usize, u64) {
        let (mut data, mut acked) = (0, 0);
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
        {
            match msg {
                AgentMessage::ConnData { data: d, .. } => data += d.len(),
                AgentMessage::ConnAck { bytes, .. } => acked += bytes,
                other => panic!("unexpected {other:?}"),
            }
        }
        (data, acked)
    }

    /// A TCP connection to a fresh peer, relayed: its id, the peer's end
    /// and the running relay.
    async fn relayed(
        out: &Arc<Outgoing>,
    ) -> (ConnId, tokio::net::TcpStream, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (conn, _, relay) = out
            .connect(NetProtocol::Tcp, listener.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        (conn, peer, tokio::spawn(relay.run()))
    }

    #[tokio::test]
    async fn a_stream_reads_one_window_ahead_of_the_acks_and_acks_what_it_writes() {
        let (out, mut rx) = outgoing();
        let (conn, peer, relay) = relayed(&out).await;
        let (mut peer_rd, mut peer_wr) = peer.into_split();
        // The peer has far more to say than one window.
        let total = 4 * CONN_WINDOW as usize;
        let writer = tokio::spawn(async move {
            let _ = peer_wr.write_all(&vec![1u8; total]).await;
            peer_wr
        });
        let (first, _) = drain(&mut rx).await;
        assert!(
            first as u64 >= CONN_WINDOW && first as u64 <= CONN_WINDOW + CHUNK as u64,
            "read {first} bytes with nothing acknowledged"
        );
        out.ack(conn, first as u64);
        let (second, _) = drain(&mut rx).await;
        assert!(second > 0, "an ack lets the reader go on");
        assert!(second as u64 <= CONN_WINDOW + CHUNK as u64, "{second}");

        // The other way: what the agent writes to the peer is acknowledged,
        // in batches of ACK_EVERY bytes.
        out.send(conn, ToPeer::Data(b"hello".to_vec().into())).await;
        let mut hello = [0u8; 5];
        peer_rd.read_exact(&mut hello).await.unwrap();
        assert_eq!(drain(&mut rx).await.1, 0, "5 bytes written owe no ack yet");
        let rest = ACK_EVERY as usize - 5;
        let reading = tokio::spawn(async move {
            let mut buf = vec![0u8; rest];
            peer_rd.read_exact(&mut buf).await.unwrap();
        });
        out.send(conn, ToPeer::Data(vec![2u8; rest].into())).await;
        reading.await.unwrap();
        assert_eq!(drain(&mut rx).await.1, ACK_EVERY);
        out.close(conn);
        relay.await.unwrap();
        writer.abort();
    }

    #[tokio::test]
    async fn without_flow_control_nothing_waits_and_nothing_is_acknowledged() {
        let (tx, mut rx) = mpsc::channel(1024);
        let factory = SocketFactory::start(None).unwrap();
        let out = Outgoing::new(factory, tx, false);
        let (conn, mut peer, relay) = relayed(&out).await;
        let total = 2 * CONN_WINDOW as usize;
        peer.write_all(&vec![1u8; total]).await.unwrap();
        out.send(conn, ToPeer::Data(b"hi".to_vec().into())).await;
        let (data, acked) = drain(&mut rx).await;
        assert_eq!(data, total, "an old client is sent everything");
        assert_eq!(acked, 0, "an old client cannot decode acks");
        out.close(conn);
        relay.await.unwrap();
    }
}
