//! Which outgoing connections are made from the target.

use std::net::SocketAddr;

use crate::{
    error::ConfigError,
    model::{
        address::{unmap, AddressFilter, Protocol},
        network::{NetworkConfig, OutgoingFilter},
    },
};

/// Where a connection (or datagram) goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// Leave it to the local network stack.
    Local,
    /// Make it from the target.
    Remote,
}

/// The compiled outgoing policy.
#[derive(Debug, Clone)]
pub struct OutgoingPolicy {
    tcp: bool,
    udp: bool,
    filter: Filter,
}

#[derive(Debug, Clone)]
enum Filter {
    None,
    Remote(Vec<AddressFilter>),
    Local(Vec<AddressFilter>),
}

impl OutgoingPolicy {
    /// Builds the policy of `config.outgoing`. Entries were checked when the
    /// config was read, so this does not fail today; it returns a `Result`
    /// so that later checks (e.g. of `incoming`) fit without an API change.
    pub fn new(config: &NetworkConfig) -> Result<OutgoingPolicy, ConfigError> {
        let outgoing = &config.outgoing;
        Ok(OutgoingPolicy {
            tcp: outgoing.tcp,
            udp: outgoing.udp,
            filter: match &outgoing.filter {
                None => Filter::None,
                Some(OutgoingFilter::Remote(entries)) => Filter::Remote(entries.clone()),
                Some(OutgoingFilter::Local(entries)) => Filter::Local(entries.clone()),
            },
        })
    }

    /// Where a connection to `addr` over `protocol` goes. `resolved_names`
    /// are the hostnames the program resolved to `addr.ip()` (the caller
    /// tracks them), for hostname entries. IPv4-mapped IPv6 addresses match
    /// as IPv4. Does not allocate.
    pub fn route(&self, protocol: Protocol, addr: SocketAddr, resolved_names: &[&str]) -> Route {
        let enabled = match protocol {
            Protocol::Tcp => self.tcp,
            Protocol::Udp => self.udp,
        };
        if !enabled {
            return Route::Local;
        }
        let ip = unmap(addr.ip());
        let hit = |entries: &[AddressFilter]| {
            entries
                .iter()
                .any(|entry| entry.matches(protocol, ip, addr.port(), resolved_names))
        };
        match &self.filter {
            Filter::None => Route::Remote,
            Filter::Remote(entries) if hit(entries) => Route::Remote,
            Filter::Remote(_) => Route::Local,
            Filter::Local(entries) if hit(entries) => Route::Local,
            Filter::Local(_) => Route::Remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::network::OutgoingConfig;
    use Protocol::{Tcp, Udp};
    use Route::{Local, Remote};

    fn config(tcp: bool, udp: bool, filter: Option<(&str, &[&str])>) -> NetworkConfig {
        let entries = |list: &[&str]| list.iter().map(|e| e.parse().unwrap()).collect();
        NetworkConfig {
            outgoing: OutgoingConfig {
                tcp,
                udp,
                filter: filter.map(|(kind, list)| match kind {
                    "remote" => OutgoingFilter::Remote(entries(list)),
                    _ => OutgoingFilter::Local(entries(list)),
                }),
            },
            ..NetworkConfig::default()
        }
    }

    /// Rows of (protocol, "ip:port", resolved names, expected route).
    fn check(config: &NetworkConfig, rows: &[(Protocol, &str, &[&str], Route)]) {
        let policy = OutgoingPolicy::new(config).unwrap();
        for (protocol, addr, names, expected) in rows {
            let socket: SocketAddr = addr.parse().unwrap();
            assert_eq!(
                policy.route(*protocol, socket, names),
                *expected,
                "{protocol:?} {addr} {names:?}"
            );
        }
    }

    #[test]
    fn no_filter_sends_everything_remote() {
        check(
            &config(true, true, None),
            &[
                (Tcp, "1.1.1.1:443", &[], Remote),
                (Udp, "[::1]:53", &[], Remote),
                (Tcp, "127.0.0.1:5432", &[], Remote),
            ],
        );
    }

    #[test]
    fn disabled_protocols_stay_local() {
        check(
            &config(false, true, None),
            &[
                (Tcp, "1.1.1.1:443", &[], Local),
                (Udp, "1.1.1.1:53", &[], Remote),
            ],
        );
        check(
            &config(true, false, None),
            &[
                (Tcp, "1.1.1.1:443", &[], Remote),
                (Udp, "1.1.1.1:53", &[], Local),
            ],
        );
        // A filter does not re-enable a disabled protocol.
        check(
            &config(false, true, Some(("remote", &["1.1.1.1"]))),
            &[(Tcp, "1.1.1.1:443", &[], Local)],
        );
    }

    #[test]
    fn remote_filter_sends_only_matches() {
        let config = config(
            true,
            true,
            Some((
                "remote",
                &[
                    "10.0.0.0/8",
                    "tcp://db.internal:5432",
                    "udp://:53",
                    "[fd00::/8]:80",
                    "127.0.0.1:9000",
                ],
            )),
        );
        check(
            &config,
            &[
                (Tcp, "10.1.2.3:80", &[], Remote),
                (Tcp, "[::ffff:10.1.2.3]:80", &[], Remote),
                (Tcp, "11.1.2.3:80", &[], Local),
                (Tcp, "172.16.0.5:5432", &["db.internal"], Remote),
                (Tcp, "172.16.0.5:5432", &["DB.Internal"], Remote),
                (Tcp, "172.16.0.5:5433", &["db.internal"], Local),
                (Udp, "172.16.0.5:5432", &["db.internal"], Local),
                (Tcp, "172.16.0.5:5432", &[], Local),
                (Udp, "8.8.8.8:53", &[], Remote),
                (Tcp, "8.8.8.8:53", &[], Local),
                (Tcp, "[fd00::1]:80", &[], Remote),
                (Tcp, "[fd00::1]:81", &[], Local),
                (Tcp, "127.0.0.1:9000", &[], Remote),
                (Tcp, "[::ffff:127.0.0.1]:9000", &[], Remote),
                (Tcp, "127.0.0.1:9001", &[], Local),
            ],
        );
    }

    #[test]
    fn local_filter_keeps_matches_local() {
        let config = config(
            true,
            true,
            Some(("local", &["127.0.0.1", "[::1]", "localhost:8080"])),
        );
        check(
            &config,
            &[
                (Tcp, "127.0.0.1:1234", &[], Local),
                (Tcp, "[::ffff:127.0.0.1]:1234", &[], Local),
                (Tcp, "[::1]:1234", &[], Local),
                (Tcp, "127.0.0.2:8080", &["localhost"], Local),
                (Tcp, "127.0.0.2:8081", &["localhost"], Remote),
                (Udp, "10.0.0.1:53", &[], Remote),
            ],
        );
    }
}
