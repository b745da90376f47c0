//! `agent`: how the agent that serves the target is run.

use std::{collections::BTreeMap, fmt, str::FromStr};

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

    /// Kubernetes: the agent's container image (default: `mirrord-agent:<the
    /// CLI's version>`; build it from `agent/Dockerfile` and push it where
    /// your nodes can pull it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Kubernetes: the namespace of the agent's Job (default: the target's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// Kubernetes: seconds a finished agent Job is kept before the cluster
    /// deletes it (`ttlSecondsAfterFinished`, default 60); it also covers a
    /// CLI that was killed before it could delete the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,

    /// Seconds the agent waits for its client after the connection is lost
    /// before it exits (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub communication_timeout: Option<u64>,

    /// Kubernetes: run the agent's container privileged (needed on SELinux
    /// or Bottlerocket nodes, where its capabilities are not enough).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,

    /// Kubernetes: extra labels of the agent's Job and pod (`app: mirrord`
    /// is always set).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,

    /// Kubernetes: extra annotations of the agent's Job and pod (service
    /// mesh sidecar injection is always turned off).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Kubernetes: tolerations of the agent's pod, as in a pod spec, e.g.
    /// `[{"operator": "Exists"}]` to run on tainted nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<serde_json::Value>,

    /// Kubernetes: the agent container's `resources` (requests and limits),
    /// as in a pod spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<serde_json::Value>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            log_level: LogLevel::default(),
            startup_timeout: default_startup_timeout(),
            image: None,
            namespace: None,
            ttl: None,
            communication_timeout: None,
            privileged: false,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            tolerations: Vec::new(),
            resources: None,
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
