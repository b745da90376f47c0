//! `mirrord-agent`: the CLI and the agent's lifetime (start, readiness line,
//! the reasons to exit, and a clean exit on each of them).

mod container;
mod dns;
mod env;
mod files;
mod fs_kind;
mod handles;
mod listener;
mod mirror;
mod netns;
mod outgoing;
mod root;
mod server;
mod session;
mod side_stream;
mod steal;
mod target;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::listener::Listener;
use crate::server::{Activity, Server};
use crate::session::Shared;
use crate::target::Target;
use mirrord_protocol::Endpoint;

/// Serves a target's files, environment, DNS and outgoing connections to
/// mirrord clients.
#[derive(Parser, Debug)]
#[command(name = "mirrord-agent", version)]
struct Cli {
    /// The process whose root and network namespace to serve; without it
    /// the agent is targetless (its own namespace, root `/`, empty env).
    #[arg(long, conflicts_with = "container_id")]
    target_pid: Option<u32>,
    /// The target container's ID as its pod's status names it
    /// (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`): its main
    /// process is found in `/proc/*/cgroup` and becomes the target PID.
    #[arg(long)]
    container_id: Option<String>,
    /// Where to listen for clients.
    /// `IP:PORT`, or `unix:@NAME` for an abstract Unix socket.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: Endpoint,
    /// A secret every client must present in its Hello.
    #[arg(long, env = "MIRRORD_AGENT_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Log filter (`info`, `debug`, `mirrord_agent=trace`...), to stderr.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Exit when stdin reaches end of file (the parent died or let go).
    #[arg(long)]
    stdin_lifeline: bool,
    /// Exit when no client has been connected for this many seconds (after
    /// the first client).
    #[arg(long, value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Internal: run as the steal watchdog of the agent whose pipe is on
    /// stdin, removing this iptables chain when the agent is gone.
    #[arg(long, hide = true)]
    watchdog_chain: Option<String>,
    /// Exit when no client has come within this many seconds of the start
    /// (a cluster agent whose CLI died before connecting).
    #[arg(long, value_name = "SECS")]
    first_client_timeout: Option<u64>,
}

/// Why the agent stops, with its exit code.
struct Exit {
    code: i32,
    reason: String,
}

