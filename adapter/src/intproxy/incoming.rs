//! Incoming connections: the program's listeners subscribed on the agent,
//! and each stolen connection delivered to the program's own listening
//! socket.
//!
//! # Flow
//!
//! 1. A layer whose program listens sends `Listen{subscription, app}`; the
//!    intproxy subscribes on the agent and remembers port -> `app`.
//! 2. The agent announces a stolen or mirrored connection
//!    (`IncomingConn`). The intproxy connects to `app`, records its end's
//!    address -> the real peer, and pumps bytes like an outgoing relay
//!    (`outgoing::pump`). The port's subscription says which kind it is:
//!    what the program answers on a mirrored connection is read and
//!    dropped here, never sent to the agent (the target's own server
//!    answers that client), and the copy's bytes are not acknowledged
//!    (the agent's capture never waits for a session, so there is no
//!    window to open).
//! 3. The program's `accept` returns that connection; its layer asks
//!    `IncomingPeer{peer}` and reports the real client instead. The
//!    program can accept before the intproxy has seen its `connect`
//!    complete: the question then waits for every delivery that was
//!    connecting when it came (the accepted one is among them, its
//!    handshake done before the accept), never for later ones.
//! 4. `Unlisten`, or the layer disconnecting, unsubscribes: the target
//!    serves the port itself again.
//!
//! At most [`ACCEPT_AHEAD`] delivered connections per listener wait for
//! the program's `accept` (its question, step 3, says it accepted one);
//! the others wait here. Connecting them all at once overflows the
//! program's accept queue when it is slower than the target's traffic
//! (a mirrored burst: 48,000 overflows and half of 20,000 copies lost
//! when every copy connected at once), and the kernel then drops the
//! handshakes it cannot queue. A stolen connection waits as long as it
//! takes (its client waits with it); a mirrored copy is dropped, with a
//! warning, once [`MAX_WAITING_COPIES`] wait. A program that never asks
//! (a blocking listener under the syscall path) frees its place after
//! [`ACCEPT_GRACE`], or when the connection ends.
//!
//! The intproxy's end is not bound before it connects: `bind` to port 0
//! searches the whole port range for a port no socket holds, and under a
//! connection per request the delivered connections' `TIME_WAIT`s fill
//! it (measured: 90% of the intproxy's CPU in the kernel's port search
//! at 10 000 mirrored connections a second), where `connect` picks a
//! port per destination in constant time.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mirrord_protocol::{
    ClientMessage, IncomingMode, IncomingPeer, LayerId, LayerResponse, RemoteError, Request,
    Response, Subscription,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn, Instrument};

use super::agent::{AgentClient, IncomingConnection};
use super::outgoing::{self, ProgramBytes};

/// Delivered connections per listener that the program has not accepted
/// yet: under the default backlog of every common runtime (the JVM's
/// is 50, Python asyncio's 100).
const ACCEPT_AHEAD: usize = 32;
/// How long a delivered connection holds its place when the program
/// does not say it accepted it.
const ACCEPT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);
/// Mirrored copies waiting for a place beyond which new ones are dropped.
const MAX_WAITING_COPIES: usize = 10_000;

/// A program's listener of a target port.
struct Listener {
    app: SocketAddr,
    layer: LayerId,
    /// What becomes of the program's answers: dropped when mirrored.
    answers: ProgramBytes,
    admission: Arc<Admission>,
}

/// The places of a listener's accept queue this intproxy may fill.
struct Admission {
    places: Arc<Semaphore>,
    /// Deliveries waiting for a place.
    waiting: std::sync::atomic::AtomicUsize,
    /// Mirrored copies dropped for want of one.
    dropped: AtomicU64,
}

impl Admission {
    fn new() -> Arc<Admission> {
        Arc::new(Admission {
            places: Arc::new(Semaphore::new(ACCEPT_AHEAD)),
            waiting: Default::default(),
            dropped: Default::default(),
        })
    }

