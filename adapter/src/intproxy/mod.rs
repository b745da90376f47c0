//! `mirrord intproxy`: the detached process that owns the one agent
//! connection and serves every layer of the process tree.
//!
//! # Flow
//!
//! 1. Detach (fork, the parent exits, `setsid`): the program `mirrord exec`
//!    becomes never has the intproxy as its child.
//! 2. Start the agent (a local process for `pid/N` and `targetless`),
//!    connect, handshake, fetch the target's environment.
//! 3. Listen on the local loopback for layers and print one JSON line
//!    ([`Announce::Ready`]) on stdout; `mirrord exec` waits for it.
//! 4. Serve until no layer is connected and the watched program has exited
//!    (after a short grace period, so an exec'd child can reconnect), or
//!    SIGTERM. Then stop the agent.
//!
//! # Guarantees
//!
//! - The agent never outlives the intproxy: it is stopped on every normal
//!   exit, and its stdin lifeline ends it if the intproxy is killed. A
//!   cluster agent's Job is deleted on every normal exit and on SIGTERM;
//!   if the intproxy is killed, the agent's idle timeout ends the Job and
//!   its TTL removes it.
//! - When the agent dies, every waiting and later request fails at once
//!   with an errno and a logged reason; the program never hangs on it.

pub(crate) mod agent;
mod cluster;
pub(crate) mod incoming;
mod layers;
mod lifetime;
pub(crate) mod outgoing;
mod side_stream;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use mirrord_protocol::{Request, Response};
use serde::{Deserialize, Serialize};
use tokio::net::UnixListener;

use crate::local_socket;
use tracing::{info, warn};

