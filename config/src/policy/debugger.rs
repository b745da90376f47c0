//! Debuggers, with no configuration: which processes are a debugger's own
//! helpers (the layer stays inert in them) and which loopback ports carry a
//! debugger's own traffic (they stay local in the debuggee).
//!
//! A debug session under mirrord is a tree of processes: the IDE or the DAP
//! proxy starts a debug adapter (`lldb-dap`, `dlv dap`, `python -m
//! debugpy.adapter`...), which may start a launcher (debugpy's launcher,
//! gdb's `/bin/sh -c exec prog`, `go build`), which starts the debuggee.
//! Every one of them inherits `LD_PRELOAD`; only the debuggee should be
//! mirrored. Helpers are recognised from their executable and `argv`
//! ([`is_debugger_helper`]); their children still inherit the environment,
//! so the debuggee they start does load the layer.
//!
//! The debuggee talks to its debugger over loopback TCP on a port named on
//! its command line or in its environment (`--connect`, `-agentlib:jdwp`,
//! `--inspect`...). Those ports are collected once at load
//! ([`LocalPorts::from_process`]) and a connection to a loopback address on
//! one of them is left to the local stack before the outgoing filter is
//! consulted ([`LocalPorts::keeps_local`]).
//!
//! Everything here is a pure function of bytes, shared by the layer and the
//! seccomp supervisor.

mod argv;
mod helper;
mod ports;
mod sources;

pub use self::helper::{is_debugger_helper, is_helper_by_parent, needs_parent};
pub use self::ports::{LocalPorts, ENV_LOCAL_PORTS};