    /// A place for one more delivered connection, once one is free;
    /// `None` for a mirrored copy (`copy`) when too many already wait.
    async fn admit(&self, copy: bool) -> Option<OwnedSemaphorePermit> {
        if let Ok(place) = self.places.clone().try_acquire_owned() {
            return Some(place);
        }
        if copy && self.waiting.load(Ordering::Relaxed) >= MAX_WAITING_COPIES {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // At the 1st, 2nd, 4th, 8th... dropped copy.
            if dropped.is_power_of_two() {
                warn!(
                    dropped,
                    "the program accepts mirrored connections more slowly than the target receives them: copies are dropped while {MAX_WAITING_COPIES} wait"
                );
            }
            return None;
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        // Never closed: acquiring cannot fail.
        let place = self.places.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        place
    }
}

/// A delivered connection, by the intproxy's end of it.
struct Delivered {
    peer: IncomingPeer,
    /// Its place in the program's accept queue, until accepted.
    place: Option<OwnedSemaphorePermit>,
}

/// The incoming side of the intproxy, shared by every layer connection.
pub struct Incoming {
    agent: AgentClient,
    /// Std mutexes: map operations only, never held across an await.
    listeners: Mutex<HashMap<u16, Listener>>,
    /// Our end of each delivered connection -> the real peer.
    peers: Mutex<HashMap<SocketAddr, Delivered>>,
    /// The deliveries connecting to the program, by start number.
    connecting: Mutex<BTreeSet<u64>>,
    next_delivery: AtomicU64,
    /// Signalled whenever a delivery's connect has settled.
    settled: Notify,
    /// [`ACCEPT_GRACE`], but in tests.
    accept_grace: std::time::Duration,
}

impl Incoming {
    /// Starts delivering the connections the agent steals.
    pub fn start(agent: AgentClient) -> Arc<Self> {
        Self::start_with_grace(agent, ACCEPT_GRACE)
    }

    fn start_with_grace(agent: AgentClient, accept_grace: std::time::Duration) -> Arc<Self> {
        let incoming = Arc::new(Incoming {
            agent: agent.clone(),
            listeners: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            connecting: Mutex::new(BTreeSet::new()),
            next_delivery: AtomicU64::new(0),
            settled: Notify::new(),
            accept_grace,
        });
        if let Some(rx) = agent.take_incoming() {
            tokio::spawn(incoming.clone().deliver_all(rx));
        }
        incoming
    }

    /// Subscribes the target's `subscription.port` for `layer`'s listener at `app`.
    pub async fn listen(
        &self,
        layer: LayerId,
        subscription: Subscription,
        app: SocketAddr,
    ) -> Result<LayerResponse, RemoteError> {
        let port = subscription.port;
        let answers = match subscription.mode {
            IncomingMode::Steal => ProgramBytes::Forward,
            IncomingMode::Mirror => ProgramBytes::Drop,
        };
        if let Err(e) = self.agent.request(Request::Subscribe(subscription)).await {
            // The program sees only an errno from `listen`: say why here.
            if e.errno != libc::ENOTSUP {
                warn!(port, "cannot steal the target's port: {}", e.message);
            }
            return Err(e);
        }
        info!(port, %app, "listening on the target's port");
        lock(&self.listeners).insert(
            port,
            Listener {
                app,
                layer,
                answers,
                admission: Admission::new(),
            },
        );
        Ok(LayerResponse::Remote(Response::Done))
    }

    /// Unsubscribes `port` if `layer` listens on it.
    pub async fn unlisten(&self, layer: LayerId, port: u16) -> Result<LayerResponse, RemoteError> {
        let owned = {
            let mut listeners = lock(&self.listeners);
            match listeners.get(&port) {
                Some(l) if l.layer == layer => listeners.remove(&port).is_some(),
                _ => false,
            }
        };
        if owned {
            info!(port, "no longer listening on the target's port");
            self.agent.request(Request::Unsubscribe { port }).await?;
        }
        Ok(LayerResponse::Remote(Response::Done))
    }

    /// The layer is gone (its process exited): its ports go back to the target at once.
    pub fn layer_gone(&self, layer: LayerId) {
        let ports: Vec<u16> = {
            let mut listeners = lock(&self.listeners);
            let ports: Vec<u16> = listeners
                .iter()
                .filter(|(_, l)| l.layer == layer)
                .map(|(port, _)| *port)
                .collect();
            for port in &ports {
                listeners.remove(port);
            }
            ports
        };
        for port in ports {
            info!(port, "the listening process is gone; unsubscribing");
            drop(self.agent.request(Request::Unsubscribe { port }));
        }
    }

    /// The real peer behind a delivered connection whose intproxy end is
    /// `ours`, once every delivery connecting now has settled.
    pub async fn peer(&self, ours: SocketAddr) -> LayerResponse {
        let ours = mirrord_protocol::unmapped(ours);
        // Read under the lock a delivery takes its number in.
        let horizon = {
            let _connecting = lock(&self.connecting);
            self.next_delivery.load(Ordering::SeqCst)
        };
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            // Registered before the checks, so a settle between them and
            // the wait is not missed.
            settled.as_mut().enable();
            if let Some(delivered) = lock(&self.peers).get_mut(&ours) {
                // Accepted: its place goes to the next delivery.
                delivered.place = None;
                return LayerResponse::Peer(Some(delivered.peer));
            }
            let earlier_pending = lock(&self.connecting)
                .first()
                .is_some_and(|first| *first < horizon);
            if !earlier_pending {
                return LayerResponse::Peer(None);
            }
            settled.await;
        }
    }

