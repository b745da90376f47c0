//! Steal: the target's incoming TCP connections on subscribed ports come
//! to the agent instead of the target's server, and from there to the
//! client that subscribed (the intproxy, which hands them to the program).
//!
//! # Flow
//!
//! 1. The first `Subscribe` in steal mode removes chains of dead agents
//!    ([`dual_stack::DualStack::remove_stale_chains`]), opens one listener
//!    in the target's network namespace (`[::]:0`, dual-stack whatever the
//!    target's `bindv6only`; `0.0.0.0:0` in a target without IPv6),
//!    creates this agent's chain `MIRRORD_INCOMING_<pid>` in the IPv4 and
//!    IPv6 NAT tables (IPv4 only when the IPv6 one cannot be made: each
//!    subscriber is warned, [`dual_stack::Coverage`]) and starts the
//!    [`watchdog`].
//! 2. Each subscribed port gets a `REDIRECT` rule to the listener's port
//!    in both tables.
//! 3. An accepted connection's original destination (`SO_ORIGINAL_DST`)
//!    names the port, hence the subscriber; the stream goes to that
//!    client's session, which relays it like an outgoing connection.
//! 4. Unsubscribing (or the client's connection ending) removes the port's
//!    rule; the last port removes the chain.
//!
//! # Cleanup paths
//!
//! Normal exit and SIGTERM: [`Stealer::shutdown`]. `kill -9` or a crash:
//! the watchdog sees its pipe close and removes the chain. Both failed
//! (the watchdog was killed too): the next agent that steals in the
//! target removes chains whose agent is gone.

pub mod dual_stack;
pub mod filter;
pub mod http;
pub mod iptables;
pub mod watchdog;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mirrord_protocol::{IncomingPeer, RemoteError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::dual_stack::{Coverage, DualStack};
use self::iptables::chain_name;
use crate::netns::SocketFactory;

/// A stolen connection on its way to the session that subscribed.
pub struct Stolen {
    pub stream: TcpStream,
    pub port: u16,
    pub peer: IncomingPeer,
    /// Set when only matching HTTP requests go to the session.
    pub filter: Option<Arc<filter::HttpFilter>>,
}

/// Who steals a port, and how.
struct Owner {
    session: SessionId,
    deliver: Deliver,
    filter: Option<Arc<filter::HttpFilter>>,
}

/// Where a session receives its stolen connections.
pub type Deliver = mpsc::UnboundedSender<Stolen>;

/// Identifies a client connection (a session) among the subscribers.
pub type SessionId = u64;

/// The agent's steal state, shared by every session.
pub struct Stealer {
    target_pid: Option<u32>,
    factory: SocketFactory,
    /// A std mutex: map updates only; iptables runs outside it, under
    /// `changes`.
    ports: Mutex<HashMap<u16, Owner>>,
    /// Serialises chain and rule changes (they run `iptables`, off the
    /// runtime's threads).
    changes: tokio::sync::Mutex<Option<Active>>,
}

/// What exists while at least one port is stolen.
struct Active {
    iptables: Arc<DualStack>,
    /// Which clients the chain reaches.
    coverage: Coverage,
    chain: String,
    /// The listener's port: the `REDIRECT` target.
    redirect_to: u16,
    accept_task: tokio::task::JoinHandle<()>,
    /// Dropped last: it removes the chain if the agent dies.
    _watchdog: Option<watchdog::Watchdog>,
}

impl Stealer {
    pub fn new(target_pid: Option<u32>, factory: SocketFactory) -> Arc<Self> {
        Arc::new(Stealer {
            target_pid,
            factory,
            ports: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(None),
        })
    }