/// What the intproxy prints on stdout, one JSON line each: progress steps
/// (a cluster agent's start) and a re-picked target, then `Ready` or
/// `Error`.
#[derive(Serialize, Deserialize, Debug)]
pub enum Announce {
    /// A start-up step, for the CLI's progress display.
    Progress {
        step: String,
    },
    /// The pod the CLI resolved changed before the agent was created
    /// (`change` says how); the workload was resolved again (`summary`:
    /// the pod picked now, as [`crate::kube::Resolved::summary`] says it).
    Repicked {
        change: String,
        summary: String,
    },
    Ready {
        /// Where layers connect (`unix:@NAME`).
        addr: String,
        /// The target's environment.
        env: Vec<(Vec<u8>, Vec<u8>)>,
        target_pid: Option<u32>,
        /// The intproxy's own PID: SIGTERM ends the session at once.
        pid: u32,
        /// Where `mirrord exec` hands a seccomp listener to the supervisor
        /// (an abstract socket name), for the syscall path.
        #[serde(default)]
        supervisor: String,
    },
    Error {
        message: String,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct IntproxyArgs {
    /// Join this local process (`pid/N` targets); none means targetless.
    #[arg(long)]
    pub target_pid: Option<u32>,
    /// The `mirrord-agent` binary to start.
    #[arg(long)]
    pub agent_path: PathBuf,
    #[arg(long, default_value = "info")]
    pub agent_log_level: String,
    #[arg(long, default_value_t = 30)]
    pub agent_startup_timeout: u64,
    /// Stay up while this process lives (the program `mirrord exec` ran).
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// Until the first layer connects, stay up only while this process
    /// lives (the IDE service that prepared a launch): a launch that never
    /// runs leaves nothing once its owner is gone.
    #[arg(long)]
    pub owner_pid: Option<u32>,
    /// Milliseconds to wait, once nothing is connected, before exiting.
    #[arg(long, default_value_t = 500)]
    pub grace_ms: u64,
    /// Fork into the background first (used by `mirrord exec`).
    #[arg(long)]
    pub detach: bool,
    /// The resolved config (JSON) of a Kubernetes target: the agent runs
    /// as a Job in the cluster instead of as a local process.
    #[arg(long)]
    pub kube_config_json: Option<String>,
    /// The pod the CLI resolved the target to (`kube::Resolved` as JSON):
    /// the intproxy does not resolve again.
    #[arg(long, requires = "kube_config_json")]
    pub kube_resolved_json: Option<String>,
}

/// The agent the intproxy started, and stops.
enum AgentHandle {
    Local(agent::AgentProcess),
    Cluster(crate::kube::launch::AgentPod),
}

impl AgentHandle {
    fn last_words(&self) -> String {
        match self {
            AgentHandle::Local(process) => process.last_words(),
            AgentHandle::Cluster(pod) => {
                format!(" (agent pod {} in namespace {})", pod.pod, pod.namespace)
            }
        }
    }

    async fn stop(self) {
        match self {
            AgentHandle::Local(process) => process.stop().await,
            AgentHandle::Cluster(pod) => {
                if let Err(e) = pod.delete().await {
                    warn!("cannot delete the agent's Job {}: {e}", pod.job);
                }
            }
        }
    }
}

/// Runs the intproxy; the process exits when this returns.
pub fn run(args: IntproxyArgs) -> anyhow::Result<()> {
    // Whatever else the program's environment left open (pipes of a shell,
    // a test harness, an IDE) is not ours to keep open for the session.
    // SAFETY: plain syscall; no thread exists yet.
    unsafe { libc::close_range(3, u32::MAX, 0) };
    mirrord_protocol::chunk::keep_freed_chunks();
    // Each relayed connection holds several descriptors here.
    mirrord_protocol::limits::raise_fd_limit();
    if args.detach {
        detach()?;
    }
    // One thread: the intproxy only moves frames between sockets, and a
    // hand-off between tasks on one thread costs a queue push instead of a
    // cross-thread wake-up (it halves a remote call's latency).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

/// Forks; the parent exits at once and the child leaves the session, so the
/// intproxy is nobody's child once the program is exec'd.
fn detach() -> anyhow::Result<()> {
    // SAFETY: called before any thread exists (no runtime yet).
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()).context("fork"),
        0 => {
            // SAFETY: plain syscall in the child.
            unsafe { libc::setsid() };
            Ok(())
        }
        // SAFETY: the parent leaves without running destructors or atexit.
        _ => unsafe { libc::_exit(0) },
    }
}

pub(crate) fn print_ready(ready: &Announce) {
    use std::io::Write;
    let line = serde_json::to_string(ready).unwrap_or_else(|_| "{}".into());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn serve(args: IntproxyArgs) -> anyhow::Result<()> {
    let started = match start(&args).await {
        Ok(started) => started,
        Err(e) => {
            print_ready(&Announce::Error {
                message: format!("{e:#}"),
            });
            return Err(e);
        }
    };
    let Started {
        agent,
        client,
        listener,
        supervisor,
    } = started;
    // Nothing more goes to stdout: let `mirrord exec` see it close.
    close_stdout();
    let (layers, count) = layers::Layers::new(client.clone());
    let watch = lifetime::Watch {
        count,
        main_pid: args.watch_pid,
        owner_pid: args.owner_pid,
        grace: Duration::from_millis(args.grace_ms),
        idle: client.stopping_flag(),
    };
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(layers.clone().serve(stream));
                }
                Err(e) => warn!("accept failed: {e}"),
            }
        }
    };
    let supervise = async {
        loop {
            match supervisor.accept().await {
                Ok((stream, _)) => {
                    let hold = layers.hold();
                    let subscriber = layers.subscriber();
                    let layered = layers.layered();
                    tokio::spawn(supervise(stream, client.clone(), subscriber, layered, hold));
                }
                Err(e) => warn!("accept failed: {e}"),
            }
        }
    };
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    tokio::select! {
        () = accept => {}
        () = supervise => {}
        reason = watch.until_done() => info!("exiting: {reason}"),
        _ = sigterm.recv() => info!("exiting: SIGTERM"),
    }
    if let Some(reason) = client.lost_reason() {
        info!("agent was lost earlier: {reason}{}", agent.last_words());
    }
    client
        .stopping_flag()
        .store(true, std::sync::atomic::Ordering::Relaxed);
    agent.stop().await;
    Ok(())
}

struct Started {
    agent: AgentHandle,
    client: agent::AgentClient,
    listener: UnixListener,
    supervisor: UnixListener,
}