    /// Connects to the program's listener at `app` and records our end's
    /// address -> `peer` (holding `place`) before [`Incoming::peer`] can
    /// miss it.
    async fn connect(
        &self,
        app: SocketAddr,
        peer: IncomingPeer,
        place: OwnedSemaphorePermit,
    ) -> std::io::Result<(TcpStream, SocketAddr)> {
        let number = {
            let mut connecting = lock(&self.connecting);
            let number = self.next_delivery.fetch_add(1, Ordering::SeqCst);
            connecting.insert(number);
            number
        };
        let connected = TcpStream::connect(app).await.and_then(|stream| {
            let ours = mirrord_protocol::unmapped(stream.local_addr()?);
            let place = Some(place);
            lock(&self.peers).insert(ours, Delivered { peer, place });
            Ok((stream, ours))
        });
        lock(&self.connecting).remove(&number);
        self.settled.notify_waiters();
        connected
    }

    async fn deliver_all(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<IncomingConnection>) {
        while let Some(connection) = rx.recv().await {
            let span = tracing::debug_span!("incoming", conn = connection.conn, port = connection.port, remote = %connection.peer.remote);
            tokio::spawn(self.clone().deliver(connection).instrument(span));
        }
    }

    async fn deliver(self: Arc<Self>, connection: IncomingConnection) {
        let IncomingConnection {
            conn,
            port,
            peer,
            events,
        } = connection;
        let listener = lock(&self.listeners)
            .get(&port)
            .map(|l| (l.app, l.answers, l.admission.clone()));
        let Some((app, answers, admission)) = listener else {
            debug!("nobody listens on this port any more");
            return self.agent.send(ClientMessage::ConnClose { conn });
        };
        let Some(place) = admission.admit(answers == ProgramBytes::Drop).await else {
            return self.agent.send(ClientMessage::ConnClose { conn });
        };
        match self.connect(app, peer, place).await {
            Ok((stream, ours)) => {
                let pump = outgoing::pump(stream, &self.agent, conn, events, answers);
                tokio::pin!(pump);
                tokio::select! {
                    () = &mut pump => {}
                    () = tokio::time::sleep(self.accept_grace) => {
                        // Not said to be accepted: free its place anyway.
                        if let Some(delivered) = lock(&self.peers).get_mut(&ours) {
                            delivered.place = None;
                        }
                        pump.await;
                    }
                }
                lock(&self.peers).remove(&ours);
            }
            Err(e) => {
                debug!(%app, "the program's listener refused: {e}");
                self.agent.send(ClientMessage::ConnClose { conn });
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Delivers connection 5 to a program listening for port 80 (`mode`):
    /// the client sends `GET /`, the program answers `200` and closes,
    /// then the client's side ends. What the intproxy sent the agent.
    async fn deliver_one(mode: IncomingMode) -> Vec<ClientMessage> {
        let (agent, mut sent) = AgentClient::detached();
        let incoming = Incoming::start(agent);
        let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let answers = match mode {
            IncomingMode::Steal => ProgramBytes::Forward,
            IncomingMode::Mirror => ProgramBytes::Drop,
        };
        listen_on(&incoming, 80, app.local_addr().unwrap(), answers);
        let real = IncomingPeer {
            remote: "10.1.2.3:4567".parse().unwrap(),
            local: "10.9.9.9:80".parse().unwrap(),
        };
        let (events_tx, events) = mpsc::unbounded_channel();
        let delivery = tokio::spawn(incoming.clone().deliver(IncomingConnection {
            conn: 5,
            port: 80,
            peer: real,
            events,
        }));
        let (mut accepted, seen) = app.accept().await.unwrap();
        assert_eq!(incoming.peer(seen).await, LayerResponse::Peer(Some(real)));
        assert_eq!(
            incoming.peer("127.0.0.1:1".parse().unwrap()).await,
            LayerResponse::Peer(None)
        );
        events_tx
            .send(super::super::agent::ConnEvent::Data(
                b"GET /".to_vec().into(),
            ))
            .unwrap();
        let mut buf = [0u8; 5];
        accepted.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET /");
        accepted.write_all(b"200").await.unwrap();
        drop(accepted);
        events_tx.send(super::super::agent::ConnEvent::Eof).unwrap();
        delivery.await.unwrap();
        let mut messages = Vec::new();
        while let Some(msg) = sent.try_recv_message() {
            messages.push(msg);
        }
        assert_eq!(
            incoming.peer(seen).await,
            LayerResponse::Peer(None),
            "forgotten"
        );
        messages
    }

    fn listen_on(incoming: &Incoming, port: u16, app: SocketAddr, answers: ProgramBytes) {
        let listener = Listener {
            app,
            layer: 1,
            answers,
            admission: Admission::new(),
        };
        lock(&incoming.listeners).insert(port, listener);
    }

    /// Only [`ACCEPT_AHEAD`] delivered connections wait in the program's
    /// accept queue; the next one connects once the program says it
    /// accepted one.
    #[tokio::test]
    async fn deliveries_wait_for_the_program_to_accept() {
        let (agent, _sent) = AgentClient::detached();
        let incoming = Incoming::start_with_grace(agent, std::time::Duration::from_secs(600));
        let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listen_on(
            &incoming,
            80,
            app.local_addr().unwrap(),
            ProgramBytes::Forward,
        );
        let real = IncomingPeer {
            remote: "10.1.2.3:4567".parse().unwrap(),
            local: "10.9.9.9:80".parse().unwrap(),
        };
        let mut senders = Vec::new();
        for conn in 0..(ACCEPT_AHEAD as u64 + 3) {
            let (events_tx, events) = mpsc::unbounded_channel();
            senders.push(events_tx);
            tokio::spawn(incoming.clone().deliver(IncomingConnection {
                conn,
                port: 80,
                peer: real,
                events,
            }));
        }
        let within = |secs: f64| std::time::Duration::from_secs_f64(secs);
        let mut accepted = Vec::new();
        for _ in 0..ACCEPT_AHEAD {
            let (stream, ours) = tokio::time::timeout(within(10.0), app.accept())
                .await
                .expect("a delivery connects")
                .unwrap();
            accepted.push((stream, ours));
        }
        // Accepted, but not said: nobody else comes.
        assert!(tokio::time::timeout(within(0.3), app.accept())
            .await
            .is_err());

        assert_eq!(
            incoming.peer(accepted[0].1).await,
            LayerResponse::Peer(Some(real))
        );
        tokio::time::timeout(within(10.0), app.accept())
            .await
            .expect("one more delivery connects once one is accepted")
            .unwrap();
        assert!(tokio::time::timeout(within(0.3), app.accept())
            .await
            .is_err());
    }

    /// A question about a connection the intproxy has not yet seen
    /// connected waits for the deliveries connecting when it came, and
    /// for no later one.
    #[tokio::test]
    async fn a_peer_question_waits_for_earlier_connects_only() {
        let (agent, _sent) = AgentClient::detached();
        let incoming = Incoming::start(agent);
        let ours: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let real = IncomingPeer {
            remote: "10.1.2.3:4567".parse().unwrap(),
            local: "10.9.9.9:80".parse().unwrap(),
        };
        // Nothing connecting: an unknown address is answered at once.
        assert_eq!(incoming.peer(ours).await, LayerResponse::Peer(None));

        // Delivery 0 is connecting when two questions come: one about its
        // connection, one about a connection that is not the intproxy's.
        incoming.next_delivery.store(1, Ordering::SeqCst);
        lock(&incoming.connecting).insert(0);
        let ask = |addr: SocketAddr| {
            let incoming = incoming.clone();
            tokio::spawn(async move { incoming.peer(addr).await })
        };
        let other: SocketAddr = "127.0.0.1:40002".parse().unwrap();
        let (about_ours, about_other) = (ask(ours), ask(other));
        tokio::task::yield_now().await;
        assert!(!about_ours.is_finished() && !about_other.is_finished());

        // Delivery 1 starts after the questions and never settles.
        incoming.next_delivery.store(2, Ordering::SeqCst);
        lock(&incoming.connecting).insert(1);
        // Delivery 0 connects: its end was `ours`.
        let delivered = Delivered {
            peer: real,
            place: None,
        };
        lock(&incoming.peers).insert(ours, delivered);
        lock(&incoming.connecting).remove(&0);
        incoming.settled.notify_waiters();

        let answer = |task| tokio::time::timeout(std::time::Duration::from_secs(5), task);
        assert_eq!(
            answer(about_ours).await.unwrap().unwrap(),
            LayerResponse::Peer(Some(real))
        );
        assert_eq!(
            answer(about_other).await.unwrap().unwrap(),
            LayerResponse::Peer(None)
        );
    }

    #[tokio::test]
    async fn a_stolen_connection_reaches_the_program_with_its_real_peer_known() {
        assert_eq!(
            deliver_one(IncomingMode::Steal).await,
            [
                ClientMessage::ConnData {
                    conn: 5,
                    data: b"200".to_vec().into()
                },
                ClientMessage::ConnShutdown { conn: 5 },
                ClientMessage::ConnClose { conn: 5 },
            ]
        );
    }

    #[tokio::test]
    async fn the_programs_answers_on_a_mirrored_connection_never_reach_the_agent() {
        // The copy is only closed: no ack (the agent does not
        // flow-control copies), and the answer and the program's
        // half-close stay here.
        assert_eq!(
            deliver_one(IncomingMode::Mirror).await,
            [ClientMessage::ConnClose { conn: 5 }]
        );
    }
}
