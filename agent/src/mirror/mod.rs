//! Mirror: the target's incoming TCP connections on subscribed ports are
//! copied to the sessions that subscribed, while the target's own server
//! keeps serving them.
//!
//! # Flow
//!
//! 1. The first `Subscribe` in mirror mode opens one [`capture::Capture`]
//!    (an IPv4 and an IPv6 packet socket) in the target's network
//!    namespace; every change of the mirrored ports replaces their BPF
//!    filter.
//! 2. One task reads packets, [`packet::parse`]s them and feeds
//!    [`flows::Flows`], which reassembles each client → server stream
//!    ([`reassembly::Stream`]).
//! 3. A client's SYN to a mirrored port becomes a [`Mirrored`] connection
//!    for every session mirroring the port; its bytes follow on a bounded
//!    channel (a session too slow to keep up loses the connection, never
//!    stalls the capture); FIN or RST closes the channel.
//! 4. The last port unsubscribed ends the task and closes the sockets.

pub mod bpf;
pub mod capture;
pub mod flows;
pub mod packet;
pub mod reassembly;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mirrord_protocol::{IncomingPeer, RemoteError};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::capture::Capture;
use self::flows::{Event, Flows, Key};
use crate::netns::SocketFactory;
use crate::steal::SessionId;

/// Chunks of one mirrored connection queued for its session.
const QUEUE: usize = 4096;
/// How long the capture waits after draining the socket before it reads
/// again: what mirroring adds to a copy's delay, and what bounds its
/// wake-ups to a hundred a second however busy the port is (each one
/// preempts the target's server where they share a CPU: with 2 ms, a
/// CPU-bound server kept 0.87x of its rate, with 10 ms 0.93x).
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

/// A mirrored connection on its way to a session: the client's bytes, in
/// order, until the channel closes.
pub struct Mirrored {
    pub port: u16,
    pub peer: IncomingPeer,
    pub data: mpsc::Receiver<Vec<u8>>,
}

/// Where a session receives its mirrored connections.
pub type Deliver = mpsc::UnboundedSender<Mirrored>;

type Ports = HashMap<u16, HashMap<SessionId, Deliver>>;

/// The agent's mirror state, shared by every session.
pub struct Mirrorer {
    factory: SocketFactory,
    ports: Arc<Mutex<Ports>>,
    /// The capture while any port is mirrored; serialises changes.
    active: tokio::sync::Mutex<Option<Active>>,
}

struct Active {
    capture: Arc<Capture>,
    task: tokio::task::JoinHandle<()>,
}

impl Mirrorer {
    pub fn new(factory: SocketFactory) -> Arc<Self> {
        Arc::new(Mirrorer {
            factory,
            ports: Arc::new(Mutex::new(HashMap::new())),
            active: tokio::sync::Mutex::new(None),
        })
    }

    /// Copies `port`'s new connections to `session` from now on.
    pub async fn subscribe(
        &self,
        session: SessionId,
        port: u16,
        deliver: Deliver,
    ) -> Result<(), RemoteError> {
        let mut active = self.active.lock().await;
        if active.is_none() {
            let capture = Capture::open(&self.factory).await.map_err(|e| {
                remote(
                    &e,
                    "cannot open the capture socket (AF_PACKET in the target's network namespace needs CAP_NET_RAW)",
                )
            })?;
            let capture = Arc::new(capture);
            let task = tokio::spawn(run(capture.clone(), self.ports.clone()));
            info!("mirror capture started");
            *active = Some(Active { capture, task });
        }
        lock(&self.ports)
            .entry(port)
            .or_default()
            .insert(session, deliver);
        if let Err(e) = self.refilter(active.as_ref()) {
            self.remove(session, port);
            return Err(remote(&e, "cannot set the capture filter"));
        }
        info!(port, "mirroring");
        Ok(())
    }

    /// Stops copying `port` to `session`.
    pub async fn unsubscribe(&self, session: SessionId, port: u16) {
        let mut active = self.active.lock().await;
        if !self.remove(session, port) {
            return;
        }
        info!(port, "no longer mirroring");
        if lock(&self.ports).is_empty() {
            if let Some(state) = active.take() {
                state.task.abort();
                info!("mirror capture stopped");
            }
        } else if let Err(e) = self.refilter(active.as_ref()) {
            warn!("cannot update the capture filter: {e}");
        }
    }

    /// Every port `session` mirrors (its client is gone).
    pub async fn release_session(&self, session: SessionId) {
        let ports: Vec<u16> = lock(&self.ports)
            .iter()
            .filter(|(_, sessions)| sessions.contains_key(&session))
            .map(|(port, _)| *port)
            .collect();
        for port in ports {
            self.unsubscribe(session, port).await;
        }
    }

    /// Closes the capture (the agent is exiting).
    pub async fn shutdown(&self) {
        lock(&self.ports).clear();
        if let Some(state) = self.active.lock().await.take() {
            state.task.abort();
        }
    }

