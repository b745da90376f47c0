//! The intproxy's one connection to the agent: starting a local agent
//! process, the handshake, and the task that owns the stream.
//!
//! Every request to the agent goes through [`AgentClient`]; its commands
//! are queued on one unbounded channel, so the order in which a layer's
//! requests arrive is the order in which the agent sees them (pipelined
//! writes to one file rely on it). When the agent goes away, every waiting
//! and later request fails at once with an error that says why.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mirrord_protocol::{
    codec, AgentMessage, ClientCodec, ClientHello, ClientMessage, ConnId, Endpoint, IncomingPeer,
    NetProtocol, RemoteError, Request, RequestId, Response, PROTOCOL_VERSION,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

use super::side_stream::SideStreams;
use crate::local_socket;

/// How many of the agent's last stderr lines are kept to explain its death.
const STDERR_TAIL: usize = 40;

/// What happens on an outgoing connection, as seen from the agent.
#[derive(Debug)]
pub enum ConnEvent {
    Data(mirrord_protocol::Payload),
    /// The agent wrote this many more of our bytes to the peer.
    Ack(u64),
    Eof,
    Closed(Option<RemoteError>),
}

pub struct Connected {
    pub conn: ConnId,
    pub local: SocketAddr,
    pub events: mpsc::UnboundedReceiver<ConnEvent>,
}

/// A connection the agent stole for us (`AgentMessage::IncomingConn`).
pub struct IncomingConnection {
    pub conn: ConnId,
    pub port: u16,
    pub peer: IncomingPeer,
    pub events: mpsc::UnboundedReceiver<ConnEvent>,
}

/// Where stolen connections arrive; taken once by the incoming service.
type IncomingSlot = Arc<Mutex<Option<mpsc::UnboundedReceiver<IncomingConnection>>>>;

enum Command {
    Request {
        request: Request,
        reply: oneshot::Sender<Result<Response, RemoteError>>,
    },
    Connect {
        protocol: NetProtocol,
        remote: SocketAddr,
        reply: oneshot::Sender<Result<Connected, RemoteError>>,
    },
    Send(ClientMessage),
}

/// A cheap, cloneable handle on the agent connection.
#[derive(Clone)]
pub struct AgentClient {
    commands: mpsc::UnboundedSender<Command>,
    lost: Arc<Mutex<Option<String>>>,
    /// Set when the intproxy stops the agent itself: its goodbye is then
    /// expected and not worth a warning.
    stopping: Arc<AtomicBool>,
    incoming: IncomingSlot,
    /// The agent acknowledges stream data and expects acks (1.2+).
    flow_control: bool,
    /// How to open side streams, when the agent takes them (1.4+) and is
    /// reached directly (not through a port-forward).
    side_streams: Option<Arc<SideStreams>>,
}

impl AgentClient {
    /// A client with no agent behind it, and what it would send: for tests
    /// of the parts that talk to the agent.
    #[cfg(test)]
    pub fn detached() -> (AgentClient, Sent) {
        let (commands, rx) = mpsc::unbounded_channel();
        let client = AgentClient {
            commands,
            lost: Arc::default(),
            stopping: Arc::default(),
            incoming: Arc::default(),
            flow_control: true,
            side_streams: None,
        };
        (client, Sent(rx))
    }

    /// The same client, opening side streams with `side_streams`.
    #[cfg(test)]
    pub fn with_side_streams(mut self, side_streams: SideStreams) -> AgentClient {
        self.side_streams = Some(Arc::new(side_streams));
        self
    }

    /// Queues a request now (keeping arrival order) and returns its answer
    /// as a future.
    pub fn request(
        &self,
        request: Request,
    ) -> impl std::future::Future<Output = Result<Response, RemoteError>> {
        let (reply, rx) = oneshot::channel();
        let queued = self.commands.send(Command::Request { request, reply });
        let lost = self.lost_error();
        async move {
            if queued.is_err() {
                return Err(lost);
            }
            rx.await.unwrap_or(Err(lost))
        }
    }

    pub async fn connect(
        &self,
        protocol: NetProtocol,
        remote: SocketAddr,
    ) -> Result<Connected, RemoteError> {
        let (reply, rx) = oneshot::channel();
        let lost = self.lost_error();
        if self
            .commands
            .send(Command::Connect {
                protocol,
                remote,
                reply,
            })
            .is_err()
        {
            return Err(lost);
        }
        rx.await.unwrap_or(Err(lost))
    }

    /// Sends connection traffic (data, shutdown, close).
    pub fn send(&self, msg: ClientMessage) {
        let _ = self.commands.send(Command::Send(msg));
    }

