//! The supervisor: a task of the intproxy that answers the syscalls the
//! filter stops. A dedicated thread waits on the listener (`poll`, then
//! `SECCOMP_IOCTL_NOTIF_RECV`, which would block the intproxy's one
//! runtime thread) and hands each notification to a task, so a slow remote
//! call never holds up a local one.
//!
//! The supervisor lives until every process under the filter is gone (the
//! listener reports `POLLHUP`); meanwhile it counts as a connected layer
//! for the intproxy's lifetime, and it holds the UDP relays it made.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use mirrord_config::policy::Policy;
use tokio::sync::mpsc;
use tracing::{debug, info, Instrument};

use mirrord_config::IncomingConfig;
use mirrord_protocol::LayerId;

use super::callers::Callers;
use super::calls::Call;
use super::datagrams::{self, Datagrams};
use super::fdlinks::FdLinks;
use super::filter::AUDIT_ARCH;
use super::fs;
use super::layered::Layered;
use super::listings::Listings;
use super::mmsg;
use super::net;
use super::notify::{Listener, Notification, Reply};
use super::writeback::Writebacks;
use crate::intproxy::agent::AgentClient;
use crate::intproxy::incoming::Incoming;
use crate::intproxy::outgoing::UdpRelay;

/// How a stopped call was dealt with.
#[derive(Debug)]
pub enum Outcome {
    /// Answer it so.
    Reply(Reply),
    /// Already answered (an fd was installed as its result).
    Answered,
    /// Its thread died or was interrupted: nothing to answer.
    Gone,
}

/// Where the supervisor subscribes its programs' listeners: the
/// intproxy's incoming side, under an id of its own.
pub type Subscriber = (Arc<Incoming>, LayerId);

/// What a supervisor answers with.
pub struct Setup {
    pub policy: Policy,
    /// Incoming traffic: where to subscribe, and the config's rules.
    pub incoming: Option<(Subscriber, IncomingConfig)>,
    /// The processes whose layer is connected to this intproxy.
    pub layered: Arc<Layered>,
}

pub struct Supervisor {
    pub listener: Listener,
    pub policy: Policy,
    pub incoming: Option<(Subscriber, IncomingConfig)>,
    callers: Callers,
    layered: Arc<Layered>,
    pub writebacks: Writebacks,
    pub listings: Listings,
    pub fdlinks: FdLinks,
    pub sockets: net::Sockets,
    pub datagrams: Datagrams,
    pub agent: AgentClient,
    relays: Mutex<Vec<UdpRelay>>,
}

impl Supervisor {
    /// Answers call `n` with `fd` installed in its process (close-on-exec
    /// when `cloexec`). `Gone` when the caller died or was interrupted
    /// meanwhile: our copy of the fd then closes with the caller's.
    pub fn install_fd(&self, n: &Notification, fd: BorrowedFd<'_>, cloexec: bool) -> Outcome {
        match self.listener.send_fd(n.id, fd, cloexec) {
            Ok(_) => Outcome::Answered,
            Err(e) => {
                debug!("cannot install the fd: {e}");
                Outcome::Gone
            }
        }
    }

    pub fn hold_relay(&self, relay: UdpRelay) {
        if let Ok(mut relays) = self.relays.lock() {
            relays.push(relay);
        }
    }
}

