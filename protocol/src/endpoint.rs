//! Where a peer listens, as written in flags, variables and readiness
//! lines: `unix:@NAME` (an abstract Unix socket, used for the local hops)
//! or `IP:PORT`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// The text that marks an abstract Unix socket address.
pub const UNIX_PREFIX: &str = "unix:@";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// An abstract socket name (without the leading NUL).
    Unix(String),
    Tcp(SocketAddr),
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix(UNIX_PREFIX) {
            Some("") => Err(format!("{UNIX_PREFIX} needs a name")),
            Some(name) => Ok(Endpoint::Unix(name.to_owned())),
            None => s
                .parse()
                .map(Endpoint::Tcp)
                .map_err(|_| format!("{s:?} is neither {UNIX_PREFIX}NAME nor IP:PORT")),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(name) => write!(f, "{UNIX_PREFIX}{name}"),
            Endpoint::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_forms_and_refuses_others() {
        for text in ["127.0.0.1:0", "[::1]:7", "unix:@mirrord-agent-1"] {
            let endpoint: Endpoint = text.parse().unwrap();
            assert_eq!(endpoint.to_string(), text);
        }
        assert_eq!(
            "unix:@a".parse::<Endpoint>(),
            Ok(Endpoint::Unix("a".into()))
        );
        assert!("unix:@".parse::<Endpoint>().is_err());
        assert!("localhost".parse::<Endpoint>().is_err());
    }
}