fn main() {
    let cli = Cli::parse();
    if let Some(chain) = &cli.watchdog_chain {
        std::process::exit(steal::watchdog::run(chain, cli.target_pid));
    }
    init_logs(&cli.log_level);
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mirrord-agent: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn init_logs(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|e| {
        eprintln!("mirrord-agent: bad --log-level {level:?} ({e}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    mirrord_protocol::chunk::keep_freed_chunks();
    // `Open` and `Mkdir` modes arrive with the program's umask already
    // applied by the layer; the agent's own umask must not narrow them again.
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
    if !mirrord_protocol::limits::raise_fd_limit() {
        tracing::debug!("cannot raise the descriptor limit");
    }
    let target_pid = match (&cli.container_id, cli.target_pid) {
        (Some(id), _) => {
            let pid = container::find_pid(std::path::Path::new("/proc"), id)?;
            tracing::info!(container = %id, pid, "found the target container's process");
            Some(pid)
        }
        (None, pid) => pid,
    };
    let target = match target_pid {
        Some(pid) => Target::attach(pid)?,
        None => Target::targetless()?,
    };
    let factory = netns::SocketFactory::start(target.netns)?;
    // When every filesystem of the target is local, file operations run
    // inline and one thread serves everything (a hand-off between tasks is
    // then a queue push, not a thread wake-up). Otherwise slow operations
    // run in place (`block_in_place`), which needs a second worker to take
    // over the other tasks meanwhile.
    let inline_paths = fs_kind::target_mounts_local(target.pid);
    let runtime = if inline_paths {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let root = Arc::new(target.root);
    let stealer = steal::Stealer::new(target.pid, factory.clone());
    let mirrorer = mirror::Mirrorer::new(factory.clone());
    let shared = Arc::new(Shared {
        stealer: stealer.clone(),
        mirrorer: mirrorer.clone(),
        target_pid: target.pid,
        resolver: dns::Resolver::new(root.clone(), factory.clone()),
        root,
        factory,
        secret: cli.secret.filter(|s| !s.is_empty()),
        inline_paths,
    });
    let lifetime = Lifetime {
        stdin_lifeline: cli.stdin_lifeline,
        idle_timeout: cli.idle_timeout,
        first_client_timeout: cli.first_client_timeout,
        target_pid: target.pid,
        target_exit: target.exit,
    };
    let code = runtime.block_on(async {
        let code = serve(cli.listen, shared, lifetime).await;
        // Every exit path that reaches here (signals, the lifeline, the
        // target's exit, errors) gives the target its ports back.
        stealer.shutdown().await;
        mirrorer.shutdown().await;
        code
    })?;
    // Blocking threads (a stdin read, a stuck file operation) must not keep
    // the process alive.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(code)
}

/// What ends the agent besides signals.
struct Lifetime {
    stdin_lifeline: bool,
    idle_timeout: Option<u64>,
    first_client_timeout: Option<u64>,
    target_pid: Option<u32>,
    target_exit: Option<target::ExitWatch>,
}

async fn serve(listen: Endpoint, shared: Arc<Shared>, lifetime: Lifetime) -> anyhow::Result<i32> {
    let Lifetime {
        stdin_lifeline: lifeline,
        idle_timeout: idle,
        first_client_timeout: first,
        target_pid: pid,
        target_exit,
    } = lifetime;
    // Handlers first: a SIGTERM right after the readiness line must still
    // take the graceful path.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let listener = Listener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr(&listen)?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "mirrord-agent listening on {addr}")?;
        stdout.flush()?;
    }
    tracing::info!(%addr, target_pid = ?pid, "serving");

    let (shutdown_tx, shutdown_rx) = watch::channel(None);
    let server = Server::new(listener, shared, shutdown_rx);
    let activity = server.activity();
    let first_activity = server.activity();
    let mut server = tokio::spawn(server.run());

    let exit = tokio::select! {
        _ = sigterm.recv() => Exit { code: 0, reason: "mirrord-agent received SIGTERM".into() },
        _ = sigint.recv() => Exit { code: 0, reason: "mirrord-agent received SIGINT".into() },
        _ = stdin_eof(), if lifeline => Exit { code: 0, reason: "mirrord-agent's parent let go (stdin closed)".into() },
        _ = idle_for(activity, Duration::from_secs(idle.unwrap_or(0))), if idle.is_some() => Exit {
            code: 0,
            reason: format!("no client for {}s", idle.unwrap_or(0)),
        },
        _ = no_first_client(first_activity, Duration::from_secs(first.unwrap_or(0))), if first.is_some() => Exit {
            code: 0,
            reason: format!("no client came within {}s", first.unwrap_or(0)),
        },
        _ = wait_target(target_exit), if pid.is_some() => Exit {
            code: 1,
            reason: format!("target process {} exited", pid.unwrap_or(0)),
        },
        r = &mut server => {
            r.context("the server stopped")?;
            Exit { code: 1, reason: "the server stopped".into() }
        }
    };
    tracing::info!(reason = %exit.reason, "shutting down");
    let _ = shutdown_tx.send(Some(exit.reason.clone()));
    if !server.is_finished()
        && tokio::time::timeout(Duration::from_secs(3), &mut server)
            .await
            .is_err()
    {
        tracing::warn!("connections did not close in time");
        server.abort();
    }
    if exit.code != 0 {
        eprintln!("mirrord-agent: {}", exit.reason);
    }
    Ok(exit.code)
}

async fn wait_target(exit: Option<target::ExitWatch>) {
    match exit {
        Some(watch) => watch.wait().await,
        None => std::future::pending().await,
    }
}

async fn stdin_eof() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Resolves once no client has been connected for `limit`, counting only
/// after the first client came.
async fn idle_for(mut activity: watch::Receiver<Activity>, limit: Duration) {
    loop {
        let idle = {
            let a = *activity.borrow_and_update();
            a.ever && a.connected == 0
        };
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(limit) => return,
                r = activity.changed() => if r.is_err() { return },
            }
        } else if activity.changed().await.is_err() {
            return;
        }
    }
}

/// Resolves if no client has come within `limit`; never once one has.
async fn no_first_client(mut activity: watch::Receiver<Activity>, limit: Duration) {
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        if activity.borrow_and_update().ever {
            return std::future::pending().await;
        }
        tokio::select! {
            _ = &mut deadline => return,
            r = activity.changed() => if r.is_err() { return std::future::pending().await },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn without_a_first_client_the_agent_gives_up_and_with_one_never() {
        let (_tx, rx) = watch::channel(Activity::default());
        let alone = tokio::spawn(no_first_client(rx, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!alone.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(alone.is_finished(), "no client within 5 s");

        let (tx, rx) = watch::channel(Activity::default());
        let served = tokio::spawn(no_first_client(rx, Duration::from_secs(5)));
        tx.send_replace(Activity {
            connected: 1,
            ever: true,
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!served.is_finished(), "a client came");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_timer_starts_after_the_first_client_and_resets() {
        let (tx, rx) = watch::channel(Activity::default());
        let idle = tokio::spawn(idle_for(rx, Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "no client yet: never idle");
        tx.send_replace(Activity {
            connected: 1,
            ever: true,
        });
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!idle.is_finished(), "a client is connected");
        tx.send_replace(Activity {
            connected: 0,
            ever: true,
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        tx.send_replace(Activity {
            connected: 1,
            ever: true,
        });
        tx.send_replace(Activity {
            connected: 0,
            ever: true,
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!idle.is_finished(), "the timer restarted");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(idle.is_finished());
    }
}