/// Serves `listener` until no process uses the filter any more. `hold`
/// is dropped then (it keeps the intproxy up).
pub async fn serve<H: Send + 'static>(
    listener: OwnedFd,
    setup: Setup,
    agent: AgentClient,
    hold: H,
) {
    let Setup {
        policy,
        incoming,
        layered,
    } = setup;
    let writebacks = match Writebacks::new() {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch written files (inotify): {e}");
            return;
        }
    };
    let sup = Arc::new(Supervisor {
        writebacks,
        listings: Listings::new(),
        fdlinks: FdLinks::default(),
        sockets: net::Sockets::default(),
        datagrams: Datagrams::default(),
        listener: Listener::new(listener),
        callers: Callers::new(policy.skip.clone()),
        layered,
        policy,
        incoming,
        agent,
        relays: Mutex::new(Vec::new()),
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let receiver = sup.clone();
    let spawned = std::thread::Builder::new()
        .name("seccomp-recv".into())
        .spawn(move || receive(&receiver, &tx));
    if let Err(e) = spawned {
        tracing::warn!("cannot start the seccomp receiver: {e}");
        return;
    }
    info!("supervising");
    let writing = sup.clone();
    let writebacks = tokio::spawn(async move { writing.writebacks.run(&writing.agent).await });
    let listeners = tokio::spawn(super::unlisten::watch(sup.clone()));
    while let Some(n) = rx.recv().await {
        let span = tracing::debug_span!("syscall", nr = n.nr, pid = n.pid, id = n.id);
        tokio::spawn(handle(sup.clone(), n).instrument(span));
    }
    info!("no process left under the filter");
    writebacks.abort();
    listeners.abort();
    sup.writebacks.finish(&sup.agent).await;
    sup.listings.clear();
    // The listeners' ports go back to the target.
    if let Some(((incoming, id), _)) = &sup.incoming {
        incoming.layer_gone(*id);
    }
    drop(hold);
}

/// Forwards notifications until the listener hangs up (every process
/// under the filter has exited) or the receiving side is gone. Calls that
/// continue locally are answered here at once, without a hop to the
/// runtime thread: they are most of the stopped calls.
fn receive(sup: &Supervisor, tx: &mpsc::UnboundedSender<Notification>) {
    loop {
        let mut pfd = libc::pollfd {
            fd: sup.listener.fd().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, -1) };
        if rc < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if pfd.revents & libc::POLLIN != 0 {
            // POLLIN means a notification is queued, so this does not block.
            match sup.listener.recv() {
                Ok(n) if continues_at_once(sup, &n) => {
                    // ENOENT: the caller died or was interrupted meanwhile.
                    let _ = sup.listener.respond(n.id, Reply::Continue);
                }
                Ok(n) => match answered_at_once(sup, &n) {
                    Some(outcome) => answer(sup, &n, outcome),
                    None => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                },
                // The caller died between poll and recv.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {}
                Err(e) => {
                    debug!("seccomp receive failed: {e}");
                    return;
                }
            }
        } else if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            return;
        }
    }
}

/// Whether the call runs as made, decided without waiting on anything:
/// another ABI, a process whose layer serves it, a path the policy keeps
/// local, or a caller left alone (asked last: it reads `/proc`).
/// Continuing is right even if the caller changed meanwhile: the call runs
/// as it was made.
fn continues_at_once(sup: &Supervisor, n: &Notification) -> bool {
    if n.arch != AUDIT_ARCH || sup.layered.has_layer(n.pid) {
        return true;
    }
    let call = Call::decode(n);
    if let Some((dirfd, path, write)) = call.path() {
        if fs::is_local(sup, n, dirfd, path, write) {
            return true;
        }
    }
    let datagram = matches!(
        call,
        Call::SendTo
            | Call::RecvFrom
            | Call::SendMsg
            | Call::RecvMsg
            | Call::SendMmsg
            | Call::RecvMmsg
    );
    if datagram && datagrams::continues_at_once(sup, n) {
        return true;
    }
    sup.callers.left_alone(n.pid)
}

/// A call answered on the receiver thread without waiting on anything
/// (no hop to the runtime), once [`continues_at_once`] said no: a
/// datagram to a relay that exists.
fn answered_at_once(sup: &Supervisor, n: &Notification) -> Option<Outcome> {
    match Call::decode(n) {
        Call::SendTo | Call::SendMsg => datagrams::send_at_once(sup, n),
        _ => None,
    }
}

async fn handle(sup: Arc<Supervisor>, n: Notification) {
    let outcome = dispatch(&sup, &n).await;
    answer(&sup, &n, outcome);
}

fn answer(sup: &Supervisor, n: &Notification, outcome: Outcome) {
    debug!(?outcome);
    if let Outcome::Reply(reply) = outcome {
        if let Err(e) = sup.listener.respond(n.id, reply) {
            // ENOENT: the thread died or was interrupted meanwhile.
            debug!("cannot answer: {e}");
        }
    }
}

