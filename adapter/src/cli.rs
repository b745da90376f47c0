//! The command line: subcommands and their flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "mirrord",
    version,
    about = "Run a local program in the context of a remote target"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand, Debug)]
pub enum Commands {
    /// Run a program with the target's files, environment, DNS and outgoing network.
    Exec(ExecArgs),
    /// Debug a program under mirrord: a Debug Adapter Protocol proxy that
    /// wraps any debug adapter (also installed as `mirrord-dap`).
    Dap(crate::dap::DapArgs),
    /// The IDE service: a language server on stdio for editors (config
    /// diagnostics, completion, hover; launches prepared for mirrord).
    Ide(crate::ide::IdeArgs),
    /// List the Kubernetes targets (pods, workloads, services) to pick from.
    Ls(crate::ls::LsArgs),
    /// Pick a target from a list in the terminal (the DAP proxy runs this
    /// in the editor's terminal when the editor has no picker).
    Pick {
        /// Write the choice here as JSON instead of printing the target.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a config file; prints OK or every problem (exit code 1).
    VerifyConfig {
        /// The config file (JSON, TOML or YAML).
        file: PathBuf,
    },
    /// Print the JSON schema of the config file.
    Schema,
    /// macOS System Integrity Protection: what mirrord patches, and why.
    #[command(subcommand)]
    Sip(crate::sip_cmd::SipCommand),
    /// The internal proxy between layers and the agent (started by `exec`).
    #[command(hide = true)]
    Intproxy(crate::intproxy::IntproxyArgs),
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The program and its arguments.
    #[arg(required = true, last = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// Flags shared by every command that starts a session.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// The config file (default: .mirrord/mirrord.json when present).
    #[arg(short = 'f', long = "config-file")]
    pub config_file: Option<PathBuf>,
    /// The target: pid/<PID>, targetless, pod/<name>...
    #[arg(short = 't', long)]
    pub target: Option<mirrord_config::Target>,
    /// The target's Kubernetes namespace.
    #[arg(short = 'n', long = "target-namespace")]
    pub target_namespace: Option<String>,
    /// Files: local, localwithoverrides, read or write.
    #[arg(long = "fs-mode")]
    pub fs_mode: Option<mirrord_config::FsMode>,
    /// The agent's log level: error, warn, info, debug, trace.
    #[arg(long = "agent-log-level")]
    pub agent_log_level: Option<mirrord_config::LogLevel>,
    /// Programs to leave alone, by executable name.
    #[arg(long = "skip-processes", value_delimiter = ';')]
    pub skip_processes: Vec<String>,
    /// How calls are intercepted: auto, layer or syscall (Go and static binaries).
    #[arg(long)]
    pub interception: Option<mirrord_config::Interception>,
}

impl ConfigArgs {
    pub fn overrides(&self) -> mirrord_config::CliOverrides {
        mirrord_config::CliOverrides {
            target: self.target.clone(),
            namespace: self.target_namespace.clone(),
            fs_mode: self.fs_mode,
            agent_log_level: self.agent_log_level,
            skip_processes: (!self.skip_processes.is_empty()).then(|| self.skip_processes.clone()),
            interception: self.interception,
            ..Default::default()
        }
    }
}
