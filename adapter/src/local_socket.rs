//! Abstract Unix sockets for the local hops (layer <-> intproxy, intproxy
//! <-> a local agent): half the cost of TCP over loopback, nothing in the
//! filesystem to clean up, and gone with the process that bound them.

use std::io::Read;

pub use mirrord_protocol::transport::{
    bind_abstract, connect_abstract, split, ReadHalf, WriteHalf,
};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_and_connects_by_name() {
        let name = unique_name("test");
        assert!(name.starts_with(&format!("mirrord-test-{}-", std::process::id())));
        let listener = bind_abstract(&name).unwrap();
        let _client = connect_abstract(&name).unwrap();
        listener.accept().await.unwrap();
        assert_ne!(unique_name("test"), name);
    }
}
