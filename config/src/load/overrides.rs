//! `MIRRORD_*` environment variables and CLI flags that override the file.

use std::collections::BTreeMap;

use crate::{
    de::shapes::split_list,
    error::{Origin, Problem},
    model::{
        agent::LogLevel, fs::FsMode, incoming::IncomingMode, interception::Interception,
        target::Target, MirrordConfig,
    },
};

/// Values given on the command line; each replaces what the file and the
/// environment say. The flag names in the doc comments are the ones used in
/// error messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CliOverrides {
    /// `--target`: `target.path`.
    pub target: Option<Target>,
    /// `--target-namespace`: `target.namespace`.
    pub namespace: Option<String>,
    /// `--fs-mode`: `feature.fs.mode`.
    pub fs_mode: Option<FsMode>,
    /// `--agent-log-level`: `agent.log_level`.
    pub agent_log_level: Option<LogLevel>,
    /// `--agent-startup-timeout`: `agent.startup_timeout`, in seconds.
    pub agent_startup_timeout: Option<u64>,
    /// `--skip-processes`: `skip_processes`.
    pub skip_processes: Option<Vec<String>>,
    /// `--env-include`: `feature.env.include`.
    pub env_include: Option<Vec<String>>,
    /// `--env-exclude`: `feature.env.exclude`.
    pub env_exclude: Option<Vec<String>>,
    /// `--tcp-outgoing`: `feature.network.outgoing.tcp`.
    pub tcp_outgoing: Option<bool>,
    /// `--udp-outgoing`: `feature.network.outgoing.udp`.
    pub udp_outgoing: Option<bool>,
    /// `--remote-dns`: `feature.network.dns.enabled`.
    pub remote_dns: Option<bool>,
    /// `--interception`: `feature.interception`.
    pub interception: Option<Interception>,
    /// `--steal` (or `--incoming-mode`): `feature.network.incoming.mode`.
    pub incoming_mode: Option<IncomingMode>,
}

/// The environment variables read, in the order they are applied.
pub const ENV_OVERRIDES: &[&str] = &[
    "MIRRORD_TARGET",
    "MIRRORD_TARGET_NAMESPACE",
    "MIRRORD_FILE_MODE",
    "MIRRORD_AGENT_LOG_LEVEL",
    "MIRRORD_AGENT_STARTUP_TIMEOUT",
    "MIRRORD_SKIP_PROCESSES",
    "MIRRORD_OVERRIDE_ENV_VARS_INCLUDE",
    "MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE",
    "MIRRORD_TCP_OUTGOING",
    "MIRRORD_UDP_OUTGOING",
    "MIRRORD_REMOTE_DNS",
    "MIRRORD_INTERCEPTION",
    "MIRRORD_INCOMING_MODE",
];

/// Which flag (or variable) set each key path, for naming it in later checks.
pub(crate) type Setters = BTreeMap<&'static str, Origin>;

/// Parses the `MIRRORD_*` variables of `env` into overrides. Variables not
/// in [`ENV_OVERRIDES`] are ignored, empty values count as unset and the
/// last of duplicate names wins. Every bad value is one problem naming the
/// variable.
pub(crate) fn from_env(env: &[(String, String)]) -> (CliOverrides, Vec<Problem>) {
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, value) in env {
        if ENV_OVERRIDES.contains(&name.as_str()) {
            latest.insert(name, value);
        }
    }
    let mut out = CliOverrides::default();
    let mut problems = Vec::new();
    for (name, value) in latest {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let result = match name {
            "MIRRORD_TARGET" => value
                .parse()
                .map(|t| out.target = Some(t))
                .map_err(|e: crate::InvalidTarget| e.to_string()),
            "MIRRORD_TARGET_NAMESPACE" => {
                out.namespace = Some(value.to_owned());
                Ok(())
            }
            "MIRRORD_FILE_MODE" => value.parse().map(|m| out.fs_mode = Some(m)),
            "MIRRORD_AGENT_LOG_LEVEL" => value.parse().map(|l| out.agent_log_level = Some(l)),
            "MIRRORD_AGENT_STARTUP_TIMEOUT" => value
                .parse()
                .map(|t| out.agent_startup_timeout = Some(t))
                .map_err(|_| format!("invalid value \"{value}\", expected a number of seconds")),
            "MIRRORD_SKIP_PROCESSES" => {
                out.skip_processes = Some(split_list(value));
                Ok(())
            }
            "MIRRORD_OVERRIDE_ENV_VARS_INCLUDE" => {
                out.env_include = Some(split_list(value));
                Ok(())
            }
            "MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE" => {
                out.env_exclude = Some(split_list(value));
                Ok(())
            }
            "MIRRORD_TCP_OUTGOING" => parse_bool(value).map(|b| out.tcp_outgoing = Some(b)),
            "MIRRORD_UDP_OUTGOING" => parse_bool(value).map(|b| out.udp_outgoing = Some(b)),
            "MIRRORD_REMOTE_DNS" => parse_bool(value).map(|b| out.remote_dns = Some(b)),
            "MIRRORD_INTERCEPTION" => value.parse().map(|i| out.interception = Some(i)),
            "MIRRORD_INCOMING_MODE" => value.parse().map(|m| out.incoming_mode = Some(m)),
            _ => Ok(()),
        };
        if let Err(message) = result {
            problems.push(Problem::new(Origin::Env(name.to_owned()), message));
        }
    }
    (out, problems)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!(
            "invalid value \"{value}\", expected true, false, 1 or 0"
        )),
    }
}

