//! The `mirrord` command line.

mod cli;
mod dap;
mod exec;
mod ide;
mod intproxy;
mod kube;
mod launch;
mod local_socket;
mod ls;
mod pick;
mod progress;
mod session;
mod sip_cmd;
mod syscall;
mod target;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Commands};

fn main() -> ExitCode {
    // Run through the `dlv` link of a Go configuration the IDE service
    // prepared: the filter, then the real dlv.
    if launch::go::invoked_as_dlv() {
        init_tracing();
        let Err(e) = launch::go::run_as_dlv() else {
            return ExitCode::SUCCESS;
        };
        eprintln!("mirrord (as dlv): {e:#}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Commands::Exec(args) => exec::run(args),
        Commands::Dap(args) => dap::run(args),
        Commands::Ide(args) => ide::run(args),
        Commands::Ls(args) => ls::run(args),
        Commands::Pick { out } => pick::run(out.as_deref()),
        Commands::Intproxy(args) => intproxy::run(args),
        Commands::Sip(command) => sip_cmd::run(command),
        Commands::VerifyConfig { file } => return verify_config(&file),
        Commands::Schema => {
            println!("{}", mirrord_config::schema_json());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mirrord: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify_config(file: &std::path::Path) -> ExitCode {
    match mirrord_config::verify_file(file) {
        Ok(_) => {
            println!("OK: {} is a valid mirrord config", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: invalid mirrord config:\n{e}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at `warn` unless `MIRRORD_LOG` says otherwise
/// (an `EnvFilter` directive such as `debug` or `mirrord=trace`), colored
/// only on a terminal.
fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIRRORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
}
