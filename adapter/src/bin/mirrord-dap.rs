//! `mirrord-dap ARGS` is `mirrord dap ARGS`: editors that take one adapter
//! executable (Helix, nvim-dap) can name this one.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mirrord = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("mirrord")))
        .filter(|path| path.exists());
    let Some(mirrord) = mirrord else {
        eprintln!("mirrord-dap: cannot find the `mirrord` binary next to this one; install both");
        return ExitCode::FAILURE;
    };
    let err = Command::new(&mirrord)
        .arg("dap")
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("mirrord-dap: cannot run {}: {err}", mirrord.display());
    ExitCode::FAILURE
}