    /// Whether stream connections are flow-controlled: read at most
    /// [`mirrord_protocol::CONN_WINDOW`] unacknowledged bytes ahead, and
    /// acknowledge what was written.
    pub fn flow_control(&self) -> bool {
        self.flow_control
    }

    /// Side streams for outgoing TCP connections, if the agent takes them.
    pub fn side_streams(&self) -> Option<&SideStreams> {
        self.side_streams.as_deref()
    }

    /// Set it to mark a coming end of the connection as expected (the
    /// intproxy is stopping the agent, or nothing is connected any more).
    pub fn stopping_flag(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// The stolen connections the agent delivers; `None` after the first call.
    pub fn take_incoming(&self) -> Option<mpsc::UnboundedReceiver<IncomingConnection>> {
        self.incoming.lock().ok().and_then(|mut slot| slot.take())
    }

    /// Why the agent is gone, if it is.
    pub fn lost_reason(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }

    fn lost_error(&self) -> RemoteError {
        lost_error(self.lost_reason().as_deref())
    }
}

fn lost_error(reason: Option<&str>) -> RemoteError {
    RemoteError::new(
        libc::EIO,
        format!(
            "the mirrord agent is gone: {}",
            reason.unwrap_or("connection closed")
        ),
    )
}

/// What a [`AgentClient::detached`] client sent.
#[cfg(test)]
pub struct Sent(mpsc::UnboundedReceiver<Command>);

#[cfg(test)]
impl Sent {
    /// The next request sent, if any (its answer never comes while this
    /// value lives).
    pub fn try_recv_request(&mut self) -> Option<Request> {
        while let Ok(command) = self.0.try_recv() {
            if let Command::Request { request, reply } = command {
                std::mem::forget(reply);
                return Some(request);
            }
        }
        None
    }

