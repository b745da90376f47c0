//! The listener and the per-connection loop: handshake, then frames in and
//! out until the client leaves, the frame stream breaks, or the agent shuts
//! down (in which case the client gets a `Closing` with the reason).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use mirrord_protocol::{
    codec, AgentCodec, AgentMessage, ClientHello, ClientMessage, CodecError, RemoteError,
    PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::codec::FramedRead;
use tracing::Instrument;

use crate::listener::{Accepted, ClientStream, Listener};
use crate::session::{Session, Shared};
use crate::side_stream;

/// How long a client may take to send its `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued towards one client before its producers wait.
const OUT_QUEUE: usize = 256;
/// How long a closing connection may take to flush its last frames.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Clients connected now, and whether any ever connected (for the idle
/// timeout, which starts counting only after the first client).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub connected: usize,
    pub ever: bool,
}

pub struct Server {
    listener: Listener,
    shared: Arc<Shared>,
    /// `Some(reason)` once the agent is shutting down: the accept loop stops
    /// and every connection sends `Closing { reason }` and ends.
    shutdown: watch::Receiver<Option<String>>,
    activity: watch::Sender<Activity>,
}

impl Server {
    pub fn new(
        listener: Listener,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<Option<String>>,
    ) -> Self {
        let (activity, _) = watch::channel(Activity::default());
        Self {
            listener,
            shared,
            shutdown,
            activity,
        }
    }

    pub fn activity(&self) -> watch::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Accepts clients until shutdown, then waits for every connection to
    /// finish (each is bounded by its flush timeout).
    pub async fn run(self) {
        let mut conns = JoinSet::new();
        let activity = Arc::new(self.activity);
        let mut stop = self.shutdown.clone();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => {
                        activity.send_modify(|a| { a.connected += 1; a.ever = true; });
                        let guard = ActivityGuard(activity.clone());
                        let shared = self.shared.clone();
                        let shutdown = self.shutdown.clone();
                        match accepted {
                            Accepted::Tcp(stream, peer) => {
                                let peer = peer.to_string();
                                let span = tracing::info_span!("client", %peer);
                                conns.spawn(async move {
                                    serve_accepted(stream, peer, shared, shutdown).await;
                                    drop(guard);
                                }.instrument(span));
                            }
                            Accepted::Unix(stream) => {
                                let span = tracing::info_span!("client", peer = "unix");
                                conns.spawn(async move {
                                    serve_accepted(stream, "unix".into(), shared, shutdown).await;
                                    drop(guard);
                                }.instrument(span));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                _ = shutdown_reason(&mut stop) => break,
            }
        }
        drop(self.listener);
        while conns.join_next().await.is_some() {}
    }
}

struct ActivityGuard(Arc<watch::Sender<Activity>>);

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        self.0
            .send_modify(|a| a.connected = a.connected.saturating_sub(1));
    }
}

/// What a new connection asked for in its first frame.
enum Opening {
    /// `Hello`: a session of framed messages.
    Session(ClientHello),
    /// `OpenStream` (1.4): one outgoing TCP connection, unframed.
    Stream(SocketAddr),
}

/// Reads a new connection's first frame, checks it (version, secret) and
/// serves the session or the side stream it opens.
async fn serve_accepted<S: ClientStream>(
    mut stream: S,
    peer: String,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<Option<String>>,
) {
    let Some(opening) = opening(&mut stream, &peer, &shared).await else {
        return;
    };
    match opening {
        Opening::Session(hello) => match stream.into_halves() {
            Ok((reader, writer)) => serve(reader, writer, hello, shared, shutdown).await,
            Err(e) => tracing::warn!(error = %e, "cannot serve a connection"),
        },
        Opening::Stream(remote) => {
            let span = tracing::debug_span!("side_stream", %remote);
            side_stream::serve(stream, remote, &shared, shutdown)
                .instrument(span)
                .await
        }
    }
}

/// The opening of a connection, or `None` when it was refused or left.
async fn opening<S: ClientStream>(stream: &mut S, peer: &str, shared: &Shared) -> Option<Opening> {
    // Exactly one frame: a side stream's bytes follow its opening.
    let first = tokio::time::timeout(HELLO_TIMEOUT, codec::read_one_frame(stream)).await;
    let (secret, opening) = match first {
        Ok(Ok(ClientMessage::Hello(hello))) => {
            if let Err(reason) = PROTOCOL_VERSION.check_compatible(hello.version) {
                return refuse(stream, peer, reason).await;
            }
            (hello.secret.clone(), Opening::Session(hello))
        }
        Ok(Ok(ClientMessage::OpenStream { secret, remote })) => (secret, Opening::Stream(remote)),
        Ok(Ok(other)) => {
            let reason = format!("expected Hello as the first message, got {}", name(&other));
            return refuse(stream, peer, reason).await;
        }
        Ok(Err(CodecError::Closed)) => {
            tracing::debug!(%peer, "client left before Hello");
            return None;
        }
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "broken frame before Hello; closing");
            return None;
        }
        Err(_) => return refuse(stream, peer, "no Hello within 10s".into()).await,
    };
    if let Some(expected) = &shared.secret {
        let given = secret.as_deref().unwrap_or("");
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return refuse(stream, peer, "wrong or missing session secret".into()).await;
        }
    }
    Some(opening)
}

