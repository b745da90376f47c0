//! `feature.network`: incoming traffic (its own module), outgoing
//! connections and DNS.

use std::fmt;

use schemars::{
    gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject},
    JsonSchema,
};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use super::{address::AddressFilter, incoming::IncomingConfig};
use crate::de::shapes::{bool_or_map, FromBool};

/// Network features.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Incoming traffic: a mode (`"mirror"`, the default, `"steal"` or
    /// `"off"`) or a map with `mode`, port rules and an HTTP filter.
    #[serde(
        default,
        deserialize_with = "super::incoming::deserialize_incoming_config"
    )]
    #[schemars(
        schema_with = "crate::schema::string_or::<IncomingConfig, super::incoming::IncomingMode>"
    )]
    pub incoming: IncomingConfig,

    /// Outgoing connections: `true` (the default: TCP and UDP go through the
    /// target), `false` (all local) or a map choosing protocols and a filter.
    #[serde(default, deserialize_with = "bool_or_map")]
    #[schemars(schema_with = "crate::schema::bool_or::<OutgoingConfig>")]
    pub outgoing: OutgoingConfig,

    /// Name resolution: `true` (the default: names are resolved by the
    /// target), `false` (resolved locally) or a map with `enabled` and a filter.
    #[serde(default, deserialize_with = "bool_or_map")]
    #[schemars(schema_with = "crate::schema::bool_or::<DnsConfig>")]
    pub dns: DnsConfig,
}

/// Which outgoing connections are made from the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutgoingConfig {
    /// Make TCP connections from the target (default true); false keeps all TCP local.
    #[serde(default = "yes")]
    pub tcp: bool,

    /// Send UDP traffic from the target (default true); false keeps all UDP local.
    #[serde(default = "yes")]
    pub udp: bool,

    /// Which destinations go through the target: `{"remote": [...]}` sends
    /// only the listed ones, `{"local": [...]}` keeps the listed ones local
    /// and sends the rest. Without a filter every destination goes through
    /// the target. Entries are `[tcp://|udp://]address[:port]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<OutgoingFilter>,
}

impl Default for OutgoingConfig {
    fn default() -> Self {
        OutgoingConfig::from_bool(true)
    }
}

impl FromBool for OutgoingConfig {
    fn from_bool(enabled: bool) -> Self {
        OutgoingConfig {
            tcp: enabled,
            udp: enabled,
            filter: None,
        }
    }
}

/// An outgoing filter: a list of destinations that are remote, or local.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutgoingFilter {
    /// Only these destinations go through the target.
    Remote(Vec<AddressFilter>),
    /// These destinations stay local; the rest go through the target.
    Local(Vec<AddressFilter>),
}

/// Which names are resolved by the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Resolve names through the target (default true).
    #[serde(default = "yes")]
    pub enabled: bool,

    /// Which names are resolved by the target: `{"remote": [...]}` only the
    /// listed ones, `{"local": [...]}` all but the listed ones. Entries are
    /// hostnames (`db.internal`) or suffixes (`*.svc.cluster.local`, which
    /// matches names below it but not `svc.cluster.local` itself), compared
    /// case-insensitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<DnsFilter>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig::from_bool(true)
    }
}

impl FromBool for DnsConfig {
    fn from_bool(enabled: bool) -> Self {
        DnsConfig {
            enabled,
            filter: None,
        }
    }
}

/// A DNS filter: a list of names that are resolved remotely, or locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DnsFilter {
    /// Only these names are resolved by the target.
    Remote(Vec<HostPattern>),
    /// These names are resolved locally; the rest by the target.
    Local(Vec<HostPattern>),
}

/// A hostname (`db.internal`) or a suffix pattern (`*.internal`), stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern(String);

impl HostPattern {
    /// Checks and lowercases a pattern.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let name = pattern.strip_prefix("*.").unwrap_or(pattern);
        let name = name.strip_suffix('.').unwrap_or(name);
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains("..")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if valid {
            Ok(HostPattern(
                pattern.trim_end_matches('.').to_ascii_lowercase(),
            ))
        } else {
            Err(format!(
                "invalid hostname pattern \"{pattern}\", expected a name like db.internal or a suffix like *.internal"
            ))
        }
    }

    /// Whether `host` matches: equal, or below the suffix for `*.` patterns.
    /// Case-insensitive; a trailing dot on `host` is ignored. Does not allocate.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        match self.0.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
            None => host.eq_ignore_ascii_case(&self.0),
        }
    }

    /// The pattern, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        HostPattern::new(&s).map_err(de::Error::custom)
    }
}

impl JsonSchema for HostPattern {
    fn schema_name() -> String {
        "HostPattern".to_owned()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            ..Default::default()
        }
        .into()
    }
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let rows: &[(&str, &str, bool)] = &[
            ("db.internal", "db.internal", true),
            ("db.internal", "DB.Internal.", true),
            ("db.internal", "xdb.internal", false),
            ("*.internal", "db.internal", true),
            ("*.internal", "a.b.internal", true),
            ("*.internal", "internal", false),
            ("*.internal", "xinternal", false),
            ("*.Internal", "db.INTERNAL", true),
        ];
        for (pattern, host, expected) in rows {
            let pattern = HostPattern::new(pattern).unwrap();
            assert_eq!(pattern.matches(host), *expected, "{pattern} vs {host}");
        }
        for bad in ["", "*.", "a..b", "a b", "*x.com", "a.*.com"] {
            assert!(HostPattern::new(bad).is_err(), "{bad}");
        }
    }
}