    /// Polls `take` every 10 ms until it finds something or `within` has
    /// passed: what a task running meanwhile sent.
    pub async fn eventually<T>(
        &mut self,
        within: Duration,
        mut take: impl FnMut(&mut Sent) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(found) = take(self) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The next framed connect asked for, if any.
    pub fn try_recv_connect(&mut self) -> Option<(NetProtocol, SocketAddr)> {
        while let Ok(command) = self.0.try_recv() {
            if let Command::Connect {
                protocol,
                remote,
                reply,
            } = command
            {
                std::mem::forget(reply);
                return Some((protocol, remote));
            }
        }
        None
    }

    /// The next connection message sent, if any.
    pub fn try_recv_message(&mut self) -> Option<ClientMessage> {
        while let Ok(command) = self.0.try_recv() {
            if let Command::Send(msg) = command {
                return Some(msg);
            }
        }
        None
    }
}

/// A local agent process and what it last said on stderr.
pub struct AgentProcess {
    child: Child,
    /// Kept open while we live: the agent exits when it closes
    /// (`--stdin-lifeline`), so even a `kill -9` of the intproxy stops it.
    _lifeline: Option<ChildStdin>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl AgentProcess {
    /// Starts `mirrord-agent` on this machine and waits for its readiness line.
    pub async fn spawn(
        path: &std::path::Path,
        target_pid: Option<u32>,
        log_level: &str,
        startup_timeout: Duration,
    ) -> anyhow::Result<(Self, Endpoint)> {
        let listen = Endpoint::Unix(local_socket::unique_name("agent")).to_string();
        let mut cmd = tokio::process::Command::new(path);
        cmd.args([
            "--listen",
            &listen,
            "--stdin-lifeline",
            "--log-level",
            log_level,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
        if let Some(pid) = target_pid {
            cmd.args(["--target-pid", &pid.to_string()]);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start the agent {}: {e}", path.display()))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(collect_stderr(stderr, stderr_tail.clone()));
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("agent stdout missing"))?;
        let mut process = AgentProcess {
            _lifeline: child.stdin.take(),
            child,
            stderr_tail,
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(startup_timeout, lines.next_line()).await;
        let line = match ready {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                // Let the stderr reader catch the agent's last words.
                let _ = tokio::time::timeout(Duration::from_secs(2), process.child.wait()).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                anyhow::bail!(
                    "the agent exited before it was ready{}",
                    process.last_words()
                );
            }
            Err(_) => anyhow::bail!(
                "the agent was not ready within {} s (agent.startup_timeout){}",
                startup_timeout.as_secs(),
                process.last_words()
            ),
        };
        let addr = line
            .strip_prefix("mirrord-agent listening on ")
            .and_then(|a| a.trim().parse::<Endpoint>().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected first line from the agent: {line:?}"))?;
        Ok((process, addr))
    }

    /// The agent's last stderr lines, formatted to follow an error message.
    pub fn last_words(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default();
        if tail.is_empty() {
            String::new()
        } else {
            let lines: Vec<String> = tail.into_iter().collect();
            format!("; agent said:\n  {}", lines.join("\n  "))
        }
    }

    /// Stops the agent: SIGTERM, then SIGKILL after a second.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        self._lifeline = None;
        if tokio::time::timeout(Duration::from_secs(1), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn collect_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        debug!(target: "agent", "{line}");
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

/// Connects to the agent (`unix:@NAME` or `IP:PORT`), does the handshake,
/// and starts the task that owns the connection. Returns the client and
/// the agent's target PID.
pub async fn connect(
    addr: &Endpoint,
    secret: Option<String>,
) -> anyhow::Result<(AgentClient, Option<u32>)> {
    let failed = |e: std::io::Error| anyhow::anyhow!("cannot connect to the agent at {addr}: {e}");
    let side_streams = SideStreams {
        endpoint: addr.clone(),
        secret: secret.clone(),
    };
    match addr {
        Endpoint::Unix(name) => {
            let stream = local_socket::connect_abstract(name).map_err(failed)?;
            let (reader, writer) = local_socket::split(stream)?;
            start(reader, writer, secret, Some(side_streams)).await
        }
        Endpoint::Tcp(addr) => {
            let stream = tokio::net::TcpStream::connect(addr).await.map_err(failed)?;
            stream.set_nodelay(true)?;
            let (reader, writer) = stream.into_split();
            start(reader, writer, secret, Some(side_streams)).await
        }
    }
}

/// As [`connect`], over an established stream (a port-forward).
pub async fn connect_stream<S>(
    stream: S,
    secret: Option<String>,
) -> anyhow::Result<(AgentClient, Option<u32>)>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    start(reader, writer, secret, None).await
}

async fn start<R, W>(
    reader: R,
    writer: W,
    secret: Option<String>,
    side_streams: Option<SideStreams>,
) -> anyhow::Result<(AgentClient, Option<u32>)>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut stream: FramedRead<R, ClientCodec> = codec::framed_read(reader);
    let mut sink: codec::FrameSink<W, ClientMessage> = codec::framed_write(writer);
    sink.send(ClientMessage::Hello(ClientHello {
        version: PROTOCOL_VERSION,
        secret,
    }))
    .await?;
    let (target_pid, agent_version) = match stream.next().await {
        Some(Ok(AgentMessage::HelloAck {
            version,
            target_pid,
        })) => {
            PROTOCOL_VERSION
                .check_compatible(version)
                .map_err(anyhow::Error::msg)?;
            (target_pid, version)
        }
        Some(Ok(AgentMessage::Refused { reason })) => {
            anyhow::bail!("the agent refused us: {reason}")
        }
        Some(Ok(other)) => anyhow::bail!("unexpected first message from the agent: {other:?}"),
        Some(Err(e)) => anyhow::bail!("agent handshake failed: {e}"),
        None => anyhow::bail!("the agent closed the connection during the handshake"),
    };
    let (commands, rx) = mpsc::unbounded_channel();
    let lost = Arc::new(Mutex::new(None));
    let stopping = Arc::new(AtomicBool::new(false));
    let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(
        stream,
        sink,
        rx,
        incoming_tx,
        lost.clone(),
        stopping.clone(),
    ));
    Ok((
        AgentClient {
            commands,
            lost,
            stopping,
            incoming: Arc::new(Mutex::new(Some(incoming_rx))),
            flow_control: agent_version.has_flow_control(),
            side_streams: side_streams
                .filter(|_| agent_version.has_side_streams())
                .map(Arc::new),
        },
        target_pid,
    ))
}

enum Pending {
    Request(oneshot::Sender<Result<Response, RemoteError>>),
    Connect(oneshot::Sender<Result<Connected, RemoteError>>),
}

/// Owns the agent stream until it ends.
async fn run<R, W>(
    mut stream: FramedRead<R, ClientCodec>,
    mut sink: codec::FrameSink<W, ClientMessage>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::UnboundedSender<IncomingConnection>,
    lost: Arc<Mutex<Option<String>>>,
    stopping: Arc<AtomicBool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Writing has its own task: while a write waits for the agent to read,
    // this loop keeps reading, or the two sides could each wait for the
    // other (an echo stream in both directions fills both buffers).
    let (to_writer, mut outbox) = mpsc::unbounded_channel::<ClientMessage>();
    let mut writer = tokio::spawn(async move {
        match super::write_queued(&mut sink, &mut outbox).await {
            Ok(()) => "the intproxy is shutting down".to_owned(),
            Err(e) => format!("cannot write to the agent: {e}"),
        }
    });
    let mut next_id: RequestId = 1;
    let mut pending: HashMap<RequestId, Pending> = HashMap::new();
    let mut conns: HashMap<ConnId, mpsc::UnboundedSender<ConnEvent>> = HashMap::new();
    let mut closing_reason: Option<String> = None;
    let reason = loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { break "the intproxy is shutting down".to_owned() };
                let (msg, waiter) = match command {
                    Command::Request { request, reply } => {
                        (ClientMessage::Request { id: next_id, request }, Some(Pending::Request(reply)))
                    }
                    Command::Connect { protocol, remote, reply } => (
                        ClientMessage::Request { id: next_id, request: Request::Connect { protocol, remote } },
                        Some(Pending::Connect(reply)),
                    ),
                    Command::Send(msg) => (msg, None),
                };
                if let Some(waiter) = waiter {
                    pending.insert(next_id, waiter);
                    next_id += 1;
                }
                if to_writer.send(msg).is_err() {
                    break "the agent connection's writer stopped".to_owned();
                }
            }
            ended = &mut writer => break ended.unwrap_or_else(|e| format!("the writer failed: {e}")),
            msg = stream.next() => match msg {
                Some(Ok(AgentMessage::IncomingConn { conn, port, peer })) => {
                    let (tx, events) = mpsc::unbounded_channel();
                    conns.insert(conn, tx);
                    if incoming.send(IncomingConnection { conn, port, peer, events }).is_err() {
                        conns.remove(&conn);
                        let _ = to_writer.send(ClientMessage::ConnClose { conn });
                    }
                }
                Some(Ok(msg)) => dispatch(msg, &mut pending, &mut conns, &mut closing_reason),
                Some(Err(e)) => break format!("broken frame from the agent: {e}"),
                None => break closing_reason.clone().unwrap_or_else(|| "the agent closed the connection".to_owned()),
            }
        }
    };
    writer.abort();
    if stopping.load(Ordering::Relaxed) {
        info!("agent connection ended: {reason}");
    } else {
        warn!("the agent is gone ({reason}): remote calls now fail");
    }
    if let Ok(mut lost) = lost.lock() {
        *lost = Some(reason.clone());
    }
    let error = lost_error(Some(&reason));
    for (_, waiter) in pending {
        match waiter {
            Pending::Request(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
            Pending::Connect(reply) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
    for (_, events) in conns {
        let _ = events.send(ConnEvent::Closed(Some(error.clone())));
    }
    // Later commands find the channel closed and fail with `lost`.
}

fn dispatch(
    msg: AgentMessage,
    pending: &mut HashMap<RequestId, Pending>,
    conns: &mut HashMap<ConnId, mpsc::UnboundedSender<ConnEvent>>,
    closing_reason: &mut Option<String>,
) {
    match msg {
        AgentMessage::Response { id, result } => match pending.remove(&id) {
            Some(Pending::Request(reply)) => {
                let _ = reply.send(result);
            }
            Some(Pending::Connect(reply)) => {
                let answer = match result {
                    Ok(Response::Connected { conn, local }) => {
                        let (tx, events) = mpsc::unbounded_channel();
                        conns.insert(conn, tx);
                        Ok(Connected {
                            conn,
                            local,
                            events,
                        })
                    }
                    Ok(other) => Err(RemoteError::new(
                        libc::EIO,
                        format!("the agent answered a connect with {other:?}"),
                    )),
                    Err(e) => Err(e),
                };
                let _ = reply.send(answer);
            }
            None => warn!(id, "answer to an unknown request"),
        },
        AgentMessage::ConnData { conn, data } => {
            if let Some(tx) = conns.get(&conn) {
                let _ = tx.send(ConnEvent::Data(data));
            }
        }
        AgentMessage::ConnEof { conn } => {
            if let Some(tx) = conns.get(&conn) {
                let _ = tx.send(ConnEvent::Eof);
            }
        }
        AgentMessage::ConnAck { conn, bytes } => {
            if let Some(tx) = conns.get(&conn) {
                let _ = tx.send(ConnEvent::Ack(bytes));
            }
        }
        AgentMessage::ConnClosed { conn, error } => {
            if let Some(tx) = conns.remove(&conn) {
                let _ = tx.send(ConnEvent::Closed(error));
            }
        }
        AgentMessage::Closing { reason } => {
            info!("the agent is closing: {reason}");
            *closing_reason = Some(reason);
        }
        AgentMessage::Warning { message } => warn!("the agent says: {message}"),
        AgentMessage::Pong => {}
        AgentMessage::HelloAck { .. }
        | AgentMessage::Refused { .. }
        | AgentMessage::StreamOpened { .. } => {
            warn!("unexpected handshake message from the agent")
        }
        AgentMessage::IncomingConn { conn, .. } => {
            warn!(conn, "an incoming connection reached the generic dispatch")
        }
    }
}
