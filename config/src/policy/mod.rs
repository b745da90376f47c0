//! The local/remote decision for every hooked call, compiled once from the
//! config and shared by the layer and the seccomp supervisor.
//!
//! Each policy is built when the layer starts and then only read, from any
//! thread: every `route`/`remote` method takes `&self`, does not allocate on
//! the local path and never blocks.

pub mod debugger;
pub mod dns;
pub mod env;
pub mod executable;
pub mod fs;
pub mod outgoing;
pub mod skip;

pub use crate::model::address::Protocol;

pub use self::{
    debugger::{is_debugger_helper, is_helper_by_parent, needs_parent, LocalPorts},
    dns::DnsPolicy,
    fs::{FileRoute, FsPolicy},
    outgoing::{OutgoingPolicy, Route},
    skip::SkipPolicy,
};
use crate::{error::ConfigError, model::MirrordConfig};

/// Every policy of one config.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Files.
    pub fs: FsPolicy,
    /// Outgoing connections.
    pub outgoing: OutgoingPolicy,
    /// Name resolution.
    pub dns: DnsPolicy,
    /// Programs left alone.
    pub skip: SkipPolicy,
}

impl Policy {
    /// Compiles every policy of `config`.
    pub fn new(config: &MirrordConfig) -> Result<Policy, ConfigError> {
        Ok(Policy {
            fs: FsPolicy::new(&config.feature.fs)?,
            outgoing: OutgoingPolicy::new(&config.feature.network)?,
            dns: DnsPolicy::new(&config.feature.network.dns),
            skip: SkipPolicy::new(&config.skip_processes),
        })
    }
}
