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
//! 3. A client's SYN to a mirrored port becomes a [`CopyEvent::Opened`]
//!    for every session mirroring the port, its bytes follow as
//!    [`CopyEvent::Data`] and its FIN or RST as [`CopyEvent::End`], all on
//!    the session's one channel ([`copies`]), in order. The session
//!    forwards them as `IncomingConn`, `ConnData` and `ConnEof` under a
//!    connection id of the capture's ([`COPY_IDS`]): no channel, task or
//!    outgoing entry per mirrored connection (they were 40% of the
//!    agent's CPU per copy). A session too slow to keep up (more than
//!    [`SESSION_QUEUE_BYTES`] queued) loses the connections that would
//!    overflow it, each ended at once; the capture never waits.
//! 4. The last port unsubscribed ends the task and closes the sockets.

pub mod bpf;
pub mod capture;
pub mod flows;
pub mod packet;
pub mod reassembly;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mirrord_protocol::{ConnId, IncomingPeer, RemoteError};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::capture::Capture;
use self::flows::{Event, Flows, Key};
use crate::netns::SocketFactory;
use crate::steal::SessionId;

/// Bytes of copies queued for one session beyond which its new bytes cut
/// their connection short.
const SESSION_QUEUE_BYTES: usize = 64 << 20;

/// The first id of mirrored connections: the top bit set, so a copy's id
/// is never one of the session's outgoing connections' (counted from 0).
pub const COPY_IDS: ConnId = 1 << 63;

/// How long the capture waits after draining the socket before it reads
/// again: what mirroring adds to a copy's delay, and what bounds its
/// wake-ups to a hundred a second however busy the port is (each one
/// preempts the target's server where they share a CPU: with 2 ms, a
/// CPU-bound server kept 0.87x of its rate, with 10 ms 0.93x).
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(10);

/// What a session is told of the connections it mirrors, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum CopyEvent {
    Opened {
        conn: ConnId,
        port: u16,
        peer: IncomingPeer,
    },
    /// The client's next bytes.
    Data { conn: ConnId, data: Vec<u8> },
    /// The client's side ended (or the copy was cut short).
    End { conn: ConnId },
}

/// Where a session receives its copies: one unbounded channel, with the
/// bytes queued in it counted so the capture can bound them.
#[derive(Clone)]
pub struct Deliver {
    tx: mpsc::UnboundedSender<CopyEvent>,
    queued: Arc<AtomicUsize>,
}

/// The session's end of [`Deliver`].
pub struct Copies {
    rx: mpsc::UnboundedReceiver<CopyEvent>,
    queued: Arc<AtomicUsize>,
}

/// A session's copy channel.
pub fn copies() -> (Deliver, Copies) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        Deliver {
            tx,
            queued: queued.clone(),
        },
        Copies { rx, queued },
    )
}

impl CopyEvent {
    /// What it counts for in a session's queue: its bytes, or a fixed
    /// charge for an opening (so a flood of connections without data is
    /// bounded too); an end is free, never refused (its opening was
    /// queued, and the client must hear that it ended).
    fn cost(&self) -> usize {
        match self {
            CopyEvent::Opened { .. } => 64,
            CopyEvent::Data { data, .. } => data.len(),
            CopyEvent::End { .. } => 0,
        }
    }
}

impl Copies {
    pub async fn recv(&mut self) -> Option<CopyEvent> {
        let event = self.rx.recv().await?;
        self.queued.fetch_sub(event.cost(), Ordering::Relaxed);
        Some(event)
    }
}

impl Deliver {
    /// Queues `event` unless that would put more than `limit` in the
    /// session's queue.
    fn send(&self, event: CopyEvent, limit: usize) -> Sent {
        let cost = event.cost();
        if self.queued.fetch_add(cost, Ordering::Relaxed) + cost > limit && cost > 0 {
            self.queued.fetch_sub(cost, Ordering::Relaxed);
            return Sent::Full;
        }
        match self.tx.send(event) {
            Ok(()) => Sent::Queued,
            Err(_) => {
                self.queued.fetch_sub(cost, Ordering::Relaxed);
                Sent::Gone
            }
        }
    }
}

