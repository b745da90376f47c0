//! `agent`: how the agent that serves the target is run.

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// How much the agent logs: error, warn, info (the default), debug or trace.
    #[serde(default)]
    pub log_level: LogLevel,

    /// Seconds to wait for the agent to start before giving up (default 30).
    #[serde(default = "default_startup_timeout")]
    #[schemars(range(min = 1))]
    pub startup_timeout: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            log_level: LogLevel::default(),
            startup_timeout: default_startup_timeout(),
        }
    }
}

fn default_startup_timeout() -> u64 {
    30
}

/// A log level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Errors, warnings and progress.
    #[default]
    Info,
    /// Details for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The names accepted in config files, env and flags.
    pub const NAMES: &'static [&'static str] = &["error", "warn", "info", "debug", "trace"];
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!(
                "unknown variant \"{s}\", expected one of {}",
                LogLevel::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(LogLevel::NAMES[*self as usize])
    }
}