    /// Whether it was subscribed.
    fn remove(&self, session: SessionId, port: u16) -> bool {
        let mut ports = lock(&self.ports);
        let Some(sessions) = ports.get_mut(&port) else {
            return false;
        };
        let removed = sessions.remove(&session).is_some();
        if sessions.is_empty() {
            ports.remove(&port);
        }
        removed
    }

    fn refilter(&self, active: Option<&Active>) -> std::io::Result<()> {
        let mut ports: Vec<u16> = lock(&self.ports).keys().copied().collect();
        ports.sort_unstable();
        match active {
            Some(state) => state.capture.set_ports(&ports),
            None => Ok(()),
        }
    }
}

/// Reads packets until aborted: waits for a first packet, drains both
/// sockets, sleeps [`BATCH_WINDOW`], and drains again for as long as
/// packets keep coming; only an idle capture waits on the poller.
async fn run(capture: Arc<Capture>, ports: Arc<Mutex<Ports>>) {
    let mut buf = vec![0u8; capture::SNAPLEN];
    let mut flows = Flows::default();
    let mut conns: HashMap<Key, Vec<mpsc::Sender<Vec<u8>>>> = HashMap::new();
    let mut events = Vec::new();
    loop {
        let drained = capture.drain(&mut buf, |bytes| {
            if let Some(seg) = packet::parse(bytes) {
                let subscribed = |port| lock(&ports).contains_key(&port);
                flows.segment(&seg, subscribed, &mut events);
            }
            for event in events.drain(..) {
                dispatch(event, &ports, &mut conns);
            }
        });
        let drained = match drained {
            Ok(n) => n,
            Err(e) => {
                warn!("capture read failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if drained == 0 {
            match capture.dropped() {
                Ok(0) => {}
                Ok(n) => warn!("the capture lost {n} packets (the agent did not read them in time): the connections they belonged to are cut short"),
                Err(e) => debug!("cannot read the capture's statistics: {e}"),
            }
            // Idle: wait for the next packet (the only time the sockets
            // are registered with the poller).
            if let Err(e) = capture.readable().await {
                warn!("capture wait failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            continue;
        }
        // Let packets gather before the next read: under load one wake-up
        // then takes a batch instead of one packet, and the target's own
        // server keeps the CPU meanwhile (the socket buffer holds them,
        // and, unregistered, they wake nobody). A drain that stopped at
        // its limit goes on at once.
        if drained < capture::DRAIN_LIMIT {
            tokio::time::sleep(BATCH_WINDOW).await;
        }
        // A port no longer mirrored: its connections end.
        let gone: Vec<u16> = {
            let ports = lock(&ports);
            conns
                .keys()
                .map(|k| k.1.port())
                .filter(|p| !ports.contains_key(p))
                .collect()
        };
        for port in gone {
            flows.forget_port(port, &mut events);
            for event in events.drain(..) {
                dispatch(event, &ports, &mut conns);
            }
        }
    }
}

fn dispatch(
    event: Event,
    ports: &Mutex<Ports>,
    conns: &mut HashMap<Key, Vec<mpsc::Sender<Vec<u8>>>>,
) {
    match event {
        Event::Opened(key) => {
            let port = key.1.port();
            let peer = IncomingPeer {
                remote: key.0,
                local: key.1,
            };
            let sessions: Vec<Deliver> = lock(ports)
                .get(&port)
                .map(|s| s.values().cloned().collect())
                .unwrap_or_default();
            let mut senders = Vec::new();
            for deliver in sessions {
                let (tx, data) = mpsc::channel(QUEUE);
                let mirrored = Mirrored { port, peer, data };
                if deliver.send(mirrored).is_ok() {
                    senders.push(tx);
                }
            }
            debug!(client = %key.0, port, sessions = senders.len(), "mirrored connection");
            conns.insert(key, senders);
        }
        Event::Data(key, bytes) => {
            if let Some(senders) = conns.get_mut(&key) {
                // Every session but the last gets a copy; the last the chunk.
                let mut bytes = Some(bytes);
                let last = senders.len().saturating_sub(1);
                let mut at = 0;
                senders.retain(|tx| {
                    let chunk = if at == last {
                        bytes.take().unwrap_or_default()
                    } else {
                        bytes.clone().unwrap_or_default()
                    };
                    at += 1;
                    match tx.try_send(chunk) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            warn!(client = %key.0, "a session cannot keep up with a mirrored connection; it is closed");
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    }
                });
            }
        }
        Event::Closed(key) => {
            conns.remove(&key);
        }
    }
}

/// `e` with its errno, after what was being done.
fn remote(e: &std::io::Error, doing: &str) -> RemoteError {
    let errno = match e.kind() {
        std::io::ErrorKind::InvalidInput => libc::EINVAL,
        _ => libc::EIO,
    };
    RemoteError::new(e.raw_os_error().unwrap_or(errno), format!("{doing}: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
