//! `mirrord dap` (also installed as `mirrord-dap`): a Debug Adapter
//! Protocol proxy that runs any debug configuration under mirrord with the
//! debug adapter the client already uses.
//!
//! # Flow
//!
//! 1. The client connects (stdio, or `--listen`); the proxy starts the real
//!    adapter (the command after `--`) or connects to it (`--connect`).
//! 2. Everything is forwarded byte for byte ([`proxy`]); `initialize`
//!    goes through at once.
//! 3. `launch`: the proxy loads the config (its flags, replaced by the
//!    configuration's `mirrord` object), asks the client for a target if
//!    none is set, starts the session (progress shown to the client), and
//!    forwards the launch with the session's environment in the field and
//!    shape the adapter reads ([`crate::launch`]).
//! 4. Teardown on `disconnect`, the client closing the stream, the adapter
//!    going away or SIGTERM: the adapter and everything it started are
//!    stopped, and the session (intproxy and agent) is ended.

mod adapter_process;
mod framing;
mod message;
mod outlet;
mod patch;
mod picker_file;
mod proxy;
mod scan;
mod seq;
mod sessions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{info, info_span, warn, Instrument};

use self::adapter_process::AdapterProcess;
use self::proxy::{End, Proxy, Reader, Writer};
use self::sessions::Sessions;
use crate::cli::ConfigArgs;
use crate::syscall::standby::Standby;

#[derive(clap::Args, Debug)]
pub struct DapArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Connect to an adapter listening on HOST:PORT (such as `dlv dap
    /// --listen`); the command after `--`, if any, is started first.
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// Serve DAP clients on HOST:PORT instead of stdio, one stream per
    /// connection.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// The debug adapter's command and arguments.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// What every stream of this proxy shares.
pub struct Context {
    pub config: ConfigArgs,
    command: Vec<String>,
    connect: Option<String>,
    pub sessions: Sessions,
    /// On macOS, how protected programs are swapped for patched copies.
    pub sip_host: Option<mirrord_sip::Host>,
    /// Whether adapters start under the syscall path's filter.
    pub filtered: bool,
    /// The listening adapter's seccomp listener, for the first session.
    pub standby: std::sync::Mutex<Option<Standby>>,
}

impl Context {
    /// The adapter's command (its program), for the environment's shape.
    pub fn adapter_command(&self) -> Option<&str> {
        self.command.first().map(String::as_str)
    }

    /// How to name the adapter in messages.
    pub fn adapter_name(&self) -> String {
        match (&self.connect, self.command.first()) {
            (_, Some(program)) => program.clone(),
            (Some(addr), None) => addr.clone(),
            (None, None) => "?".into(),
        }
    }
}

/// Runs the proxy until its stream (stdio) or its listener (`--listen`,
/// until SIGTERM) is done.
pub fn run(args: DapArgs) -> anyhow::Result<()> {
    if args.command.is_empty() && args.connect.is_none() {
        bail!(
            "no debug adapter given: put its command after `--` (e.g. `mirrord dap -- python3 -m \
             debugpy.adapter`), or use --connect HOST:PORT for an adapter that listens"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = runtime.block_on(serve(args));
    // A read of stdin may still be blocked in a runtime thread: do not wait for it.
    runtime.shutdown_background();
    result
}

async fn serve(args: DapArgs) -> anyhow::Result<()> {
    let filtered = filtered(&args.config, &args.command);
    // An adapter that listens is started once and serves every stream.
    let mut server = match (&args.connect, args.command.is_empty()) {
        (Some(_), false) => Some(AdapterProcess::spawn(&args.command, false, filtered)?.0),
        _ => None,
    };
    let ctx = Arc::new(Context {
        config: args.config,
        command: args.command,
        connect: args.connect,
        sessions: Sessions::default(),
        sip_host: mirrord_sip::Host::current(),
        filtered,
        standby: std::sync::Mutex::new(server.as_mut().and_then(AdapterProcess::take_standby)),
    });
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = shutdown_tx.send(true);
    });
    let result = match &args.listen {
        None => {
            let (client_in, client_out) = stdio();
            stream(ctx.clone(), client_in, client_out, shutdown)
                .instrument(info_span!("dap", client = "stdio"))
                .await
        }
        Some(addr) => listen(ctx.clone(), addr, shutdown).await,
    };
    if let Some(server) = server {
        server.stop(Duration::from_secs(1)).await;
    }
    ctx.sessions.end_all();
    result
}