    /// Steals `port` for `session` (only the requests `filter` matches,
    /// when set). Another session's steal of the port is `EADDRINUSE`
    /// unless `take_over`. `Ok(Some(warning))`: stolen, but not from every
    /// client (see [`dual_stack::Coverage`]); the client should be told.
    pub async fn subscribe(
        self: &Arc<Self>,
        session: SessionId,
        port: u16,
        take_over: bool,
        filter: Option<Arc<filter::HttpFilter>>,
        deliver: Deliver,
    ) -> Result<Option<String>, RemoteError> {
        let owner = Owner {
            session,
            deliver,
            filter,
        };
        let mut active = self.changes.lock().await;
        let previous = lock(&self.ports).get(&port).map(|o| o.session);
        let warning =
            |active: &Option<Active>| active.as_ref().and_then(|a| a.coverage.warning(port));
        match previous {
            // Subscribed again (a second `listen` on the socket): the
            // client was told any warning the first time.
            Some(current) if current == session => {
                lock(&self.ports).insert(port, owner);
                return Ok(None);
            }
            Some(_) if !take_over => return Err(concurrent_steal(port)),
            Some(_) => {
                info!(port, "taking over a port another session steals");
                lock(&self.ports).insert(port, owner);
                return Ok(warning(&active));
            }
            None => {}
        }
        if active.is_none() {
            *active = Some(self.activate().await?);
        }
        let Some(state) = active.as_ref() else {
            return Err(RemoteError::new(libc::EIO, "steal is not active"));
        };
        let (iptables, chain, to) = (
            state.iptables.clone(),
            state.chain.clone(),
            state.redirect_to,
        );
        blocking(move || {
            // Another agent (another session on this target) may steal it.
            if iptables.stolen_elsewhere(&chain, port)? {
                if !take_over {
                    return Ok(Err(concurrent_steal(port)));
                }
                info!(port, "taking over a port another agent steals");
                iptables.raise_jumps(&chain)?;
            }
            iptables.redirect(true, &chain, port, to).map(Ok)
        })
        .await??;
        lock(&self.ports).insert(port, owner);
        info!(port, "stealing");
        Ok(warning(&active))
    }

    /// Stops stealing `port` if `session` steals it.
    pub async fn unsubscribe(&self, session: SessionId, port: u16) {
        let mut active = self.changes.lock().await;
        {
            let mut ports = lock(&self.ports);
            match ports.get(&port) {
                Some(owner) if owner.session == session => {
                    ports.remove(&port);
                }
                _ => return,
            }
        }
        info!(port, "no longer stealing");
        if let Some(state) = active.as_ref() {
            let (iptables, chain, to) = (
                state.iptables.clone(),
                state.chain.clone(),
                state.redirect_to,
            );
            if let Err(e) = blocking(move || iptables.redirect(false, &chain, port, to)).await {
                warn!(port, "cannot remove the redirect: {e}");
            }
        }
        if lock(&self.ports).is_empty() {
            if let Some(state) = active.take() {
                deactivate(state).await;
            }
        }
    }

    /// Every port `session` steals (its client is gone).
    pub async fn release_session(&self, session: SessionId) {
        let ports: Vec<u16> = lock(&self.ports)
            .iter()
            .filter(|(_, owner)| owner.session == session)
            .map(|(port, _)| *port)
            .collect();
        for port in ports {
            self.unsubscribe(session, port).await;
        }
    }

    /// Removes the chain now (the agent is exiting).
    pub async fn shutdown(&self) {
        lock(&self.ports).clear();
        if let Some(state) = self.changes.lock().await.take() {
            deactivate(state).await;
        }
    }

    async fn activate(self: &Arc<Self>) -> Result<Active, RemoteError> {
        let target_pid = self.target_pid;
        let (mut iptables, stale) = blocking(move || {
            let tables =
                DualStack::for_pid(target_pid).map_err(|e| iptables::IptablesError::Missing {
                    binary: "iptables",
                    source: std::io::Error::new(
                        e.kind(),
                        format!("the target's network namespace: {e}"),
                    ),
                })?;
            let stale = tables.remove_stale_chains()?;
            Ok((tables, stale))
        })
        .await?;
        if !stale.is_empty() {
            info!(?stale, "removed chains of dead agents");
        }
        let (listener, dual_stack) = listen(&self.factory)
            .await
            .map_err(|e| RemoteError::from_io(&e))?;
        let redirect_to = listener
            .local_addr()
            .map_err(|e| RemoteError::from_io(&e))?
            .port();
        let chain = chain_name(std::process::id());
        let watchdog = match watchdog::Watchdog::start(&chain, self.target_pid) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!("cannot start the steal watchdog ({e}); a kill -9 of the agent leaves the chain until the next agent starts");
                None
            }
        };
        let name = chain.clone();
        let (iptables, coverage) =
            blocking(move || match iptables.create_chain(&name, dual_stack) {
                Ok(coverage) => Ok((Arc::new(iptables), coverage)),
                Err(e) => {
                    iptables.remove_chain(&name);
                    Err(e)
                }
            })
            .await?;
        info!(%chain, redirect_to, ?coverage, "steal chain created");
        let accept_task = tokio::spawn(accept_loop(listener, self.clone()));
        Ok(Active {
            iptables,
            coverage,
            chain,
            redirect_to,
            accept_task,
            _watchdog: watchdog,
        })
    }

    /// Hands an accepted connection to the session stealing its port.
    fn route(&self, stream: TcpStream, remote: SocketAddr) {
        let local = match original_destination(&stream, remote) {
            Ok(addr) => addr,
            Err(e) => return warn!(%remote, "no original destination: {e}"),
        };
        let port = local.port();
        let owner = lock(&self.ports)
            .get(&port)
            .map(|o| (o.deliver.clone(), o.filter.clone()));
        let Some((deliver, filter)) = owner else {
            return debug!(port, "a connection for a port no longer stolen is dropped");
        };
        let peer = IncomingPeer {
            remote: mirrord_protocol::unmapped(remote),
            local,
        };
        let stolen = Stolen {
            stream,
            port,
            peer,
            filter,
        };
        if deliver.send(stolen).is_err() {
            debug!(port, "the stealing session is gone");
        }
    }
}

