//! One client connection after the handshake: dispatches its messages to
//! files, env, DNS and outgoing connections, and owns every task and
//! resource they create, so dropping the session ends them all.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use mirrord_protocol::{
    AgentMessage, ClientMessage, RemoteError, Request, RequestId, Response, Version, CLOSED_HANDLE,
};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::dns::Resolver;
use crate::handles::{HandleOp, Handles};
use crate::mirror::{self, CopyEvent, Mirrorer};
use crate::netns::SocketFactory;
use crate::outgoing::{Outgoing, ToPeer};
use crate::steal::{SessionId, Stealer, Stolen};
use crate::{env, files};

/// Numbers sessions for the steal subscriptions they own.
static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Requests of one connection that may be in flight at once; the reader
/// waits for a free slot beyond that (bounded memory per client).
const MAX_IN_FLIGHT: usize = 256;

/// What every connection serves from; shared read-only.
pub struct Shared {
    pub target_pid: Option<u32>,
    pub root: Arc<OwnedFd>,
    pub factory: SocketFactory,
    pub resolver: Resolver,
    pub secret: Option<String>,
    /// Every filesystem in the target is local: path operations run inline
    /// (see `fs_kind`), else through `block_in_place`.
    pub inline_paths: bool,
    /// Ports stolen by every session, and the iptables chain.
    pub stealer: Arc<Stealer>,
    /// Ports mirrored by every session, and the capture socket.
    pub mirrorer: Arc<Mirrorer>,
}

pub struct Session {
    shared: Arc<Shared>,
    out: mpsc::Sender<AgentMessage>,
    handles: Arc<Handles>,
    outgoing: Arc<Outgoing>,
    /// Every task of this connection. A `JoinSet` aborts its tasks when
    /// dropped, which is how handles, sockets and pending requests are
    /// released when the connection ends.
    tasks: JoinSet<()>,
    in_flight: Arc<Semaphore>,
    id: SessionId,
    /// The client's protocol version: what it understands.
    peer: Version,
    /// Stolen connections for this session: the sender goes to the
    /// stealer with each subscription.
    stolen_tx: mpsc::UnboundedSender<Stolen>,
    stolen_rx: mpsc::UnboundedReceiver<Stolen>,
    /// Where the capture sends this session's copies (a task of the
    /// session forwards them to the client).
    mirrored: mirror::Deliver,
}

impl Drop for Session {
    fn drop(&mut self) {
        // The client is gone: what it stole goes back to the target now.
        let (stealer, id) = (self.shared.stealer.clone(), self.id);
        let mirrorer = self.shared.mirrorer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                stealer.release_session(id).await;
                mirrorer.release_session(id).await;
            });
        }
    }
}

impl Session {
    /// `peer`: the client's protocol version (1.2+ acknowledges stream
    /// data, 1.3+ is told warnings).
    pub fn new(shared: Arc<Shared>, out: mpsc::Sender<AgentMessage>, peer: Version) -> Self {
        let (stolen_tx, stolen_rx) = mpsc::unbounded_channel();
        let (mirrored, copies) = mirror::copies();
        let mut tasks = JoinSet::new();
        tasks.spawn(forward_copies(copies, out.clone()));
        Self {
            handles: Handles::new(out.clone()),
            outgoing: Outgoing::new(shared.factory.clone(), out.clone(), peer.has_flow_control()),
            peer,
            shared,
            out,
            tasks,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            id: NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            stolen_tx,
            stolen_rx,
            mirrored,
        }
    }

    /// Waits for one of the session's tasks to finish, so finished tasks do
    /// not pile up in the set, or for a stolen connection, which it starts
    /// relaying.
    pub async fn reap(&mut self) {
        tokio::select! {
            Some(joined) = self.tasks.join_next() => {
                if let Err(e) = joined {
                    if e.is_panic() {
                        tracing::error!(error = %e, "request task panicked");
                    }
                }
            }
            Some(stolen) = self.stolen_rx.recv() => self.adopt(stolen),
        }
    }

