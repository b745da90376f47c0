//! Sends one DNS question to the nameservers, from sockets made by the
//! socket factory (so in the target's network namespace): UDP first, TCP
//! again when the answer is truncated; per-try timeout and attempts from
//! resolv.conf.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire::{self, Message, RCODE_NOERROR, RCODE_NXDOMAIN};
use crate::netns::SocketFactory;

/// The outcome of asking every nameserver about one name and type.
#[derive(Debug)]
pub enum QueryResult {
    /// NOERROR or NXDOMAIN from some server.
    Answer(Message),
    /// No server gave a usable answer (timeouts, SERVFAIL, REFUSED...).
    Failed(String),
}

pub struct Query<'a> {
    pub factory: &'a SocketFactory,
    pub servers: &'a [SocketAddr],
    pub timeout: Duration,
    pub attempts: u8,
}

impl Query<'_> {
    pub async fn ask(&self, name: &str, qtype: u16) -> Result<QueryResult, wire::WireError> {
        let mut last = String::from("no nameserver configured");
        for _ in 0..self.attempts.max(1) {
            for &server in self.servers {
                let id = random_id();
                let query = wire::encode_query(id, name, qtype)?;
                match self.udp(server, id, &query).await {
                    Ok(m) if m.truncated => match self.tcp(server, id, &query).await {
                        Ok(m) => return Ok(QueryResult::Answer(m)),
                        Err(e) => last = format!("{server} over TCP: {e}"),
                    },
                    Ok(m) if m.rcode == RCODE_NOERROR || m.rcode == RCODE_NXDOMAIN => {
                        return Ok(QueryResult::Answer(m))
                    }
                    Ok(m) => last = format!("{server} answered rcode {}", m.rcode),
                    Err(e) => last = format!("{server}: {e}"),
                }
            }
        }
        Ok(QueryResult::Failed(last))
    }

    async fn udp(&self, server: SocketAddr, id: u16, query: &[u8]) -> std::io::Result<Message> {
        let sock = self.factory.udp(server.is_ipv6()).await?;
        sock.connect(server).await?;
        sock.send(query).await?;
        let mut buf = vec![0u8; 4096];
        tokio::time::timeout(self.timeout, async {
            loop {
                let n = sock.recv(&mut buf).await?;
                // Anything that is not the answer to this question is ignored.
                if let Ok(m) = wire::parse(&buf[..n]) {
                    if m.id == id && m.is_response {
                        return Ok(m);
                    }
                }
            }
        })
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }

    async fn tcp(&self, server: SocketAddr, id: u16, query: &[u8]) -> std::io::Result<Message> {
        let sock = self.factory.tcp(server.is_ipv6()).await?;
        tokio::time::timeout(self.timeout, async {
            let mut stream = sock.connect(server).await?;
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            stream.write_all(&framed).await?;
            let len = stream.read_u16().await? as usize;
            let mut buf = vec![0u8; len];
            stream.read_exact(&mut buf).await?;
            match wire::parse(&buf) {
                Ok(m) if m.id == id && m.is_response => Ok(m),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "bad DNS answer over TCP",
                )),
            }
        })
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }
}

/// The nameserver's address on port `port` (53 but in tests).
pub fn server_addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// A random query id from the kernel (spoofing resistance), with a clock
/// fallback.
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // SAFETY: writes at most 2 bytes into a live buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 2, libc::GRND_NONBLOCK) };
    if n == 2 {
        u16::from_ne_bytes(b)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u16)
            .unwrap_or(0x5a5a)
    }
}
