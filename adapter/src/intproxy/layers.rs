//! Serving the layers: one task per layer connection, the handshake, and
//! who holds which remote file.
//!
//! A forked child shares its parent's open files, so a remote handle is
//! closed on the agent only when the last layer holding it closes it or
//! goes away.

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use mirrord_protocol::{
    Handle, LayerHello, LayerId, LayerMessage, LayerRequest, LayerResponse, ProxyCodec,
    ProxyMessage, Request, RequestId, Response, PROTOCOL_VERSION,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, info, warn, Instrument};

use super::agent::AgentClient;
use super::incoming::Incoming;
use super::outgoing;
use crate::local_socket;
use crate::syscall::layered::Layered;

/// State shared by every layer connection.
pub struct Layers {
    agent: AgentClient,
    /// The programs' listeners of target ports and the connections delivered to them.
    incoming: Arc<Incoming>,
    next_id: AtomicU64,
    /// Handles per layer; a std mutex because it is never held across an await.
    owners: Mutex<HashMap<LayerId, HashSet<Handle>>>,
    /// UDP relays per layer (a forked child holds its parent's too); a relay
    /// stops when its last holder is gone. A std mutex, never held across
    /// an await.
    relays: Mutex<HashMap<LayerId, Vec<Arc<outgoing::UdpRelay>>>>,
    /// How many layers are connected, watched by the lifetime logic.
    count: watch::Sender<usize>,
    /// The connected processes, for the seccomp supervisors: a process
    /// under a filter whose layer is connected is served by its layer.
    layered: Arc<Layered>,
}

impl Layers {
    pub fn new(agent: AgentClient) -> (Arc<Self>, watch::Receiver<usize>) {
        let (count, watcher) = watch::channel(0);
        let layers = Layers {
            incoming: Incoming::start(agent.clone()),
            agent,
            next_id: AtomicU64::new(1),
            owners: Mutex::new(HashMap::new()),
            relays: Mutex::new(HashMap::new()),
            count,
            layered: Arc::default(),
        };
        (Arc::new(layers), watcher)
    }

    /// Serves one layer connection until it closes.
    pub async fn serve(self: Arc<Self>, stream: UnixStream) {
        // The process at the other end, as the kernel names it, and a copy
        // of our end to tell when it closes (see `Layered`).
        let peer = stream.peer_cred().ok().and_then(|c| c.pid());
        let peer =
            peer.and_then(|pid| Some((pid as u32, stream.as_fd().try_clone_to_owned().ok()?)));
        let (reader, writer) = match local_socket::split(stream) {
            Ok(halves) => halves,
            Err(e) => return warn!("cannot serve a layer connection: {e}"),
        };
        let mut source = FramedRead::new(reader, ProxyCodec::default());
        let mut sink = FramedWrite::new(writer, ProxyCodec::default());
        let hello = match source.next().await {
            Some(Ok(LayerMessage::Hello(hello))) => hello,
            other => {
                warn!("a connection did not start with a layer hello: {other:?}");
                return;
            }
        };
        if let Err(reason) = PROTOCOL_VERSION.check_compatible(hello.version) {
            warn!(pid = hello.pid, "{reason}");
            let _ = sink.send(ProxyMessage::Refused { reason }).await;
            return;
        }
        let layer_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("layer", id = layer_id, pid = hello.pid, process = %hello.process_name);
        self.clone()
            .serve_layer(source, sink, hello, layer_id, peer)
            .instrument(span)
            .await;
    }