    /// Announces a stolen connection to the client, then relays it; with an
    /// HTTP filter, serves it request by request instead.
    fn adopt(&mut self, stolen: Stolen) {
        let Stolen {
            stream,
            port,
            peer,
            filter,
        } = stolen;
        tracing::debug!(port, remote = %peer.remote, filtered = filter.is_some(), "stolen connection");
        let (outgoing, out) = (self.outgoing.clone(), self.out.clone());
        let announce = move |conn| AgentMessage::IncomingConn { conn, port, peer };
        match filter {
            None => {
                let (conn, relay) = outgoing.adopt(stream);
                self.tasks.spawn(async move {
                    if out.send(announce(conn)).await.is_ok() {
                        relay.run().await;
                    }
                });
            }
            Some(filter) => {
                let open_local: crate::steal::filter::OpenLocal = Box::new(move || {
                    let (ours, theirs) = tokio::io::duplex(64 * 1024);
                    let (conn, relay) = outgoing.adopt_local(theirs);
                    let out = out.clone();
                    let run = async move {
                        if out.send(announce(conn)).await.is_ok() {
                            relay.run().await;
                        }
                    };
                    (ours, Box::pin(run))
                });
                let factory = self.shared.factory.clone();
                self.tasks.spawn(crate::steal::filter::serve(
                    stream, peer.local, filter, factory, open_local,
                ));
            }
        }
    }

    /// Open handles and connections, for the closing log line.
    pub fn counts(&self) -> (usize, usize) {
        (self.handles.open_count(), self.outgoing.open_count())
    }

    pub async fn handle(&mut self, msg: ClientMessage) {
        match msg {
            ClientMessage::Request { id, request } => {
                let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                    return;
                };
                self.request(id, request, permit).await;
            }
            ClientMessage::ConnData { conn, data } => {
                self.outgoing.send(conn, ToPeer::Data(data)).await
            }
            ClientMessage::ConnShutdown { conn } => {
                self.outgoing.send(conn, ToPeer::Shutdown).await
            }
            ClientMessage::ConnClose { conn } => self.outgoing.close(conn),
            ClientMessage::ConnAck { conn, bytes } => self.outgoing.ack(conn, bytes),
            ClientMessage::Ping => {
                let _ = self.out.send(AgentMessage::Pong).await;
            }
            ClientMessage::Hello(_) => tracing::warn!("a second Hello on a connection is ignored"),
            ClientMessage::OpenStream { .. } => {
                tracing::warn!("OpenStream opens a connection of its own; ignored in a session")
            }
        }
    }

    async fn request(&mut self, id: RequestId, request: Request, permit: OwnedSemaphorePermit) {
        let span = tracing::debug_span!("request", id, kind = kind(&request));
        let (handle, op) = match request {
            Request::Read {
                handle,
                offset,
                len,
            } => (handle, HandleOp::Read { offset, len }),
            Request::Write {
                handle,
                offset,
                data,
            } => (handle, HandleOp::Write { offset, data }),
            Request::Truncate { handle, len } => (handle, HandleOp::Truncate { len }),
            Request::Sync { handle } => (handle, HandleOp::Sync),
            Request::FStat { handle } => (handle, HandleOp::FStat),
            Request::Close { handle } => (handle, HandleOp::Close),
            other => return self.spawn(id, other, permit, span),
        };
        // Queued in arrival order behind earlier requests on the handle.
        self.handles
            .submit(id, handle, op, permit)
            .instrument(span)
            .await;
    }

    /// Runs a request that does not touch an open handle concurrently with
    /// the others.
    fn spawn(
        &mut self,
        id: RequestId,
        request: Request,
        permit: OwnedSemaphorePermit,
        span: tracing::Span,
    ) {
        let shared = self.shared.clone();
        let out = self.out.clone();
        let handles = self.handles.clone();
        let outgoing = self.outgoing.clone();
        let (session, stolen_tx) = (self.id, self.stolen_tx.clone());
        let mirrored = self.mirrored.clone();
        let warnings = self.peer.has_warnings();
        let task = async move {
            let respond = |result| AgentMessage::Response { id, result };
            match request {
                Request::Open {
                    path,
                    flags,
                    mode,
                    read_ahead,
                } => {
                    let root = shared.root.clone();
                    let opened = blocking(shared.inline_paths, move || {
                        files::open(root.as_fd(), &path, flags, mode, read_ahead)
                    })
                    .await;
                    match opened {
                        Ok(o) if !flags.write && o.eof => {
                            // All of it is in the answer: nothing more will
                            // be asked of this file, so it is not kept.
                            let msg = Response::Opened {
                                handle: CLOSED_HANDLE,
                                stat: o.stat,
                                data: o.data,
                                eof: true,
                            };
                            let _ = out.send(respond(Ok(msg))).await;
                        }
                        Ok(o) => {
                            let (handle, worker) = handles.insert(o.file);
                            tracing::debug!(handle, "opened");
                            let msg = Response::Opened {
                                handle,
                                stat: o.stat,
                                data: o.data,
                                eof: o.eof,
                            };
                            if out.send(respond(Ok(msg))).await.is_ok() {
                                drop(permit);
                                worker.run().await;
                            }
                        }
                        Err(e) => {
                            let _ = out.send(respond(Err(e))).await;
                        }
                    }
                }
                Request::Connect { protocol, remote } => {
                    match outgoing.connect(protocol, remote).await {
                        Ok((conn, local, relay)) => {
                            tracing::debug!(conn, %local, "connected");
                            if out
                                .send(respond(Ok(Response::Connected { conn, local })))
                                .await
                                .is_ok()
                            {
                                drop(permit);
                                relay.run().await;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "connect failed");
                            let _ = out.send(respond(Err(e))).await;
                        }
                    }
                }
                Request::Subscribe(subscription) => {
                    let result =
                        subscribe(&shared, session, subscription, stolen_tx, mirrored).await;
                    let result = match result {
                        Ok(Some(message)) => {
                            tracing::warn!("{message}");
                            if warnings {
                                let _ = out.send(AgentMessage::Warning { message }).await;
                            }
                            Ok(Response::Done)
                        }
                        Ok(None) => Ok(Response::Done),
                        Err(e) => Err(e),
                    };
                    let _ = out.send(respond(result)).await;
                }
                Request::Unsubscribe { port } => {
                    shared.stealer.unsubscribe(session, port).await;
                    shared.mirrorer.unsubscribe(session, port).await;
                    let _ = out.send(respond(Ok(Response::Done))).await;
                }
                Request::Resolve { host, family } => {
                    let result = match shared.resolver.resolve(&host, family).await {
                        Ok(r) => Ok(Response::Addresses {
                            canonical: r.canonical,
                            addrs: r.addrs,
                        }),
                        Err(e) => {
                            tracing::debug!(error = %e, "resolve failed");
                            Err(e.to_remote())
                        }
                    };
                    let _ = out.send(respond(result)).await;
                }
                other => {
                    let inline = shared.inline_paths;
                    let result = blocking(inline, move || path_request(&shared, other)).await;
                    let _ = out.send(respond(result)).await;
                }
            }
        };
        self.tasks.spawn(task.instrument(span));
    }
}