/// Whether the adapter starts under the syscall path's filter, decided
/// before any launch: `--interception` (or the config file's
/// `feature.interception`) `syscall`, or under `auto` a Go debugger
/// (`dlv`), whose debuggees the layer cannot enter. Without seccomp user
/// notification the adapter starts without it (the debuggee then gets the
/// pod's environment only).
fn filtered(config: &ConfigArgs, command: &[String]) -> bool {
    use mirrord_config::Interception;
    let mode = config.interception.or_else(|| {
        crate::exec::load_config(config)
            .ok()
            .map(|c| c.feature.interception)
    });
    let wanted = match mode {
        Some(Interception::Syscall) => true,
        Some(Interception::Layer) => false,
        _ => command
            .first()
            .and_then(|program| std::path::Path::new(program).file_name())
            .is_some_and(|name| name == "dlv" || name == "dlv-dap"),
    };
    if wanted {
        if let Err(e) = crate::syscall::filter::check_available() {
            warn!("the debuggee gets the target's environment only: {e}");
            return false;
        }
    }
    wanted
}

/// The client's stdio: non-blocking pipes when they are pipes (as editors
/// and test harnesses give), else tokio's blocking-thread stdio.
fn stdio() -> (Reader, Writer) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let input = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd);
    let output = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd);
    let input: Reader = match input {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let output: Writer = match output {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

/// Resolves on SIGTERM, SIGINT or SIGHUP (never, if they cannot be watched).
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
}

/// `--listen`: one stream per client connection, until a signal.
async fn listen(
    ctx: Arc<Context>,
    addr: &str,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    eprintln!("mirrord dap listening on {local}");
    let mut streams = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, peer) = accepted.context("cannot accept a DAP client")?;
                let (read, write) = socket.into_split();
                let ctx = ctx.clone();
                let shutdown = shutdown.clone();
                streams.spawn(
                    async move {
                        if let Err(e) = stream(ctx, Box::new(read), Box::new(write), shutdown).await {
                            warn!("{e:#}");
                        }
                    }
                    .instrument(info_span!("dap", client = %peer)),
                );
            }
            _ = shutdown.changed() => break,
        }
    }
    while streams.join_next().await.is_some() {}
    Ok(())
}

/// One DAP stream: connect the adapter, proxy, clean up.
async fn stream(
    ctx: Arc<Context>,
    client_in: Reader,
    mut client_out: Writer,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The seccomp listener of the adapter this stream uses, if any: the
    // listening adapter's goes to the first stream that takes it.
    let mut standby = ctx.standby.lock().ok().and_then(|mut s| s.take());
    let (adapter_in, adapter_out, process): (Reader, Writer, _) = match &ctx.connect {
        Some(addr) => {
            let socket = match connect_with_retry(addr, Duration::from_secs(10)).await {
                Ok(socket) => socket,
                Err(e) => {
                    let text = format!("mirrord: {e:#}");
                    report_and_close(&mut client_out, &text).await;
                    return Err(e);
                }
            };
            let (read, write) = socket.into_split();
            (Box::new(read), Box::new(write), None)
        }
        None => match AdapterProcess::spawn(&ctx.command, true, ctx.filtered) {
            Ok((mut process, Some((out, input)))) => {
                standby = process.take_standby();
                (Box::new(out), Box::new(input), Some(process))
            }
            Ok((_, None)) => bail!("the debug adapter has no pipes"),
            Err(e) => {
                let text = format!("mirrord: {e:#}");
                report_and_close(&mut client_out, &text).await;
                return Err(e);
            }
        },
    };
    let (tx, rx) = mpsc::channel(16);
    let (end, lease) = Proxy::new(ctx.clone(), client_out, adapter_out, tx)
        .with_standby(standby)
        .run(client_in, adapter_in, rx, shutdown)
        .await;
    info!(?end, "DAP stream ended");
    if let Some(process) = process {
        let grace = match end {
            End::Normal => Duration::from_secs(1),
            End::Shutdown | End::AdapterLost => Duration::from_millis(100),
        };
        process.stop(grace).await;
    }
    if let Some(lease) = lease {
        ctx.sessions.release(lease);
    }
    Ok(())
}

/// Tells a client that never got a session why, in DAP terms.
async fn report_and_close(client: &mut Writer, text: &str) {
    let mut event = message::output("important", text);
    event["seq"] = 1.into();
    let _ = framing::write_message(client, &message::to_bytes(&event)).await;
    let mut terminated = message::event("terminated", serde_json::json!({}));
    terminated["seq"] = 2.into();
    let _ = framing::write_message(client, &message::to_bytes(&terminated)).await;
}

/// Connects to an adapter that may still be starting.
async fn connect_with_retry(addr: &str, within: Duration) -> anyhow::Result<TcpStream> {
    let started = Instant::now();
    loop {
        match TcpStream::connect(addr).await {
            Ok(socket) => {
                let _ = socket.set_nodelay(true);
                return Ok(socket);
            }
            Err(e) if started.elapsed() < within => {
                tracing::debug!("adapter at {addr} not ready: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot connect to the debug adapter at {addr} within {} s",
                        within.as_secs()
                    )
                })
            }
        }
    }
}
