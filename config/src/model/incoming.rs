//! `feature.network.incoming`: which of the target's incoming connections
//! reach the local program, and how (a copy, or the connection itself).

use std::{fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize};

use crate::{
    de::shapes::{string_or_map, FromShortString},
    error::{Origin, Problem},
};

/// Incoming traffic: a mode (`"steal"`) or a map with `mode` and the port rules.
///
/// When the program listens on a port, connections that reach that port in
/// the target come to the program. The program's own socket keeps working
/// for local clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingConfig {
    /// `mirror` (the default: the program gets a copy of each connection,
    /// its answers are discarded, the target answers), `steal` (the
    /// connections come to the program instead of the target) or `off`.
    #[serde(default)]
    pub mode: IncomingMode,

    /// Only these remote ports are mirrored or stolen (after `port_mapping`);
    /// by default every port the program listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,

    /// Remote ports never mirrored or stolen: listening on them stays local.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_ports: Vec<u16>,

    /// Pairs `[local, remote]`: a program listening on `local` gets the
    /// target's traffic of port `remote` (e.g. `[[9999, 80]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mapping: Vec<(u16, u16)>,

    /// Sockets bound to a loopback address (`127.0.0.1`, `::1`) stay local
    /// (default false: they listen on the target's port too).
    #[serde(default)]
    pub ignore_localhost: bool,

    /// Steal only the HTTP requests that match; the others are answered by
    /// the target's own server. Mode `steal` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_filter: Option<HttpFilterConfig>,

    /// What to do when another session already steals a port without a
    /// filter: `abort` (the default: the listen fails) or `continue` (this
    /// session takes the port over).
    #[serde(default)]
    pub on_concurrent_steal: ConcurrentSteal,
}

/// What a listening socket subscribes to in the target, by the config
/// (the layer and the syscall path turn it into the protocol's message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The target's port.
    pub port: u16,
    /// Steal (else mirror).
    pub steal: bool,
    /// Take the port over from another session stealing it.
    pub take_over: bool,
    /// `(header_filter, path_filter)` when only matching HTTP requests are
    /// stolen on this port.
    pub http_filter: Option<(Option<String>, Option<String>)>,
}

impl IncomingConfig {
    /// What a socket listening at `bound` subscribes to, or `None` when it
    /// stays local (mode `off`, `ignore_localhost`, `ports`,
    /// `ignore_ports`). Debugger ports are the caller's to keep local.
    pub fn wanted(&self, bound: std::net::SocketAddr) -> Option<Wanted> {
        let ip = match bound.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        };
        if self.ignore_localhost && ip.is_loopback() {
            return None;
        }
        let port = self.remote_port(bound.port())?;
        let http_filter = self
            .http_filter
            .as_ref()
            .filter(|f| f.ports.contains(&port))
            .map(|f| {
                (
                    f.header_filter.as_ref().map(|p| p.as_str().to_owned()),
                    f.path_filter.as_ref().map(|p| p.as_str().to_owned()),
                )
            });
        Some(Wanted {
            port,
            steal: self.mode == IncomingMode::Steal,
            take_over: self.on_concurrent_steal == ConcurrentSteal::Continue,
            http_filter,
        })
    }
}

impl IncomingConfig {
    /// The remote port a local listening port subscribes to, or `None` when
    /// it stays local (mode `off`, `ports`, `ignore_ports`).
    pub fn remote_port(&self, local: u16) -> Option<u16> {
        if self.mode == IncomingMode::Off {
            return None;
        }
        let remote = self
            .port_mapping
            .iter()
            .find(|(l, _)| *l == local)
            .map_or(local, |(_, r)| *r);
        let listed = self
            .ports
            .as_ref()
            .is_none_or(|ports| ports.contains(&remote));
        (listed && !self.ignore_ports.contains(&remote)).then_some(remote)
    }
}