enum Sent {
    Queued,
    /// The session has more than its limit queued.
    Full,
    /// The session is gone.
    Gone,
}

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
    let mut conns = Copying::default();
    let mut events = Vec::new();
    loop {
        let drained = capture.drain(&mut buf, |bytes| {
            if let Some(seg) = packet::parse(bytes) {
                let subscribed = |port| lock(&ports).contains_key(&port);
                flows.segment(&seg, subscribed, &mut events);
            }
            for event in events.drain(..) {
                conns.dispatch(event, &ports, SESSION_QUEUE_BYTES);
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
                .flows
                .keys()
                .map(|k| k.1.port())
                .filter(|p| !ports.contains_key(p))
                .collect()
        };
        for port in gone {
            flows.forget_port(port, &mut events);
            for event in events.drain(..) {
                conns.dispatch(event, &ports, SESSION_QUEUE_BYTES);
            }
        }
    }
}

/// The connections being copied, and to which sessions.
struct Copying {
    flows: HashMap<Key, (ConnId, Vec<Deliver>)>,
    next: ConnId,
    /// Copies not made or cut short because a session was too far behind.
    lost: u64,
}

impl Default for Copying {
    fn default() -> Self {
        Copying {
            flows: HashMap::new(),
            next: COPY_IDS,
            lost: 0,
        }
    }
}

impl Copying {
    /// Tells the sessions concerned of `event`; a session with more than
    /// `limit` bytes queued loses the connection (ended at once).
    fn dispatch(&mut self, event: Event, ports: &Mutex<Ports>, limit: usize) {
        match event {
            Event::Opened(key) => {
                let port = key.1.port();
                let peer = IncomingPeer {
                    remote: key.0,
                    local: key.1,
                };
                let conn = self.next;
                self.next += 1;
                let mut sessions: Vec<Deliver> = lock(ports)
                    .get(&port)
                    .map(|s| s.values().cloned().collect())
                    .unwrap_or_default();
                let lost = &mut self.lost;
                sessions.retain(|deliver| {
                    let opened = CopyEvent::Opened { conn, port, peer };
                    match deliver.send(opened, limit) {
                        Sent::Queued => true,
                        Sent::Gone => false,
                        Sent::Full => {
                            behind(lost);
                            false
                        }
                    }
                });
                debug!(client = %key.0, port, conn, sessions = sessions.len(), "mirrored connection");
                self.flows.insert(key, (conn, sessions));
            }
            Event::Data(key, bytes) => {
                let Some((conn, sessions)) = self.flows.get_mut(&key) else {
                    return;
                };
                let conn = *conn;
                let lost = &mut self.lost;
                // Every session but the last gets a copy; the last the chunk.
                let mut bytes = Some(bytes);
                let last = sessions.len().saturating_sub(1);
                let mut at = 0;
                sessions.retain(|deliver| {
                    let chunk = if at == last {
                        bytes.take().unwrap_or_default()
                    } else {
                        bytes.clone().unwrap_or_default()
                    };
                    at += 1;
                    match deliver.send(CopyEvent::Data { conn, data: chunk }, limit) {
                        Sent::Queued => true,
                        Sent::Gone => false,
                        Sent::Full => {
                            behind(lost);
                            deliver.send(CopyEvent::End { conn }, limit);
                            false
                        }
                    }
                });
            }
            Event::Closed(key) => {
                if let Some((conn, sessions)) = self.flows.remove(&key) {
                    for deliver in sessions {
                        deliver.send(CopyEvent::End { conn }, limit);
                    }
                }
            }
        }
    }
}

/// Counts a copy a session was too far behind to get, saying so at the
/// 1st, 2nd, 4th, 8th... (a session that stays behind loses many).
fn behind(lost: &mut u64) {
    *lost += 1;
    if lost.is_power_of_two() {
        warn!(
            lost = *lost,
            "a session cannot keep up with the mirrored traffic: connections are not copied to it, or their copies end early"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = (
        std::net::SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
            40000,
        ),
        std::net::SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
            80,
        ),
    );

    /// Port 80 mirrored by sessions 1 and 2.
    fn two_sessions() -> (Mutex<Ports>, Copies, Copies) {
        let ((one, one_rx), (two, two_rx)) = (copies(), copies());
        let ports = HashMap::from([(80, HashMap::from([(1, one), (2, two)]))]);
        (Mutex::new(ports), one_rx, two_rx)
    }

    fn queued(copies: &mut Copies) -> Vec<CopyEvent> {
        let mut events = Vec::new();
        while let Ok(event) = copies.rx.try_recv() {
            copies.queued.fetch_sub(event.cost(), Ordering::Relaxed);
            events.push(event);
        }
        events
    }

    #[test]
    fn every_session_hears_a_connection_open_carry_bytes_and_end() {
        let (ports, mut one, mut two) = two_sessions();
        let mut copying = Copying::default();
        copying.dispatch(Event::Opened(KEY), &ports, 1 << 20);
        copying.dispatch(Event::Data(KEY, b"GET /".to_vec()), &ports, 1 << 20);
        copying.dispatch(Event::Closed(KEY), &ports, 1 << 20);
        let peer = IncomingPeer {
            remote: KEY.0,
            local: KEY.1,
        };
        let conn = COPY_IDS;
        let expected = [
            CopyEvent::Opened {
                conn,
                port: 80,
                peer,
            },
            CopyEvent::Data {
                conn,
                data: b"GET /".to_vec(),
            },
            CopyEvent::End { conn },
        ];
        assert_eq!(queued(&mut one), expected);
        assert_eq!(queued(&mut two), expected);
        assert_eq!(one.queued.load(Ordering::Relaxed), 0);

        // The next connection has the next id.
        copying.dispatch(Event::Opened(KEY), &ports, 1 << 20);
        assert!(
            matches!(queued(&mut one)[..], [CopyEvent::Opened { conn, .. }] if conn == COPY_IDS + 1)
        );
    }

    #[test]
    fn a_session_over_its_limit_loses_the_connection_the_others_keep_it() {
        let (ports, mut one, mut two) = two_sessions();
        let mut copying = Copying::default();
        // Session 1 is behind: 100 bytes already queued of 200.
        ports.lock().unwrap()[&80][&1]
            .queued
            .store(100, Ordering::Relaxed);
        copying.dispatch(Event::Opened(KEY), &ports, 200);
        copying.dispatch(Event::Data(KEY, vec![b'x'; 30]), &ports, 200);
        copying.dispatch(Event::Data(KEY, vec![b'y'; 30]), &ports, 200);
        copying.dispatch(Event::Data(KEY, vec![b'z'; 30]), &ports, 200);
        copying.dispatch(Event::Closed(KEY), &ports, 200);
        let conn = COPY_IDS;
        let one_saw = queued(&mut one);
        assert_eq!(
            one_saw[1..],
            [
                CopyEvent::Data {
                    conn,
                    data: vec![b'x'; 30]
                },
                CopyEvent::End { conn }
            ],
            "cut short after 100 + 64 + 30 bytes: {one_saw:?}"
        );
        assert_eq!(queued(&mut two).len(), 5, "open, three chunks, end");
    }

    #[test]
    fn a_session_that_is_gone_is_forgotten() {
        let (ports, one, mut two) = two_sessions();
        drop(one);
        let mut copying = Copying::default();
        copying.dispatch(Event::Opened(KEY), &ports, 1 << 20);
        assert_eq!(copying.flows[&KEY].1.len(), 1);
        copying.dispatch(Event::Closed(KEY), &ports, 1 << 20);
        assert_eq!(queued(&mut two).len(), 2);
        assert!(copying.flows.is_empty());
    }
}
