//! `mirrord ide`: the service every editor extension talks to, a language
//! server over stdio (tower-lsp).
//!
//! - Config documents (`mirrord.json`, `.mirrord/*.json`, `*.mirrord.json`,
//!   their TOML and YAML forms, and the `mirrord` objects of
//!   `.vscode/launch.json`): diagnostics from the config crate's own checks
//!   ([`diagnostics`]), completion and hover from its schema ([`assist`]).
//! - `mirrord/*` methods ([`protocol`]): list targets, prepare a launch
//!   (the launch rewrite shared with the DAP proxy, [`prepare`]), list and
//!   end sessions.
//!
//! # Guarantees
//!
//! The service owns the sessions it starts ([`sessions`]): each ends on
//! `mirrord/endSession`, when its debuggee is gone (its intproxy exits
//! after the last layer disconnects), on `shutdown`, and when stdin closes
//! (the editor went away) or on SIGTERM. Nothing is left running.

mod assist;
mod diagnostics;
mod documents;
mod json;
mod line_index;
mod line_scan;
mod prepare;
mod protocol;
mod schema;
mod server;
mod sessions;
#[cfg(test)]
mod test_support;
mod toml_context;
mod toml_tree;
mod yaml_context;
mod yaml_tree;

use std::sync::Arc;

use anyhow::Context as _;
use tower_lsp::{LspService, Server as Transport};

use self::server::Server;
use self::sessions::Sessions;

#[derive(clap::Args, Debug)]
pub struct IdeArgs {
    /// Talk LSP on stdin/stdout (the only transport, and the default;
    /// accepted because language clients pass it).
    #[arg(long)]
    pub stdio: bool,
}

/// Serves one editor on stdio until it goes away.
pub fn run(_args: IdeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let sessions = Arc::new(Sessions::default());
    runtime.block_on(serve(sessions.clone()));
    // Whatever ended the service, its sessions end with it.
    sessions.end_all();
    // A read of stdin may still be blocked in a runtime thread: do not wait for it.
    runtime.shutdown_background();
    Ok(())
}

async fn serve(sessions: Arc<Sessions>) {
    let (service, socket) = LspService::build(|client| Server::new(client, sessions))
        .custom_method(protocol::LIST_TARGETS, Server::list_targets)
        .custom_method(protocol::PREPARE_LAUNCH, Server::prepare_launch)
        .custom_method(protocol::END_SESSION, Server::end_session)
        .custom_method(protocol::SESSIONS, Server::list_sessions)
        .finish();
    let transport = Transport::new(tokio::io::stdin(), tokio::io::stdout(), socket).serve(service);
    tokio::select! {
        _ = transport => tracing::info!("the editor closed the stream"),
        _ = crate::dap::wait_for_signal() => tracing::info!("signalled: ending the sessions"),
    }
}