async fn dispatch(sup: &Supervisor, n: &Notification) -> Outcome {
    match Call::decode(n) {
        Call::Open {
            dirfd,
            path,
            flags,
            mode,
        } => fs::open(sup, n, dirfd, path, flags, mode).await,
        Call::OpenHow { dirfd, path, how } => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }
            let how = super::memory::read(n.pid, how, 16).ok();
            let field = |i: usize| {
                how.as_ref()
                    .and_then(|b| b.get(i * 8..i * 8 + 8))
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_ne_bytes)
            };
            match (field(0), field(1)) {
                (Some(flags), Some(mode)) => {
                    fs::open(sup, n, dirfd, path, flags as i32, mode as u32).await
                }
                _ => Outcome::Reply(Reply::Continue),
            }
        }
        Call::Stat {
            dirfd,
            path,
            follow,
            out,
        } => fs::stat(sup, n, dirfd, path, follow, out).await,
        Call::Access { dirfd, path, mode } => fs::access(sup, n, dirfd, path, mode).await,
        Call::ReadLink {
            dirfd,
            path,
            buf,
            size,
        } => fs::readlink(sup, n, dirfd, path, buf, size).await,
        Call::Connect => net::connect(sup, n).await,
        Call::GetPeerName => net::getpeername(sup, n).await,
        Call::Listen => net::listen(sup, n).await,
        Call::Accept { flags } => net::accept(sup, n, flags).await,
        Call::SendTo | Call::SendMsg => datagrams::send(sup, n).await,
        Call::RecvFrom => datagrams::recvfrom(sup, n).await,
        Call::RecvMsg => datagrams::recvmsg(sup, n).await,
        Call::SendMmsg => mmsg::send(sup, n).await,
        Call::RecvMmsg => mmsg::recv(sup, n).await,
        Call::Other => Outcome::Reply(Reply::Continue),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;
    use std::time::Duration;

    use super::*;
    use crate::syscall::filter;

    /// Drops into a channel: tells the test the supervisor let go.
    struct Released(Option<tokio::sync::oneshot::Sender<()>>);

    impl Drop for Released {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }

    #[tokio::test]
    async fn a_caller_killed_mid_call_leaves_nothing_pending() {
        let prog = filter::program(&[libc::SYS_openat]);
        let mut pipe = [0; 2];
        // SAFETY: plain syscalls; the child only makes syscalls and exits.
        let child = unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            let child = libc::fork();
            if child == 0 {
                let fd = filter::install_program(&prog).unwrap_or(-1);
                libc::write(pipe[1], (&fd as *const i32).cast(), 4);
                // Remote under the default config: stops until answered.
                libc::openat(libc::AT_FDCWD, c"/app/remote-file".as_ptr(), libc::O_RDONLY);
                libc::_exit(0);
            }
            child
        };
        let mut number = [0u8; 4];
        // SAFETY: reading 4 bytes into `number`.
        assert_eq!(
            unsafe { libc::read(pipe[0], number.as_mut_ptr().cast(), 4) },
            4
        );
        let remote_fd = i32::from_ne_bytes(number);
        assert!(remote_fd >= 0, "the child could not install the filter");
        // SAFETY: plain syscalls; the returned fds are owned at once.
        let listener = unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, child, 0);
            assert!(pidfd >= 0);
            let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd, remote_fd, 0);
            libc::close(pidfd as i32);
            assert!(copy >= 0, "{}", std::io::Error::last_os_error());
            OwnedFd::from_raw_fd(copy as i32)
        };
        let (agent, mut sent) = AgentClient::detached();
        let policy = Policy::new(&mirrord_config::MirrordConfig::default()).unwrap();
        let (released, was_released) = tokio::sync::oneshot::channel();
        let setup = Setup {
            policy,
            incoming: None,
            layered: Arc::default(),
        };
        let serving = tokio::spawn(serve(listener, setup, agent, Released(Some(released))));
        // The open reaches the agent, which never answers: a call in flight.
        let asked = sent
            .eventually(Duration::from_secs(2), |sent| sent.try_recv_request())
            .await;
        assert!(
            matches!(&asked, Some(mirrord_protocol::Request::Open { path, .. }) if path == b"/app/remote-file"),
            "{asked:?}"
        );
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(child, libc::SIGKILL);
            libc::waitpid(child, std::ptr::null_mut(), 0);
            libc::close(pipe[0]);
            libc::close(pipe[1]);
        }
        tokio::time::timeout(Duration::from_secs(3), was_released)
            .await
            .expect("the supervisor still holds the intproxy after its caller died")
            .unwrap();
        tokio::time::timeout(Duration::from_secs(3), serving)
            .await
            .expect("the supervisor did not end")
            .unwrap();
    }
}
