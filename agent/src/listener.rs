//! Where the agent listens: a TCP address (`IP:PORT`, what a port-forward
//! reaches) or an abstract Unix socket (`unix:@NAME`, for a local agent: no
//! TCP stack on the path and no file left behind).

use std::fmt;
use std::net::SocketAddr;
use std::os::linux::net::SocketAddrExt;
use std::str::FromStr;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    /// An abstract socket name (without the leading NUL).
    Unix(String),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.strip_prefix("unix:@") {
            Some("") => Err("unix:@ needs a name".into()),
            Some(name) => Ok(ListenAddr::Unix(name.to_owned())),
            None => s
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|_| format!("{s:?} is neither IP:PORT nor unix:@NAME")),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(name) => write!(f, "unix:@{name}"),
        }
    }
}

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// An accepted client connection.
pub enum Accepted {
    Tcp(TcpStream, SocketAddr),
    Unix(UnixStream),
}

impl Listener {
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Listener> {
        match addr {
            ListenAddr::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
            ListenAddr::Unix(name) => {
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                let std = std::os::unix::net::UnixListener::bind_addr(&addr)?;
                std.set_nonblocking(true)?;
                Ok(Listener::Unix(UnixListener::from_std(std)?))
            }
        }
    }

    /// The bound address (the real port when `:0` was asked).
    pub fn local_addr(&self, asked: &ListenAddr) -> std::io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Listener::Unix(_) => Ok(asked.clone()),
        }
    }

    pub async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                Ok(Accepted::Tcp(stream, peer))
            }
            Listener::Unix(l) => Ok(Accepted::Unix(l.accept().await?.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_others() {
        assert_eq!(
            "127.0.0.1:0".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()))
        );
        assert_eq!(
            "unix:@agent-1".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("agent-1".into()))
        );
        assert!("unix:@".parse::<ListenAddr>().is_err());
        assert!("localhost".parse::<ListenAddr>().is_err());
    }

    #[tokio::test]
    async fn abstract_unix_listener_accepts() {
        let name = format!("mirrord-agent-test-{}", std::process::id());
        let addr = ListenAddr::Unix(name.clone());
        let listener = Listener::bind(&addr).await.unwrap();
        let std_addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let client = std::os::unix::net::UnixStream::connect_addr(&std_addr).unwrap();
        assert!(matches!(
            listener.accept().await.unwrap(),
            Accepted::Unix(_)
        ));
        drop(client);
    }
}
