//! The loopback ports a debuggee's debugger listens on (or connects from),
//! which stay local whatever the outgoing filter says.

use std::net::{IpAddr, SocketAddr};

use super::argv::words;
use super::sources::{self, parse_port};

/// Extra local ports, comma-separated ports and ranges (`5678,9000-9010`),
/// set by the DAP proxy or the user. Bad entries are ignored.
pub const ENV_LOCAL_PORTS: &str = "MIRRORD_LOCAL_PORTS";

/// Variables the JVM reads options from.
const JAVA_OPTION_VARS: &[&str] = &["JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS"];
/// Node's option variable.
const NODE_OPTIONS: &str = "NODE_OPTIONS";
/// debugpy's extra switches.
const DEBUGPY_EXTRA_ARGV: &str = "DEBUGPY_EXTRA_ARGV";

/// At most this many ports and ranges are kept (the rest are ignored), so
/// a lookup costs a bounded scan.
pub const MAX_RANGES: usize = 64;

/// An inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PortRange {
    first: u16,
    last: u16,
}

/// The debugger ports of one process, built once at load and then only
/// read. Lookups do not allocate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalPorts {
    ranges: Vec<PortRange>,
}

impl LocalPorts {
    /// Collects the ports from the process's command line (`argv[0]`
    /// included) and environment (`env(name)` is the variable's value):
    /// debugpy's `--connect`/`--listen` (and `DEBUGPY_EXTRA_ARGV`), pydevd's
    /// `--client … --port N`, JDWP's `address=` (also in
    /// `JAVA_TOOL_OPTIONS`, `JDK_JAVA_OPTIONS`, `_JAVA_OPTIONS`), Node's
    /// `--inspect*` (also in `NODE_OPTIONS`), and [`ENV_LOCAL_PORTS`].
    pub fn from_process(argv: &[&[u8]], env: impl Fn(&str) -> Option<Vec<u8>>) -> LocalPorts {
        let mut ports = LocalPorts::default();
        let mut add = |port: u16| ports.add(port, port);
        sources::debugpy(argv, env(DEBUGPY_EXTRA_ARGV).as_deref(), &mut add);
        sources::pydevd(argv, &mut add);
        sources::jdwp(argv.iter().copied(), &mut add);
        for name in JAVA_OPTION_VARS {
            if let Some(value) = env(name) {
                sources::jdwp(words(&value), &mut add);
            }
        }
        sources::node(argv.iter().copied(), &mut add);
        if let Some(value) = env(NODE_OPTIONS) {
            sources::node(words(&value), &mut add);
        }
        if let Some(value) = env(ENV_LOCAL_PORTS) {
            ports.add_list(&value);
        }
        ports
    }

    /// Adds the entries of a [`ENV_LOCAL_PORTS`] list; bad ones are skipped.
    pub fn add_list(&mut self, list: &[u8]) {
        for entry in list.split(|b| *b == b',') {
            let entry = entry.trim_ascii();
            let range = match entry.iter().position(|b| *b == b'-') {
                Some(dash) => parse_port(entry[..dash].trim_ascii())
                    .zip(parse_port(entry[dash + 1..].trim_ascii())),
                None => parse_port(entry).map(|port| (port, port)),
            };
            if let Some((first, last)) = range.filter(|(first, last)| first <= last) {
                self.add(first, last);
            }
        }
    }

    fn add(&mut self, first: u16, last: u16) {
        let range = PortRange { first, last };
        if self.ranges.len() < MAX_RANGES && !self.ranges.contains(&range) {
            self.ranges.push(range);
        }
    }