async fn serve<R, W>(
    reader: R,
    writer: W,
    hello: ClientHello,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<Option<String>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut source: FramedRead<R, AgentCodec> = codec::framed_read(reader);
    let mut sink: codec::FrameSink<W, AgentMessage> = codec::framed_write(writer);

    let ack = AgentMessage::HelloAck {
        version: PROTOCOL_VERSION,
        target_pid: shared.target_pid,
    };
    if sink.send(ack).await.is_err() {
        return;
    }
    tracing::info!(client_version = %hello.version, "client connected");

    // One writer task owns the sink; everything else queues frames for it.
    let (out, mut out_rx) = mpsc::channel::<AgentMessage>(OUT_QUEUE);
    let mut writer = tokio::spawn(
        async move {
            // Frames are fed into the sink's buffer and flushed once the
            // queue is empty: a burst of `ConnData` goes out in one write.
            while let Some(msg) = next_frame(&mut sink, &mut out_rx).await {
                let id = match &msg {
                    AgentMessage::Response { id, .. } => Some(*id),
                    _ => None,
                };
                match (sink.feed(msg).await, id) {
                    (Ok(()), _) => {}
                    // An answer too large for one frame was not written at all:
                    // the client still gets an answer for that id.
                    // (bincode's size limit reports it as malformed).
                    (Err(e @ (CodecError::TooLarge(_) | CodecError::Malformed(_))), Some(id)) => {
                        tracing::warn!(id, error = %e, "answer cannot be encoded");
                        let err = RemoteError::new(
                            libc::EOVERFLOW,
                            format!("answer cannot be sent: {e}"),
                        );
                        if sink
                            .feed(AgentMessage::Response {
                                id,
                                result: Err(err),
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    (Err(e), _) => {
                        tracing::debug!(error = %e, "client write failed");
                        return;
                    }
                }
            }
            let _ = sink.close().await;
        }
        .instrument(tracing::Span::current()),
    );

    let mut session = Session::new(shared, out.clone(), hello.version);
    let mut writer_ended = false;
    let closing = loop {
        tokio::select! {
            msg = source.next() => match msg {
                Some(Ok(msg)) => session.handle(msg).await,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "broken frame from client; closing the connection");
                    break None;
                }
                None => break None,
            },
            _ = session.reap() => {}
            _ = &mut writer => {
                writer_ended = true;
                break None;
            }
            // `wait_for` also sees a reason set before this connection
            // subscribed.
            reason = shutdown_reason(&mut shutdown) => break reason,
        }
    };
    let (files, conns) = session.counts();
    // Dropping the session aborts its tasks: handles close, sockets close.
    drop(session);
    if let Some(reason) = closing {
        let _ = out.send(AgentMessage::Closing { reason }).await;
    }
    drop(out);
    if !writer_ended
        && tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    tracing::info!(
        open_files = files,
        open_conns = conns,
        "client disconnected"
    );
}

/// The next queued frame; when none is queued, flushes what was fed so
/// far and waits. `None` once the queue is closed or a flush fails.
async fn next_frame<S>(
    sink: &mut S,
    queue: &mut mpsc::Receiver<AgentMessage>,
) -> Option<AgentMessage>
where
    S: futures::Sink<AgentMessage> + Unpin,
{
    match queue.try_recv() {
        Ok(msg) => Some(msg),
        Err(_) => {
            sink.flush().await.ok()?;
            queue.recv().await
        }
    }
}

/// The shutdown reason, once there is one (`None` if the agent vanished).
async fn shutdown_reason(rx: &mut watch::Receiver<Option<String>>) -> Option<String> {
    let reason = rx.wait_for(Option::is_some).await.ok()?.clone();
    reason
}

/// Answers `Refused` with the reason and closes; always `None`.
async fn refuse<S: ClientStream, T>(stream: &mut S, peer: &str, reason: String) -> Option<T> {
    tracing::warn!(%peer, %reason, "refused a client");
    let _ = codec::write_one_frame(stream, &AgentMessage::Refused { reason }).await;
    let _ = stream.shutdown().await;
    None
}

fn name(msg: &ClientMessage) -> &'static str {
    match msg {
        ClientMessage::Hello(_) => "Hello",
        ClientMessage::Request { .. } => "Request",
        ClientMessage::ConnData { .. } => "ConnData",
        ClientMessage::ConnShutdown { .. } => "ConnShutdown",
        ClientMessage::ConnClose { .. } => "ConnClose",
        ClientMessage::Ping => "Ping",
        ClientMessage::ConnAck { .. } => "ConnAck",
        ClientMessage::OpenStream { .. } => "OpenStream",
    }
}

/// Compares secrets without leaking how many leading bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