/// Tells the client of the session's mirrored connections, in the order
/// the capture saw them: an `IncomingConn`, its bytes, then end of file.
/// What the program answers on one is dropped (the client's `ConnData`
/// for a copy's id finds no connection) and its `ConnClose` is ignored.
async fn forward_copies(mut copies: mirror::Copies, out: mpsc::Sender<AgentMessage>) {
    while let Some(copy) = copies.recv().await {
        let message = match copy {
            CopyEvent::Opened { conn, port, peer } => {
                AgentMessage::IncomingConn { conn, port, peer }
            }
            CopyEvent::Data { conn, data } => AgentMessage::ConnData {
                conn,
                data: data.into(),
            },
            CopyEvent::End { conn } => AgentMessage::ConnEof { conn },
        };
        if out.send(message).await.is_err() {
            return;
        }
    }
}

/// Starts delivering a port's connections to `session`; `Ok(Some(..))`
/// carries a warning for the client.
async fn subscribe(
    shared: &Shared,
    session: SessionId,
    subscription: mirrord_protocol::Subscription,
    deliver: mpsc::UnboundedSender<Stolen>,
    mirrored: mirror::Deliver,
) -> Result<Option<String>, RemoteError> {
    use mirrord_protocol::IncomingMode;
    let port = subscription.port;
    match subscription.mode {
        // Targetless, there is no target's traffic to copy.
        IncomingMode::Mirror if shared.target_pid.is_none() => Err(RemoteError::new(
            libc::ENOTSUP,
            "a targetless session has no incoming traffic to mirror",
        )),
        IncomingMode::Mirror => shared
            .mirrorer
            .subscribe(session, port, mirrored)
            .await
            .map(|()| None),
        // Targetless, the agent's own namespace is this machine's: never
        // redirect its ports.
        IncomingMode::Steal if shared.target_pid.is_none() => Err(RemoteError::new(
            libc::ENOTSUP,
            "a targetless session has no incoming traffic to steal",
        )),
        IncomingMode::Steal => {
            let filter = match &subscription.http_filter {
                Some(filter) => Some(Arc::new(
                    crate::steal::filter::HttpFilter::new(filter)
                        .map_err(|e| RemoteError::new(libc::EINVAL, e))?,
                )),
                None => None,
            };
            shared
                .stealer
                .subscribe(session, port, subscription.take_over, filter, deliver)
                .await
        }
    }
}

