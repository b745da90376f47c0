//! Abstract Unix sockets for the local hops (layer <-> intproxy, intproxy
//! <-> a local agent): half the cost of TCP over loopback, nothing in the
//! filesystem to clean up, and gone with the process that bound them.

use std::io::Read;
use std::os::linux::net::SocketAddrExt;

use tokio::net::{UnixListener, UnixStream};

pub use mirrord_protocol::transport::{split, ReadHalf, WriteHalf};

/// The prefix that marks an abstract Unix socket address in mirrord's
/// variables and readiness lines: `unix:@NAME`.
pub const PREFIX: &str = "unix:@";

/// A fresh name: `mirrord-<role>-<pid>-<random>`.
pub fn unique_name(role: &str) -> String {
    let mut random = [0u8; 8];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        let _ = urandom.read_exact(&mut random);
    }
    format!(
        "mirrord-{role}-{}-{:016x}",
        std::process::id(),
        u64::from_ne_bytes(random)
    )
}

pub fn bind(name: &str) -> std::io::Result<UnixListener> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

pub async fn connect(name: &str) -> std::io::Result<UnixStream> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_and_connects_by_name() {
        let name = unique_name("test");
        assert!(name.starts_with(&format!("mirrord-test-{}-", std::process::id())));
        let listener = bind(&name).unwrap();
        let _client = connect(&name).await.unwrap();
        listener.accept().await.unwrap();
        assert_ne!(unique_name("test"), name);
    }
}