    /// Whether `port` is one of the debugger ports. Does not allocate.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges
            .iter()
            .any(|range| range.first <= port && port <= range.last)
    }

    /// Whether a connection (or datagram) to `addr` stays local: a loopback
    /// address (`127.0.0.0/8`, `::1`, `::ffff:127.0.0.0/104`) on one of the
    /// ports. Does not allocate.
    pub fn keeps_local(&self, addr: SocketAddr) -> bool {
        !self.ranges.is_empty() && is_loopback(addr.ip()) && self.contains(addr.port())
    }

    /// Whether no port was found.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(line: &str, env: &[(&str, &str)]) -> LocalPorts {
        let argv: Vec<&[u8]> = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::as_bytes)
            .collect();
        LocalPorts::from_process(&argv, |name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_bytes().to_vec())
        })
    }

    /// A command line, its environment, ports inside, ports outside.
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u16], &'a [u16]);

    #[test]
    fn sources_from_argv_and_env() {
        let rows: &[Row] = &[
            (
                "python3 -m debugpy --connect 127.0.0.1:41000 app.py",
                &[],
                &[41000],
                &[41001, 5678],
            ),
            (
                "python3 /x/pydevd.py --client 127.0.0.1 --port 41002 --file a.py",
                &[],
                &[41002],
                &[41000],
            ),
            (
                "java -agentlib:jdwp=transport=dt_socket,address=*:5005 Main",
                &[],
                &[5005],
                &[5006],
            ),
            (
                "java Main",
                &[(
                    "JAVA_TOOL_OPTIONS",
                    "-Xmx1g -agentlib:jdwp=transport=dt_socket,address=5006",
                )],
                &[5006],
                &[5005],
            ),
            (
                "java Main",
                &[("JDK_JAVA_OPTIONS", "-agentlib:jdwp=address=5007")],
                &[5007],
                &[],
            ),
            (
                "java Main",
                &[("_JAVA_OPTIONS", "-Xrunjdwp:address=5008")],
                &[5008],
                &[],
            ),
            ("node --inspect-brk=9230 app.js", &[], &[9230], &[9229]),
            (
                "node app.js",
                &[("NODE_OPTIONS", "--max-old-space-size=512 --inspect")],
                &[9229],
                &[9230],
            ),
            (
                "app",
                &[(
                    "MIRRORD_LOCAL_PORTS",
                    "5678, 9000-9010 ,x,70000,10-5,,1-,-3,0,7-7",
                )],
                &[5678, 9000, 9005, 9010, 7],
                &[8999, 9011, 10, 5, 1, 3, 70],
            ),
            (
                "app",
                &[("DEBUGPY_EXTRA_ARGV", "--connect 127.0.0.1:41003")],
                &[41003],
                &[],
            ),
            (
                "python3 app.py --connect 127.0.0.1:41004",
                &[],
                &[],
                &[41004],
            ),
            ("app", &[], &[], &[1, 9229, 65535]),
            ("", &[], &[], &[1]),
        ];
        for (line, env, inside, outside) in rows {
            let ports = build(line, env);
            for port in *inside {
                assert!(
                    ports.contains(*port),
                    "{line} {env:?}: {port} should be local"
                );
            }
            for port in *outside {
                assert!(
                    !ports.contains(*port),
                    "{line} {env:?}: {port} should not be local"
                );
            }
        }
    }

    #[test]
    fn only_loopback_destinations_stay_local() {
        let ports = build("app", &[("MIRRORD_LOCAL_PORTS", "5678")]);
        let rows: &[(&str, bool)] = &[
            ("127.0.0.1:5678", true),
            ("127.1.2.3:5678", true),
            ("[::1]:5678", true),
            ("[::ffff:127.0.0.1]:5678", true),
            ("127.0.0.1:5679", false),
            ("10.0.0.1:5678", false),
            ("0.0.0.0:5678", false),
            ("[::]:5678", false),
            ("[::ffff:10.0.0.1]:5678", false),
            ("[fe80::1]:5678", false),
        ];
        for (addr, expected) in rows {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(ports.keeps_local(addr), *expected, "{addr}");
        }
        assert!(!LocalPorts::default().keeps_local("127.0.0.1:5678".parse().unwrap()));
    }

    #[test]
    fn the_list_is_bounded_and_deduplicated() {
        let list: String = (1..=200).map(|p| format!("{p},")).collect();
        let mut ports = LocalPorts::default();
        ports.add_list(list.as_bytes());
        ports.add_list(b"1,1,1");
        assert_eq!(ports.ranges.len(), MAX_RANGES);
        assert!(ports.contains(64));
        assert!(!ports.contains(65));
        assert!(!ports.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: &[&[u8]] = &[
            b"",
            b",",
            b"-",
            b"--",
            b"\xff\xfe",
            b"1-2-3",
            b"65535-65535",
            b"99999999999999999999",
        ];
        for input in inputs {
            let mut ports = LocalPorts::default();
            ports.add_list(input);
        }
        let mut ports = LocalPorts::default();
        ports.add_list(b"65535-65535");
        assert!(ports.contains(65535));
    }
}