fn concurrent_steal(port: u16) -> RemoteError {
    RemoteError::new(
        libc::EADDRINUSE,
        format!(
            "port {port} is already stolen by another mirrord session; \
             set feature.network.incoming.on_concurrent_steal to \"continue\" to take it over"
        ),
    )
}

async fn deactivate(state: Active) {
    state.accept_task.abort();
    let Active {
        iptables, chain, ..
    } = state;
    let name = chain.clone();
    let _ = blocking(move || Ok::<_, iptables::IptablesError>(iptables.remove_chain(&name))).await;
    info!(%chain, "steal chain removed");
}

/// The listener every stolen connection is redirected to, in the
/// target's namespace: `[::]:0` accepting IPv4 clients too (`IPV6_V6ONLY`
/// off whatever the target's `net.ipv6.bindv6only` says), or `0.0.0.0:0`
/// when the target has no IPv6 at all. Whether it is dual-stack.
async fn listen(factory: &SocketFactory) -> std::io::Result<(TcpListener, bool)> {
    let (socket, dual_stack) = match factory.tcp(true).await {
        Ok(socket) => {
            use std::os::fd::AsRawFd;
            crate::netns::set_int_option(
                socket.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                0,
            )?;
            (socket, true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
            warn!("the target has no IPv6 ({e}); stealing IPv4 clients only");
            (factory.tcp(false).await?, false)
        }
        Err(e) => return Err(e),
    };
    let any: SocketAddr = if dual_stack {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    socket.bind(any)?;
    Ok((socket.listen(1024)?, dual_stack))
}

async fn accept_loop(listener: TcpListener, stealer: Arc<Stealer>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                stealer.route(stream, remote);
            }
            Err(e) => {
                warn!("steal accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Where the client meant to connect, before the `REDIRECT`: asked at the
/// IPv6 level (`IP6T_SO_ORIGINAL_DST`) for an IPv6 client, at the IPv4
/// level (`SO_ORIGINAL_DST`) for an IPv4 one (a v4-mapped peer of the
/// dual-stack listener).
fn original_destination(stream: &TcpStream, remote: SocketAddr) -> std::io::Result<SocketAddr> {
    use std::os::fd::AsRawFd;
    /// `SO_ORIGINAL_DST` and `IP6T_SO_ORIGINAL_DST` share the number.
    const SO_ORIGINAL_DST: libc::c_int = 80;
    let fd = stream.as_raw_fd();
    if let SocketAddr::V6(_) = mirrord_protocol::unmapped(remote) {
        let addr: libc::sockaddr_in6 = socket_option(fd, libc::SOL_IPV6, SO_ORIGINAL_DST)?;
        let ip = std::net::Ipv6Addr::from(addr.sin6_addr.s6_addr);
        return Ok(SocketAddr::from((ip, u16::from_be(addr.sin6_port))));
    }
    // IPv4 clients of a dual-stack listener answer at the IPv4 level.
    let addr: libc::sockaddr_in = socket_option(fd, libc::SOL_IP, SO_ORIGINAL_DST)?;
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Ok(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
}

/// `getsockopt` of a plain C struct `T` (a `sockaddr_in` or `sockaddr_in6`).
fn socket_option<T: Copy>(
    fd: std::os::fd::RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> std::io::Result<T> {
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: a valid out buffer of `len` bytes.
    let rc = unsafe { libc::getsockopt(fd, level, name, value.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: zeroed, then (partly) filled by the kernel: the address
    // structs are valid for any bytes.
    Ok(unsafe { value.assume_init() })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, iptables::IptablesError> + Send + 'static,
) -> Result<T, RemoteError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            warn!("{e}");
            Err(RemoteError::new(libc::EACCES, e.to_string()))
        }
        Err(e) => Err(RemoteError::new(
            libc::EIO,
            format!("iptables task failed: {e}"),
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