/// Takes one seccomp listener from `mirrord exec` and supervises it; the
/// hold keeps the intproxy up until no process uses that filter.
async fn supervise(
    stream: tokio::net::UnixStream,
    client: agent::AgentClient,
    subscriber: crate::syscall::supervisor::Subscriber,
    layered: std::sync::Arc<crate::syscall::layered::Layered>,
    hold: layers::Held,
) {
    use crate::syscall::{handoff, supervisor};
    let received = match handoff::receive(stream).await {
        Ok(received) => received,
        Err(e) => return warn!("{e}"),
    };
    let config = mirrord_config::from_json(&received.config_json).map_err(|e| e.to_string());
    let setup = config.and_then(|config| {
        let policy = mirrord_config::policy::Policy::new(&config).map_err(|e| e.to_string())?;
        Ok(supervisor::Setup {
            policy,
            incoming: Some((subscriber, config.feature.network.incoming)),
            layered,
        })
    });
    let setup = match setup {
        Ok(setup) => setup,
        Err(e) => return received.refuse(&format!("bad config: {e}")).await,
    };
    let listener = received.listener.try_clone();
    let listener = match listener {
        Ok(listener) => listener,
        Err(e) => return received.refuse(&e.to_string()).await,
    };
    received.accept().await;
    supervisor::serve(listener, setup, client, hold).await;
}

async fn start(args: &IntproxyArgs) -> anyhow::Result<Started> {
    let timeout = Duration::from_secs(args.agent_startup_timeout);
    let (agent, client, target_pid) = match &args.kube_config_json {
        Some(config_json) => {
            let resolved = args.kube_resolved_json.as_deref();
            let (pod, client, target_pid) = cluster::start(config_json, resolved, timeout).await?;
            (AgentHandle::Cluster(pod), client, target_pid)
        }
        None => {
            let (agent_process, agent_addr) = agent::AgentProcess::spawn(
                &args.agent_path,
                args.target_pid,
                &args.agent_log_level,
                timeout,
            )
            .await?;
            match tokio::time::timeout(timeout, agent::connect(&agent_addr, None)).await {
                Ok(Ok((client, pid))) => (AgentHandle::Local(agent_process), client, pid),
                Ok(Err(e)) => return Err(e.context(agent_process.last_words())),
                Err(_) => anyhow::bail!("the agent did not answer within {} s", timeout.as_secs()),
            }
        }
    };
    let env = match client.request(Request::GetEnv).await {
        Ok(Response::Env(env)) => env,
        Ok(other) => anyhow::bail!("the agent answered GetEnv with {other:?}"),
        Err(e) => anyhow::bail!("cannot read the target's environment: {e}"),
    };
    let name = local_socket::unique_name("intproxy");
    let listener = local_socket::bind_abstract(&name).context("cannot listen for layers")?;
    let supervisor_name = local_socket::unique_name("supervisor");
    let supervisor = local_socket::bind_abstract(&supervisor_name)
        .context("cannot listen for seccomp listeners")?;
    print_ready(&Announce::Ready {
        addr: mirrord_protocol::Endpoint::Unix(name).to_string(),
        env,
        target_pid,
        pid: std::process::id(),
        supervisor: supervisor_name,
    });
    Ok(Started {
        agent,
        client,
        listener,
        supervisor,
    })
}

/// Writes queued messages until the queue closes: whatever was queued
/// meanwhile goes out in one write (answers and pipelined writes come in
/// bursts). Returns the first write error.
async fn write_queued<M, S>(
    sink: &mut S,
    queue: &mut tokio::sync::mpsc::UnboundedReceiver<M>,
) -> Result<(), S::Error>
where
    S: futures::Sink<M> + Unpin,
{
    use futures::SinkExt;
    while let Some(msg) = queue.recv().await {
        sink.feed(msg).await?;
        while let Ok(next) = queue.try_recv() {
            sink.feed(next).await?;
        }
        sink.flush().await?;
    }
    Ok(())
}

fn close_stdout() {
    // SAFETY: replacing fd 1 with /dev/null; plain syscalls.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if null >= 0 {
            libc::dup2(null, 1);
            libc::close(null);
        }
    }
}
