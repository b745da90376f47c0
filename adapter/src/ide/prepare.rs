//! `mirrord/prepareLaunch`: a resolved debug configuration in, the same
//! configuration running under mirrord out. It is the launch rewrite the
//! DAP proxy uses (`crate::launch`): the configuration's `mirrord` object
//! is read and removed, the config loaded, a target asked for when none is
//! set, the session started and its environment written in the shape the
//! configuration's adapter reads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mirrord_config::Target;
use serde_json::Value;
use tower_lsp::jsonrpc;
use tower_lsp::Client;

use super::protocol::{
    PickTarget, PrepareLaunchParams, PrepareLaunchResult, Progress, ProgressParams, TargetList,
};
use super::sessions::Sessions;
use crate::cli::ConfigArgs;
use crate::launch::{self, MirrordSetting};
use crate::progress;
use crate::session::Session;

/// LSP's `RequestFailed`: the request was valid but could not be done.
const REQUEST_FAILED: i64 = -32803;

/// An error the editor shows as it is: it says what is wrong and what to do.
pub fn failed(message: impl Into<String>) -> jsonrpc::Error {
    jsonrpc::Error {
        code: jsonrpc::ErrorCode::ServerError(REQUEST_FAILED),
        message: message.into().into(),
        data: None,
    }
}

static NEXT_PROGRESS: AtomicU64 = AtomicU64::new(1);

pub async fn prepare_launch(
    client: &Client,
    sessions: &Arc<Sessions>,
    params: PrepareLaunchParams,
) -> jsonrpc::Result<PrepareLaunchResult> {
    let mut args = params.configuration;
    if args.get("request").and_then(Value::as_str) == Some("attach") {
        return Err(failed(
            "mirrord runs the program it debugs, so it needs a `launch` configuration: `attach` \
             cannot bring a running process into the target. Use a launch configuration, or set \
             \"mirrord\": false in this one.",
        ));
    }
    let setting = launch::take_mirrord(&mut args).map_err(|e| failed(format!("{e:#}")))?;
    if setting == MirrordSetting::Disabled {
        return Ok(PrepareLaunchResult {
            configuration: args,
            session_id: None,
        });
    }
    let workspace = workspace_dir(params.workspace_folder.as_deref())?;
    let mut base = ConfigArgs::default();
    let default_file = workspace.join(mirrord_config::DEFAULT_CONFIG_FILE);
    if default_file.is_file() {
        base.config_file = Some(default_file);
    }
    let mut config = launch::load_config_in(&base, &setting, &args, &workspace)
        .map_err(|e| failed(format!("the mirrord config is not valid: {e:#}")))?;
    if config.target.path.is_none() {
        config.target.path = Some(pick_target(client).await?);
    }
    let progress_id = format!("launch-{}", NEXT_PROGRESS.fetch_add(1, Ordering::Relaxed));
    let session = start(client, &progress_id, config).await?;
    let debug_type = args.get("type").and_then(Value::as_str).map(str::to_owned);
    // A Go debuggee gets the syscall path through its debugger (and the
    // layer's variables for its dynamic children); the rest the layer.
    let go = debug_type.as_deref() == Some("go");
    let vars = launch::debuggee_vars(&args, debug_type.as_deref(), None, go);
    let shape = launch::inject_env(&mut args, debug_type.as_deref(), None, &session, vars);
    if go {
        if let Err(e) = launch::go::route_debugger(&mut args, shape, &session) {
            session.end();
            return Err(failed(format!("{e:#}")));
        }
    }
    if let Err(e) = launch::sip::swap_protected(
        &mut args,
        debug_type.as_deref(),
        mirrord_sip::Host::current().as_ref(),
    ) {
        session.end();
        return Err(failed(format!("{e:#}")));
    }
    // Marked as prepared: a DAP proxy or a child configuration that sees
    // it again does not start a second session.
    args.insert(launch::MIRRORD_KEY.into(), Value::Bool(false));
    let target = session.target.clone();
    let session_id = sessions.add(session);
    progress_step(client, &progress_id, &format!("running in {target}"), true).await;
    Ok(PrepareLaunchResult {
        configuration: args,
        session_id: Some(session_id),
    })
}

/// The workspace folder as a directory (a path or a `file://` URI); this
/// process's working directory when the editor gave none.
fn workspace_dir(folder: Option<&str>) -> jsonrpc::Result<PathBuf> {
    match folder {
        Some(uri) if uri.starts_with("file://") => tower_lsp::lsp_types::Url::parse(uri)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or_else(|| {
                failed(format!(
                    "the workspace folder {uri} is not a local directory"
                ))
            }),
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => std::env::current_dir()
            .map_err(|e| failed(format!("cannot read the working directory: {e}"))),
    }
}

/// Asks the editor (`mirrord/pickTarget`) for a target.
async fn pick_target(client: &Client) -> jsonrpc::Result<Target> {
    let targets = crate::target::list_local();
    let answer = client
        .send_request::<PickTarget>(TargetList { targets })
        .await
        .map_err(|e| {
            failed(format!(
                "no target is set and the editor could not pick one ({}): set \"target\" in the \
                 mirrord config (e.g. \"pid/123\" or \"targetless\")",
                e.message
            ))
        })?;
    let Some(picked) = answer.target else {
        return Err(failed("no target was picked: the launch is cancelled"));
    };
    picked
        .parse::<Target>()
        .map_err(|e| failed(format!("the picked target is not valid: {e}")))
}

/// Starts the session on a blocking thread, reporting its steps as
/// `mirrord/progress` notifications.
async fn start(
    client: &Client,
    progress_id: &str,
    config: mirrord_config::MirrordConfig,
) -> jsonrpc::Result<Session> {
    let (steps_tx, mut steps) = tokio::sync::mpsc::unbounded_channel::<String>();
    let forward = {
        let client = client.clone();
        let id = progress_id.to_owned();
        tokio::spawn(async move {
            while let Some(step) = steps.recv().await {
                progress_step(&client, &id, &step, false).await;
            }
        })
    };
    let started = tokio::task::spawn_blocking(move || {
        let progress = progress::Progress::to_sink(Box::new(move |step: &str| {
            let _ = steps_tx.send(step.to_owned());
        }));
        // No watched PID: the intproxy ends after the debuggee's last
        // layer disconnects, which is how the service sees the debuggee go;
        // before the debuggee connects, it waits only while we live.
        Session::start_owned(&config, std::process::id(), &progress)
    })
    .await;
    // The sink was dropped with the blocking closure: the forwarder drains and ends.
    let _ = forward.await;
    match started {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(e)) => {
            progress_step(client, progress_id, "the session did not start", true).await;
            Err(failed(format!("{e:#}")))
        }
        Err(e) => Err(failed(format!("the session start failed: {e}"))),
    }
}

async fn progress_step(client: &Client, id: &str, message: &str, done: bool) {
    client
        .send_notification::<Progress>(ProgressParams {
            id: id.to_owned(),
            message: message.to_owned(),
            done,
        })
        .await;
}