impl IncomingConfig {
    /// Cross-field rules: no port 0, one mapping per local port, an HTTP
    /// filter only when stealing and with at least one pattern.
    pub(crate) fn check(&self, origin_of: &dyn Fn(&str) -> Origin) -> Vec<Problem> {
        const KEY: &str = "feature.network.incoming";
        let mut problems = Vec::new();
        let zero = |problems: &mut Vec<Problem>, key: String, port: u16| {
            if port == 0 {
                problems.push(Problem::new(
                    origin_of(&key),
                    "invalid port 0, expected a port from 1 to 65535",
                ));
            }
        };
        for (i, port) in self.ports.iter().flatten().enumerate() {
            zero(&mut problems, format!("{KEY}.ports[{i}]"), *port);
        }
        for (i, port) in self.ignore_ports.iter().enumerate() {
            zero(&mut problems, format!("{KEY}.ignore_ports[{i}]"), *port);
        }
        for (i, (local, remote)) in self.port_mapping.iter().enumerate() {
            if self.port_mapping[..i].iter().any(|(l, _)| l == local) {
                problems.push(Problem::new(
                    origin_of(&format!("{KEY}.port_mapping[{i}]")),
                    format!("local port {local} is mapped twice; keep one [local, remote] pair per local port"),
                ));
            }
            zero(&mut problems, format!("{KEY}.port_mapping[{i}][0]"), *local);
            zero(
                &mut problems,
                format!("{KEY}.port_mapping[{i}][1]"),
                *remote,
            );
        }
        if let Some(filter) = &self.http_filter {
            if self.mode != IncomingMode::Steal {
                problems.push(Problem::new(
                    origin_of(&format!("{KEY}.http_filter")),
                    format!("an HTTP filter needs mode steal (the mode is {}); set \"mode\": \"steal\" or remove http_filter", self.mode),
                ));
            }
            if filter.header_filter.is_none() && filter.path_filter.is_none() {
                problems.push(Problem::new(
                    origin_of(&format!("{KEY}.http_filter")),
                    "expected header_filter, path_filter or both",
                ));
            }
        }
        problems
    }
}

impl FromShortString for IncomingConfig {
    const EXPECTING: &'static str = "one of mirror, steal, off";

    fn from_short<E: de::Error>(s: &str) -> Result<Self, E> {
        let mode = IncomingMode::deserialize(de::value::StrDeserializer::<E>::new(s))?;
        Ok(IncomingConfig {
            mode,
            ..IncomingConfig::default()
        })
    }
}

pub(crate) fn deserialize_incoming_config<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IncomingConfig, D::Error> {
    string_or_map(d)
}

/// How incoming connections reach the program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncomingMode {
    /// The program receives a copy of each connection; the target answers.
    #[default]
    Mirror,
    /// The connections come to the program instead of the target.
    Steal,
    /// Listening stays local.
    Off,
}

impl IncomingMode {
    /// The names accepted in config files, env and flags.
    pub const NAMES: &'static [&'static str] = &["mirror", "steal", "off"];
}

impl FromStr for IncomingMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "mirror" => Ok(IncomingMode::Mirror),
            "steal" => Ok(IncomingMode::Steal),
            "off" => Ok(IncomingMode::Off),
            _ => Err(format!(
                "unknown variant \"{s}\", expected one of {}",
                IncomingMode::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for IncomingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(IncomingMode::NAMES[*self as usize])
    }
}

/// What a session does when a port it wants to steal is already stolen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrentSteal {
    /// The program's `listen` fails with `EADDRINUSE`.
    #[default]
    Abort,
    /// This session takes the port over.
    Continue,
}

/// Which HTTP requests are stolen.
///
/// A request is stolen when every filter given matches; the others go to
/// the target's own server unchanged. Requests of one keep-alive connection
/// are decided one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpFilterConfig {
    /// A regular expression searched for in each header line `Name: value`
    /// (e.g. `^x-user: alice$`); case-sensitive unless it starts with `(?i)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_filter: Option<HttpPattern>,

    /// A regular expression searched for in the request's path and query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_filter: Option<HttpPattern>,

    /// The ports whose traffic is HTTP and filtered (default: `[80, 8080]`);
    /// other stolen ports are stolen whole.
    #[serde(default = "default_http_ports")]
    pub ports: Vec<u16>,
}

fn default_http_ports() -> Vec<u16> {
    vec![80, 8080]
}

super::pattern::checked_regex!(
    /// A regular expression for an HTTP filter, checked when the config is read.
    HttpPattern,
    regex::Regex,
    "A regular expression (Rust `regex` syntax)."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_port_applies_mapping_lists_and_mode() {
        let config = IncomingConfig {
            port_mapping: vec![(9999, 80)],
            ignore_ports: vec![22],
            ..IncomingConfig::default()
        };
        let rows = [(9999, Some(80)), (8080, Some(8080)), (22, None)];
        for (local, remote) in rows {
            assert_eq!(config.remote_port(local), remote, "{local}");
        }
        let only = IncomingConfig {
            ports: Some(vec![80]),
            ..config.clone()
        };
        assert_eq!(only.remote_port(9999), Some(80));
        assert_eq!(only.remote_port(8080), None);
        let off = IncomingConfig {
            mode: IncomingMode::Off,
            ..config
        };
        assert_eq!(off.remote_port(9999), None);
    }

    #[test]
    fn mode_names_parse_and_print() {
        for name in IncomingMode::NAMES {
            let mode: IncomingMode = name.parse().unwrap();
            assert_eq!(&mode.to_string(), name);
        }
        let err = "stael".parse::<IncomingMode>().unwrap_err();
        assert!(err.contains("mirror, steal, off"), "{err}");
    }
}
