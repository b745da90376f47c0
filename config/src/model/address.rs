//! Outgoing filter entries, `[tcp://|udp://]address[:port]`, parsed once when
//! the config is read and matched cheaply on every `connect`.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use schemars::{
    gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject},
    JsonSchema,
};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A transport protocol of an outgoing connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP (stream sockets).
    Tcp,
    /// UDP (datagram sockets).
    Udp,
}

/// One outgoing filter entry, e.g. `tcp://10.0.0.0/8:5432` or `db.internal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFilter {
    raw: String,
    /// The protocol the entry is limited to, `None` for both.
    pub protocol: Option<Protocol>,
    /// What the destination address must be.
    pub address: AddressMatch,
    /// The destination port; 0 means any port.
    pub port: u16,
}

/// The address part of an [`AddressFilter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressMatch {
    /// No address was written (`:8080`): any address.
    Any,
    /// One IP address (IPv4-mapped IPv6 addresses are stored as IPv4).
    Ip(IpAddr),
    /// A CIDR block; `network` has its host bits cleared.
    Subnet { network: IpAddr, prefix: u8 },
    /// A hostname, lowercase, matched against the names the program resolved.
    Host(String),
}

impl AddressFilter {
    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether a connection to `ip:port` over `protocol` matches; `names` are
    /// the hostnames the program resolved to `ip`. `ip` must already be
    /// unmapped (see [`unmap`]). Does not allocate.
    pub fn matches(&self, protocol: Protocol, ip: IpAddr, port: u16, names: &[&str]) -> bool {
        if self.protocol.is_some_and(|p| p != protocol) || (self.port != 0 && self.port != port) {
            return false;
        }
        match &self.address {
            AddressMatch::Any => true,
            AddressMatch::Ip(want) => *want == ip,
            AddressMatch::Subnet { network, prefix } => in_subnet(ip, *network, *prefix),
            AddressMatch::Host(host) => names.iter().any(|name| same_host(name, host)),
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; other addresses unchanged.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Case-insensitive hostname equality, ignoring one trailing dot on either side.
pub(crate) fn same_host(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

fn in_subnet(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => mask_v4(ip, prefix) == u32::from(net),
        (IpAddr::V6(ip), IpAddr::V6(net)) => mask_v6(ip, prefix) == u128::from(net),
        _ => false,
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> u32 {
    let bits = u32::from(ip);
    match prefix {
        0 => 0,
        p => bits & (u32::MAX << (32 - u32::from(p.min(32)))),
    }
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> u128 {
    let bits = u128::from(ip);
    match prefix {
        0 => 0,
        p => bits & (u128::MAX << (128 - u32::from(p.min(128)))),
    }
}

/// Why an entry does not parse; the message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter \"{entry}\": {reason}")]
pub struct InvalidFilter {
    entry: String,
    reason: String,
}

impl FromStr for AddressFilter {
    type Err = InvalidFilter;

    fn from_str(entry: &str) -> Result<Self, InvalidFilter> {
        parse(entry).map_err(|reason| InvalidFilter {
            entry: entry.to_owned(),
            reason,
        })
    }
}

fn parse(entry: &str) -> Result<AddressFilter, String> {
    let (protocol, rest) = match entry.split_once("://") {
        Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
            "tcp" => (Some(Protocol::Tcp), rest),
            "udp" => (Some(Protocol::Udp), rest),
            _ => {
                return Err(format!(
                    "unknown protocol \"{scheme}\", expected tcp:// or udp://"
                ))
            }
        },
        None => (None, entry),
    };
    let (address, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (inside, after) = inner
            .split_once(']')
            .ok_or("an IPv6 address opened with \"[\" must be closed with \"]\"")?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("expected \":<port>\" after \"]\"")?,
            ),
        };
        (ipv6_part(inside)?, port)
    } else {
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err("IPv6 addresses must be written in brackets, e.g. [::1]:80".to_owned())
            }
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        (v4_or_host(host)?, port)
    };
    let port = match port {
        None => 0,
        Some(port) => parse_port(port)?,
    };
    if address == AddressMatch::Any && port == 0 {
        return Err("expected an address, a port or both".to_owned());
    }
    Ok(AddressFilter {
        raw: entry.to_owned(),
        protocol,
        address,
        port,
    })
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid port \"{port}\", expected a number from 0 to 65535"
        ));
    }
    port.parse::<u16>()
        .map_err(|_| format!("port {port} is out of range (0-65535)"))
}

