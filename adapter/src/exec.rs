//! `mirrord exec`: start a session and replace this process with the
//! program, so its PID, signals, terminal and exit code are its own.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

use anyhow::Context;

use crate::cli::{ConfigArgs, ExecArgs};
use crate::progress::Progress;
use crate::session::{self, Session};
use crate::syscall::{
    self,
    detect::{self, Route},
};

/// Runs the program; returns only on failure.
pub fn run(args: ExecArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut config = load_config(&args.config)?;
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    session::keep_local(&mut config, &cwd);
    let (route, exe) = interception(&config, &args.command[0])?;
    let progress = Progress::new("loading the config");
    let session = Session::start(&config, Some(std::process::id()), &progress)?;
    progress.finish(Some(&format!(
        "running {} in {} (ready in {} ms)",
        args.command[0],
        session.target,
        started.elapsed().as_millis()
    )));
    let vars = match route {
        Route::Layer => session::Vars::Layer,
        // For its dynamic children (the program itself does not load the
        // layer; in a Go program it stays inert).
        Route::Syscall if detect::layer_for_children(exe) => session::Vars::LayerForChildren,
        Route::Syscall => session::Vars::TargetOnly,
    };
    let env = session.environment(session::current_env(), vars);
    if route == Route::Syscall {
        // Last: from here on, the listed syscalls of this process stop in
        // the supervisor.
        syscall::install_and_hand_off(&session.supervisor, session.config())?;
    }
    // On macOS a protected program would drop the layer: its patched copy
    // runs instead, under the name the user typed.
    let program = crate::launch::sip::swap_program(
        &args.command[0],
        &cwd,
        mirrord_sip::Host::current().as_ref(),
    )?;
    if let Some(copy) = &program {
        tracing::info!(original = %args.command[0], copy = %copy.display(), "running a patched copy (macOS SIP)");
    }
    let err = Command::new(
        program
            .as_deref()
            .unwrap_or(std::path::Path::new(&args.command[0])),
    )
    .arg0(&args.command[0])
    .args(&args.command[1..])
    .env_clear()
    .envs(env)
    .exec();
    Err(err).with_context(|| format!("cannot run `{}`", args.command[0]))
}

/// Which path the program gets, and what it is; for the syscall path,
/// checks now (before any session starts) that the kernel offers seccomp
/// user notification.
fn interception(
    config: &mirrord_config::MirrordConfig,
    program: &str,
) -> anyhow::Result<(Route, detect::Executable)> {
    let mode = config.feature.interception;
    let exe = match detect::find_program(program, std::env::var_os("PATH").as_deref()) {
        Ok(path) => detect::inspect(&path).unwrap_or(detect::Executable::Other),
        // `exec` reports a missing program itself.
        Err(_) => detect::Executable::Other,
    };
    let route = detect::choose(mode, exe);
    tracing::debug!(?exe, %mode, ?route, "interception");
    if route == Route::Syscall {
        syscall::filter::check_available()?;
    }
    Ok((route, exe))
}

/// Loads the config: file, then `MIRRORD_*` variables, then flags.
pub fn load_config(args: &ConfigArgs) -> anyhow::Result<mirrord_config::MirrordConfig> {
    let options = mirrord_config::LoadOptions {
        file: args.config_file.clone(),
        cwd: std::env::current_dir().context("cannot read the working directory")?,
        env: std::env::vars().collect(),
        cli: args.overrides(),
        inline: None,
    };
    Ok(mirrord_config::load(&options)?)
}