/// The requests answered by one blocking call.
fn path_request(shared: &Shared, request: Request) -> std::io::Result<Response> {
    let root = shared.root.as_fd();
    let done = |r: std::io::Result<()>| r.map(|()| Response::Done);
    match request {
        Request::Stat { path, follow } => files::stat(root, &path, follow).map(Response::Stat),
        Request::Access { path, mode } => done(files::access(root, &path, mode)),
        Request::ReadLink { path } => files::readlink(root, &path).map(Response::Path),
        Request::ReadDir { path } => files::read_dir(root, &path).map(Response::DirEntries),
        Request::Mkdir { path, mode } => done(files::mkdir(root, &path, mode)),
        Request::Unlink { path } => done(files::unlink(root, &path)),
        Request::Rmdir { path } => done(files::rmdir(root, &path)),
        Request::Rename { from, to } => done(files::rename(root, &from, &to)),
        Request::GetEnv => match shared.target_pid {
            Some(pid) => env::read_env(pid).map(Response::Env),
            None => Ok(Response::Env(Vec::new())),
        },
        other => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{} is not a path request", kind(&other)),
        )),
    }
}

/// Runs a file operation: inline when it cannot wait on a network or a
/// server (`fs_kind`), else on this worker thread after handing the
/// worker's other tasks to the other worker (`block_in_place`).
///
/// A round trip through the blocking pool costs two thread wake-ups and
/// `block_in_place` one; on a small VM those wake-ups are most of a remote
/// `open`'s latency. A slow operation (NFS, FUSE) still cannot stall the
/// other connections and requests.
async fn blocking<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, RemoteError> {
    off_worker(inline, f)
        .await
        .map_err(|e| RemoteError::from_io(&e))
}

/// Runs `f` inline, or where it cannot stall the runtime: in place on a
/// multi-threaded runtime, on the blocking pool on a single-threaded one.
pub async fn off_worker<T: Send + 'static>(
    inline: bool,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if inline {
        return f();
    }
    match Handle::current().runtime_flavor() {
        RuntimeFlavor::CurrentThread => match tokio::task::spawn_blocking(f).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(format!("file operation failed: {e}"))),
        },
        _ => tokio::task::block_in_place(f),
    }
}

fn kind(r: &Request) -> &'static str {
    match r {
        Request::Open { .. } => "open",
        Request::Read { .. } => "read",
        Request::Write { .. } => "write",
        Request::Truncate { .. } => "truncate",
        Request::Sync { .. } => "sync",
        Request::Close { .. } => "close",
        Request::Stat { .. } => "stat",
        Request::FStat { .. } => "fstat",
        Request::Access { .. } => "access",
        Request::ReadLink { .. } => "readlink",
        Request::ReadDir { .. } => "readdir",
        Request::Mkdir { .. } => "mkdir",
        Request::Unlink { .. } => "unlink",
        Request::Rmdir { .. } => "rmdir",
        Request::Rename { .. } => "rename",
        Request::GetEnv => "getenv",
        Request::Resolve { .. } => "resolve",
        Request::Connect { .. } => "connect",
        Request::Subscribe(_) => "subscribe",
        Request::Unsubscribe { .. } => "unsubscribe",
    }
}