fn ipv6_part(inside: &str) -> Result<AddressMatch, String> {
    let (ip, prefix) = match inside.split_once('/') {
        Some((ip, prefix)) => (ip, Some(prefix)),
        None => (inside, None),
    };
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| format!("\"{ip}\" is not a valid IPv6 address"))?;
    let prefix = prefix.map(|p| parse_prefix(p, 128)).transpose()?;
    Ok(match (ip.to_ipv4_mapped(), prefix) {
        (Some(v4), None) => AddressMatch::Ip(IpAddr::V4(v4)),
        (Some(v4), Some(prefix)) if prefix >= 96 => subnet(IpAddr::V4(v4), prefix - 96),
        (_, None) => AddressMatch::Ip(IpAddr::V6(ip)),
        (_, Some(prefix)) => subnet(IpAddr::V6(ip), prefix),
    })
}

fn v4_or_host(host: &str) -> Result<AddressMatch, String> {
    if host.is_empty() {
        return Ok(AddressMatch::Any);
    }
    if let Some((ip, prefix)) = host.split_once('/') {
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("\"{ip}\" is not a valid IPv4 address (write IPv6 blocks in brackets, e.g. [fd00::/8])"))?;
        return Ok(subnet(IpAddr::V4(ip), parse_prefix(prefix, 32)?));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|ip| AddressMatch::Ip(IpAddr::V4(ip)))
            .map_err(|_| format!("\"{host}\" is not a valid IPv4 address"));
    }
    let valid = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid || host.starts_with('.') || host.contains("..") {
        return Err(format!(
            "\"{host}\" is not a valid hostname (letters, digits, '-', '_' and '.')"
        ));
    }
    Ok(AddressMatch::Host(
        host.trim_end_matches('.').to_ascii_lowercase(),
    ))
}

fn parse_prefix(prefix: &str, max: u8) -> Result<u8, String> {
    prefix
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= max)
        .ok_or_else(|| format!("invalid prefix length \"/{prefix}\", expected 0 to {max}"))
}

fn subnet(ip: IpAddr, prefix: u8) -> AddressMatch {
    let network = match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(mask_v4(v4, prefix))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(mask_v6(v6, prefix))),
    };
    AddressMatch::Subnet { network, prefix }
}