    async fn serve_layer(
        self: Arc<Self>,
        mut stream: FramedRead<local_socket::ReadHalf, ProxyCodec>,
        mut sink: FramedWrite<local_socket::WriteHalf, ProxyCodec>,
        hello: LayerHello,
        layer_id: LayerId,
        peer: Option<(u32, OwnedFd)>,
    ) {
        // Counted from here until this function ends in any way (return,
        // panic, cancellation): the intproxy's lifetime depends on it.
        let _connected = Connected::new(self.clone(), layer_id, hello.parent);
        info!(parent = ?hello.parent, "layer connected");
        // Registered before the hello is acknowledged, so before the
        // layer's first hooked call; until this function ends.
        let _registered = peer.and_then(|(pid, end)| {
            self.layered
                .register(pid, end.as_fd())
                .map_err(|e| warn!(pid, "cannot register the layer's process: {e}"))
                .ok()
        });
        let (replies, mut outbox) = mpsc::unbounded_channel::<ProxyMessage>();
        let _ = replies.send(ProxyMessage::HelloAck {
            version: PROTOCOL_VERSION,
            layer_id,
        });
        let writer = tokio::spawn(async move {
            let _ = super::write_queued(&mut sink, &mut outbox).await;
        });
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(LayerMessage::Request { id, request }) => {
                    self.handle(layer_id, id, request, &replies);
                }
                Ok(LayerMessage::Hello(_)) => warn!("second hello ignored"),
                Err(mirrord_protocol::CodecError::Io(e))
                    if e.kind() == std::io::ErrorKind::ConnectionReset =>
                {
                    // The process exited with answers still unread.
                    break;
                }
                Err(e) => {
                    warn!("broken frame from the layer: {e}");
                    break;
                }
            }
        }
        // The layer is gone: answers still on their way have nobody to go to.
        writer.abort();
        info!("layer disconnected");
    }

    /// Starts one request. Requests for the agent are queued before this
    /// returns, so they reach it in the order the layer sent them.
    fn handle(
        self: &Arc<Self>,
        layer: LayerId,
        id: RequestId,
        request: LayerRequest,
        replies: &mpsc::UnboundedSender<ProxyMessage>,
    ) {
        let replies = replies.clone();
        let span = tracing::debug_span!("request", id);
        match request {
            LayerRequest::Remote(Request::Close { handle }) => {
                if self.release(layer, handle) {
                    let answer = self.agent.request(Request::Close { handle });
                    tokio::spawn(
                        async move {
                            let result = answer.await.map(LayerResponse::Remote);
                            let _ = replies.send(ProxyMessage::Response { id, result });
                        }
                        .instrument(span),
                    );
                } else {
                    let _ = replies.send(ProxyMessage::Response {
                        id,
                        result: Ok(LayerResponse::Remote(Response::Done)),
                    });
                }
            }
            LayerRequest::Remote(request) => {
                debug!(parent: &span, ?request, "to agent");
                let answer = self.agent.request(request);
                let layers = self.clone();
                tokio::spawn(
                    async move {
                        let result = answer.await;
                        if let Ok(Response::Opened { handle, .. }) = &result {
                            layers.own(layer, *handle);
                        }
                        let _ = replies.send(ProxyMessage::Response {
                            id,
                            result: result.map(LayerResponse::Remote),
                        });
                    }
                    .instrument(span),
                );
            }
            LayerRequest::ConnectOutgoing { protocol, remote } => {
                let layers = self.clone();
                tokio::spawn(
                    async move {
                        let result = match outgoing::connect(&layers.agent, protocol, remote).await
                        {
                            Ok((response, relay)) => {
                                if let Some(relay) = relay {
                                    layers.hold_relay(layer, relay);
                                }
                                Ok(response)
                            }
                            Err(e) => Err(e),
                        };
                        let _ = replies.send(ProxyMessage::Response { id, result });
                    }
                    .instrument(span),
                );
            }
            LayerRequest::Listen { subscription, app } => {
                let layers = self.clone();
                tokio::spawn(
                    async move {
                        let result = layers.incoming.listen(layer, subscription, app).await;
                        let _ = replies.send(ProxyMessage::Response { id, result });
                    }
                    .instrument(span),
                );
            }
            LayerRequest::Unlisten { port } => {
                let layers = self.clone();
                tokio::spawn(
                    async move {
                        let result = layers.incoming.unlisten(layer, port).await;
                        let _ = replies.send(ProxyMessage::Response { id, result });
                    }
                    .instrument(span),
                );
            }
            LayerRequest::IncomingPeer { peer } => {
                let layers = self.clone();
                tokio::spawn(
                    async move {
                        let result = Ok(layers.incoming.peer(peer).await);
                        let _ = replies.send(ProxyMessage::Response { id, result });
                    }
                    .instrument(span),
                );
            }
        }
    }

    /// What a seccomp supervisor subscribes its programs' listeners with:
    /// an id of its own, as a layer has.
    pub fn subscriber(&self) -> (Arc<Incoming>, LayerId) {
        (
            self.incoming.clone(),
            self.next_id.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// The connected processes, for a seccomp supervisor.
    pub fn layered(&self) -> Arc<Layered> {
        self.layered.clone()
    }

    /// Counts as a connected layer until the value is dropped (a seccomp
    /// supervisor, while processes use its filter).
    pub fn hold(self: &Arc<Self>) -> Held {
        self.count.send_modify(|c| *c += 1);
        Held(self.clone())
    }

    fn own(&self, layer: LayerId, handle: Handle) {
        if let Ok(mut owners) = self.owners.lock() {
            owners.entry(layer).or_default().insert(handle);
        }
    }

    /// A forked child holds what its parent holds.
    fn adopt(&self, layer: LayerId, parent: Option<LayerId>) {
        if let Ok(mut owners) = self.owners.lock() {
            let inherited = parent
                .and_then(|p| owners.get(&p).cloned())
                .unwrap_or_default();
            owners.insert(layer, inherited);
        }
        if let Ok(mut relays) = self.relays.lock() {
            let inherited = parent
                .and_then(|p| relays.get(&p).cloned())
                .unwrap_or_default();
            relays.insert(layer, inherited);
        }
    }

    fn hold_relay(&self, layer: LayerId, relay: outgoing::UdpRelay) {
        if let Ok(mut relays) = self.relays.lock() {
            relays.entry(layer).or_default().push(Arc::new(relay));
        }
    }

    /// Drops `layer`'s hold on `handle`; true when nobody holds it any more.
    fn release(&self, layer: LayerId, handle: Handle) -> bool {
        let Ok(mut owners) = self.owners.lock() else {
            return true;
        };
        if let Some(held) = owners.get_mut(&layer) {
            held.remove(&handle);
        }
        !owners.values().any(|held| held.contains(&handle))
    }

    /// The layer is gone: close what only it held.
    fn release_all(&self, layer: LayerId) {
        self.incoming.layer_gone(layer);
        let relays = self.relays.lock().ok().and_then(|mut r| r.remove(&layer));
        drop(relays);
        let orphans: Vec<Handle> = {
            let Ok(mut owners) = self.owners.lock() else {
                return;
            };
            let held = owners.remove(&layer).unwrap_or_default();
            held.into_iter()
                .filter(|h| !owners.values().any(|other| other.contains(h)))
                .collect()
        };
        for handle in orphans {
            drop(self.agent.request(Request::Close { handle }));
        }
    }
}

/// A connected layer, for as long as this value lives: counted in
/// `Layers::count`, and its remote files released when it goes.
struct Connected {
    layers: Arc<Layers>,
    layer_id: LayerId,
}

impl Connected {
    fn new(layers: Arc<Layers>, layer_id: LayerId, parent: Option<LayerId>) -> Self {
        layers.adopt(layer_id, parent);
        layers.count.send_modify(|c| *c += 1);
        Connected { layers, layer_id }
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.layers.release_all(self.layer_id);
        self.layers.count.send_modify(|c| *c = c.saturating_sub(1));
    }
}

/// See [`Layers::hold`].
pub struct Held(Arc<Layers>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.count.send_modify(|c| *c = c.saturating_sub(1));
    }
}
