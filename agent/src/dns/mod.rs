//! Name resolution the way the target would do it: its `/etc/hosts`, then
//! DNS with its `/etc/resolv.conf`, from its network namespace.
//!
//! # Errors the layer sees (`RemoteError::errno`)
//!
//! | errno    | meaning                                              | getaddrinfo |
//! |----------|------------------------------------------------------|-------------|
//! | `ENOENT` | no such name, no address of the asked family, or not a valid host name | `EAI_NONAME` |
//! | `EAGAIN` | no nameserver answered (timeouts, SERVFAIL, REFUSED) | `EAI_AGAIN` |
//! | `EIO`    | reading the target's files or a socket failed        | `EAI_FAIL`  |

pub mod client;
pub mod hosts;
pub mod resolv_conf;
pub mod wire;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use mirrord_protocol::{AddrFamily, RemoteError};

use client::{Query, QueryResult};
use resolv_conf::ResolvConf;
use wire::{RData, TYPE_A, TYPE_AAAA};

use crate::netns::SocketFactory;

/// How many CNAME hops are followed, counting re-queries.
const MAX_CNAME_HOPS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{0}: name not found")]
    NotFound(String),
    #[error("{0}: not a valid host name")]
    BadName(String),
    #[error("{host}: no nameserver answered ({detail})")]
    TryAgain { host: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl DnsError {
    pub fn to_remote(&self) -> RemoteError {
        let errno = match self {
            // glibc answers EAI_NONAME for a malformed name too.
            DnsError::NotFound(_) | DnsError::BadName(_) => libc::ENOENT,
            DnsError::TryAgain { .. } => libc::EAGAIN,
            DnsError::Io(_) => libc::EIO,
        };
        RemoteError::new(errno, self.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub canonical: Option<String>,
    pub addrs: Vec<IpAddr>,
}

/// Resolves names for one target; cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    root: Arc<OwnedFd>,
    factory: SocketFactory,
    /// The nameservers' port: 53, another one only in tests.
    port: u16,
}

impl Resolver {
    pub fn new(root: Arc<OwnedFd>, factory: SocketFactory) -> Self {
        Self::with_port(root, factory, 53)
    }

    pub fn with_port(root: Arc<OwnedFd>, factory: SocketFactory, port: u16) -> Self {
        Self {
            root,
            factory,
            port,
        }
    }

    pub async fn resolve(&self, host: &str, family: AddrFamily) -> Result<Resolved, DnsError> {
        let want = move |a: &IpAddr| match family {
            AddrFamily::Any => true,
            AddrFamily::V4 => a.is_ipv4(),
            AddrFamily::V6 => a.is_ipv6(),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if want(&ip) {
                Ok(Resolved {
                    canonical: None,
                    addrs: vec![ip],
                })
            } else {
                Err(DnsError::NotFound(host.to_string()))
            };
        }
        if host.is_empty()
            || host.len() > 254
            || host.contains(|c: char| c.is_whitespace() || c == '\0')
        {
            return Err(DnsError::BadName(host.to_string()));
        }
        // The files are read on every request: they are small and a target
        // may rewrite them at any time.
        let root = self.root.clone();
        let (hosts_text, resolv_text) = tokio::task::spawn_blocking(move || {
            let read = |p: &[u8]| read_small(root.as_fd(), p).unwrap_or_default();
            (read(b"/etc/hosts"), read(b"/etc/resolv.conf"))
        })
        .await
        .map_err(|e| DnsError::Io(std::io::Error::other(e)))?;

        let entries = hosts::parse(&hosts_text);
        if let Some((canonical, addrs)) = hosts::lookup(&entries, host, want) {
            return Ok(Resolved {
                canonical: Some(canonical),
                addrs,
            });
        }
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            let addrs: Vec<IpAddr> = [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
            .into_iter()
            .filter(want)
            .collect();
            return Ok(Resolved {
                canonical: Some(lower),
                addrs,
            });
        }
        let conf = ResolvConf::parse(&resolv_text);
        self.dns(host, family, &conf).await
    }

    async fn dns(
        &self,
        host: &str,
        family: AddrFamily,
        conf: &ResolvConf,
    ) -> Result<Resolved, DnsError> {
        let servers: Vec<_> = conf
            .nameservers
            .iter()
            .map(|&ip| client::server_addr(ip, self.port))
            .collect();
        let query = Query {
            factory: &self.factory,
            servers: &servers,
            timeout: conf.timeout,
            attempts: conf.attempts,
        };
        let mut temp_failure = None;
        for name in conf.candidates(host) {
            // Both families are asked at once, as glibc does for AF_UNSPEC.
            let (v4, v6) = tokio::join!(
                async {
                    match family {
                        AddrFamily::V6 => Ok(Lookup::default()),
                        _ => self.lookup(&query, &name, TYPE_A).await,
                    }
                },
                async {
                    match family {
                        AddrFamily::V4 => Ok(Lookup::default()),
                        _ => self.lookup(&query, &name, TYPE_AAAA).await,
                    }
                },
            );
            let (v4, v6) = (v4?, v6?);
            if !v4.addrs.is_empty() || !v6.addrs.is_empty() {
                let canonical = if v4.addrs.is_empty() {
                    v6.canonical
                } else {
                    v4.canonical
                };
                let mut addrs = v4.addrs;
                addrs.extend(v6.addrs);
                return Ok(Resolved {
                    canonical: Some(canonical),
                    addrs,
                });
            }
            if let Some(e) = v4.failed.or(v6.failed) {
                temp_failure = Some(e);
            }
        }
        match temp_failure {
            Some(detail) => Err(DnsError::TryAgain {
                host: host.to_string(),
                detail,
            }),
            None => Err(DnsError::NotFound(host.to_string())),
        }
    }

    /// The addresses of one type for `name`, following CNAME chains (within
    /// the answer, then with new questions when the server stopped early).
    async fn lookup(&self, query: &Query<'_>, name: &str, qtype: u16) -> Result<Lookup, DnsError> {
        let mut current = name.to_ascii_lowercase();
        for _ in 0..MAX_CNAME_HOPS {
            let msg = match query
                .ask(&current, qtype)
                .await
                .map_err(|_| DnsError::BadName(name.to_string()))?
            {
                QueryResult::Answer(m) => m,
                QueryResult::Failed(detail) => {
                    return Ok(Lookup {
                        failed: Some(detail),
                        ..Lookup::new(current)
                    })
                }
            };
            let (canonical, addrs) = follow_chain(&msg.answers, &current);
            if !addrs.is_empty() || canonical == current {
                return Ok(Lookup {
                    canonical,
                    addrs,
                    failed: None,
                });
            }
            current = canonical;
        }
        Ok(Lookup::new(current))
    }
}

#[derive(Debug, Default)]
struct Lookup {
    canonical: String,
    addrs: Vec<IpAddr>,
    failed: Option<String>,
}

impl Lookup {
    fn new(canonical: String) -> Self {
        Self {
            canonical,
            ..Self::default()
        }
    }
}

/// Walks the CNAME records from `name` and collects the addresses of the
/// last name of the chain.
fn follow_chain(records: &[wire::Record], name: &str) -> (String, Vec<IpAddr>) {
    let mut current = name.to_string();
    for _ in 0..MAX_CNAME_HOPS {
        let next = records.iter().find_map(|r| match &r.data {
            RData::Cname(target) if r.name == current => Some(target.clone()),
            _ => None,
        });
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    let addrs = records
        .iter()
        .filter(|r| r.name == current)
        .filter_map(|r| match r.data {
            RData::A(a) => Some(IpAddr::V4(a)),
            RData::Aaaa(a) => Some(IpAddr::V6(a)),
            _ => None,
        })
        .collect();
    (current, addrs)
}

fn read_small(root: std::os::fd::BorrowedFd<'_>, path: &[u8]) -> std::io::Result<String> {
    use std::io::Read;
    let fd = crate::root::open_in_root(root, path, libc::O_RDONLY, 0)?;
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(1 << 20)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests;