impl fmt::Display for AddressFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for AddressFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for AddressFilter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl JsonSchema for AddressFilter {
    fn schema_name() -> String {
        "AddressFilter".to_owned()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            metadata: Some(Box::new(schemars::schema::Metadata {
                description: Some(
                    "`[tcp://|udp://]address[:port]`: address is an IPv4 address, an IPv6 address in \
                     brackets, a CIDR block (`10.0.0.0/8`, `[fd00::/8]`) or a hostname the program \
                     resolved; port 0 or no port means any port."
                        .to_owned(),
                ),
                examples: vec!["10.0.0.0/8".into(), "tcp://db.internal:5432".into(), "[::1]:80".into()],
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of (entry, protocol, address, port) for a connection, and whether it matches.
    fn check(entry: &str, rows: &[(Protocol, &str, u16, &[&str], bool)]) {
        let filter: AddressFilter = entry.parse().unwrap_or_else(|e| panic!("{entry}: {e}"));
        for (protocol, ip, port, names, expected) in rows {
            let ip = unmap(ip.parse().unwrap());
            assert_eq!(
                filter.matches(*protocol, ip, *port, names),
                *expected,
                "{entry} vs {protocol:?} {ip} {port} {names:?}"
            );
        }
    }

    use Protocol::{Tcp, Udp};

    #[test]
    fn entries_match() {
        check(
            "1.2.3.4",
            &[
                (Tcp, "1.2.3.4", 80, &[], true),
                (Udp, "1.2.3.4", 53, &[], true),
                (Tcp, "1.2.3.5", 80, &[], false),
            ],
        );
        check(
            "1.2.3.4:80",
            &[
                (Tcp, "1.2.3.4", 80, &[], true),
                (Tcp, "1.2.3.4", 81, &[], false),
            ],
        );
        check("1.2.3.4:0", &[(Tcp, "1.2.3.4", 81, &[], true)]);
        check(
            "tcp://1.2.3.4",
            &[
                (Tcp, "1.2.3.4", 1, &[], true),
                (Udp, "1.2.3.4", 1, &[], false),
            ],
        );
        check(
            "udp://:53",
            &[
                (Udp, "8.8.8.8", 53, &[], true),
                (Udp, "8.8.8.8", 54, &[], false),
                (Tcp, "8.8.8.8", 53, &[], false),
            ],
        );
        check(
            "10.0.0.0/8",
            &[
                (Tcp, "10.200.1.1", 5, &[], true),
                (Tcp, "11.0.0.1", 5, &[], false),
                (Tcp, "::ffff:10.1.2.3", 5, &[], true),
            ],
        );
        check("10.1.2.3/8", &[(Tcp, "10.9.9.9", 5, &[], true)]);
        check(
            "0.0.0.0/0:443",
            &[
                (Tcp, "93.184.216.34", 443, &[], true),
                (Tcp, "::1", 443, &[], false),
            ],
        );
        check(
            "[::1]:80",
            &[
                (Tcp, "::1", 80, &[], true),
                (Tcp, "127.0.0.1", 80, &[], false),
            ],
        );
        check(
            "[fd00::/8]",
            &[
                (Tcp, "fd12::1", 1, &[], true),
                (Tcp, "fe80::1", 1, &[], false),
            ],
        );
        check(
            "[::ffff:127.0.0.1]",
            &[
                (Tcp, "127.0.0.1", 1, &[], true),
                (Tcp, "::ffff:127.0.0.1", 1, &[], true),
            ],
        );
        check("127.0.0.1", &[(Tcp, "::ffff:127.0.0.1", 9, &[], true)]);
        check("[::ffff:10.0.0.0/104]", &[(Tcp, "10.3.3.3", 1, &[], true)]);
        check(
            "DB.internal:5432",
            &[
                (Tcp, "10.0.0.5", 5432, &["db.internal"], true),
                (Tcp, "10.0.0.5", 5432, &["db.internal."], true),
                (Tcp, "10.0.0.5", 5432, &["other", "DB.INTERNAL"], true),
                (Tcp, "10.0.0.5", 5432, &["other"], false),
                (Tcp, "10.0.0.5", 5432, &[], false),
                (Tcp, "10.0.0.5", 80, &["db.internal"], false),
            ],
        );
    }

    #[test]
    fn bad_entries_name_the_entry() {
        let rows = [
            ("1.2.3.4:99999", "invalid filter \"1.2.3.4:99999\": port 99999 is out of range (0-65535)"),
            ("host:http", "invalid filter \"host:http\": invalid port \"http\", expected a number from 0 to 65535"),
            ("::1", "IPv6 addresses must be written in brackets"),
            ("[::1", "must be closed with \"]\""),
            ("[zz]", "\"zz\" is not a valid IPv6 address"),
            ("10.0.0.0/33", "invalid prefix length \"/33\", expected 0 to 32"),
            ("1.2.3.999", "\"1.2.3.999\" is not a valid IPv4 address"),
            ("http://x", "unknown protocol \"http\""),
            ("bad host", "is not a valid hostname"),
            ("", "expected an address, a port or both"),
        ];
        for (entry, fragment) in rows {
            let message = entry.parse::<AddressFilter>().unwrap_err().to_string();
            assert!(message.contains(fragment), "{entry}: {message}");
        }
    }
}