/// Where an override came from: the environment or the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Env,
    Cli,
}

/// Applies `overrides` to `config`, recording in `setters` which variable or
/// flag set each key.
pub(crate) fn apply(
    config: &mut MirrordConfig,
    overrides: &CliOverrides,
    source: Source,
    setters: &mut Setters,
) {
    let mut set = |key: &'static str, env: &str, flag: &str| {
        let origin = match source {
            Source::Env => Origin::Env(env.to_owned()),
            Source::Cli => Origin::Cli(flag.to_owned()),
        };
        setters.insert(key, origin);
    };
    let o = overrides;
    if let Some(target) = &o.target {
        config.target.path = Some(target.clone());
        set("target.path", "MIRRORD_TARGET", "--target");
    }
    if let Some(namespace) = &o.namespace {
        config.target.namespace = Some(namespace.clone());
        set(
            "target.namespace",
            "MIRRORD_TARGET_NAMESPACE",
            "--target-namespace",
        );
    }
    if let Some(interception) = o.interception {
        config.feature.interception = interception;
        set(
            "feature.interception",
            "MIRRORD_INTERCEPTION",
            "--interception",
        );
    }
    if let Some(mode) = o.fs_mode {
        config.feature.fs.mode = mode;
        set("feature.fs.mode", "MIRRORD_FILE_MODE", "--fs-mode");
    }
    if let Some(level) = o.agent_log_level {
        config.agent.log_level = level;
        set(
            "agent.log_level",
            "MIRRORD_AGENT_LOG_LEVEL",
            "--agent-log-level",
        );
    }
    if let Some(timeout) = o.agent_startup_timeout {
        config.agent.startup_timeout = timeout;
        set(
            "agent.startup_timeout",
            "MIRRORD_AGENT_STARTUP_TIMEOUT",
            "--agent-startup-timeout",
        );
    }
    if let Some(names) = &o.skip_processes {
        config.skip_processes = names.clone();
        set(
            "skip_processes",
            "MIRRORD_SKIP_PROCESSES",
            "--skip-processes",
        );
    }
    if let Some(include) = &o.env_include {
        config.feature.env.include = Some(include.clone());
        set(
            "feature.env.include",
            "MIRRORD_OVERRIDE_ENV_VARS_INCLUDE",
            "--env-include",
        );
    }
    if let Some(exclude) = &o.env_exclude {
        config.feature.env.exclude = exclude.clone();
        set(
            "feature.env.exclude",
            "MIRRORD_OVERRIDE_ENV_VARS_EXCLUDE",
            "--env-exclude",
        );
    }
    if let Some(tcp) = o.tcp_outgoing {
        config.feature.network.outgoing.tcp = tcp;
        set(
            "feature.network.outgoing.tcp",
            "MIRRORD_TCP_OUTGOING",
            "--tcp-outgoing",
        );
    }
    if let Some(udp) = o.udp_outgoing {
        config.feature.network.outgoing.udp = udp;
        set(
            "feature.network.outgoing.udp",
            "MIRRORD_UDP_OUTGOING",
            "--udp-outgoing",
        );
    }
    if let Some(mode) = o.incoming_mode {
        config.feature.network.incoming.mode = mode;
        set(
            "feature.network.incoming.mode",
            "MIRRORD_INCOMING_MODE",
            "--incoming-mode",
        );
    }
    if let Some(dns) = o.remote_dns {
        config.feature.network.dns.enabled = dns;
        set(
            "feature.network.dns.enabled",
            "MIRRORD_REMOTE_DNS",
            "--remote-dns",
        );
    }
}
