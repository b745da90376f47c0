//! The HTTP filter of a stolen port: each HTTP/1.1 request of a stolen
//! connection (keep-alive included) goes either to the client that stole
//! it (when every given pattern matches) or to the target's own server at
//! the connection's original destination, byte for byte. Requests are
//! handled one at a time: a request is forwarded, its response copied back
//! whole, then the next request is read (pipelined requests wait in the
//! buffer meanwhile).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use regex::Regex;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::http::{copy_body, read_head, Body, Head};
use crate::netns::SocketFactory;

/// Compiled patterns of a subscription's HTTP filter.
#[derive(Debug)]
pub struct HttpFilter {
    header: Option<Regex>,
    path: Option<Regex>,
}

impl HttpFilter {
    pub fn new(filter: &mirrord_protocol::HttpFilter) -> Result<Self, String> {
        let compile = |p: &Option<String>| {
            p.as_deref()
                .map(|p| Regex::new(p).map_err(|e| format!("invalid regex {p:?}: {e}")))
                .transpose()
        };
        Ok(HttpFilter {
            header: compile(&filter.header)?,
            path: compile(&filter.path)?,
        })
    }

    /// Every given pattern matches: a header line, the request target.
    pub fn matches(&self, head: &Head) -> bool {
        let header = self
            .header
            .as_ref()
            .is_none_or(|re| head.headers.iter().any(|line| re.is_match(line)));
        let path = self.path.as_ref().is_none_or(|re| re.is_match(&head.path));
        header && path
    }
}

/// Opens the stream to the stealing client for a connection's first
/// matching request, and the relay task that carries it.
pub type OpenLocal =
    Box<dyn FnMut() -> (DuplexStream, Pin<Box<dyn Future<Output = ()> + Send>>) + Send>;

/// How long a finished connection waits for its relay to the client to
/// drain before the relay is dropped.
const DRAIN: Duration = Duration::from_secs(2);

/// Serves one stolen connection until the client closes it or an error.
pub async fn serve(
    client: TcpStream,
    original: SocketAddr,
    filter: std::sync::Arc<HttpFilter>,
    factory: SocketFactory,
    mut open_local: OpenLocal,
) {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut local: Option<BufReader<DuplexStream>> = None;
    let mut upstream: Option<BufReader<TcpStream>> = None;
    let mut relays = JoinSet::new();
    let outcome: io::Result<()> = async {
        while let Some(head) = read_head(&mut client_read, true).await? {
            let body = head.request_body()?;
            let close = head.close;
            let done = if filter.matches(&head) {
                let stream = match &mut local {
                    Some(stream) => stream,
                    None => {
                        let (stream, relay) = open_local();
                        relays.spawn(relay);
                        local.insert(BufReader::new(stream))
                    }
                };
                let done =
                    exchange(&mut client_read, &mut client_write, &head, body, stream).await?;
                if !done.reuse {
                    local = None; // The next match opens a new connection.
                }
                done
            } else {
                let stream = match &mut upstream {
                    Some(stream) => stream,
                    None => {
                        let socket = factory.tcp(original.is_ipv6()).await?;
                        let stream = socket.connect(original).await?;
                        let _ = stream.set_nodelay(true);
                        upstream.insert(BufReader::new(stream))
                    }
                };
                let done =
                    exchange(&mut client_read, &mut client_write, &head, body, stream).await?;
                if !done.reuse {
                    upstream = None; // The next such request reconnects.
                }
                done
            };
            if close || done.end_client {
                break;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        tracing::debug!(%original, "filtered connection ended: {e}");
    }
    let _ = client_write.shutdown().await;
    // The client's stream ends: its relay reports the end and finishes.
    drop(local);
    let _ =
        tokio::time::timeout(DRAIN, async { while relays.join_next().await.is_some() {} }).await;
}

/// What one exchange left behind.
struct Done {
    /// The server's connection can take another request.
    reuse: bool,
    /// The response ended by the server closing: the client's connection
    /// must close too, for the client to see where it ends.
    end_client: bool,
}

/// Forwards one request (head and body) to `server` and its response back
/// to the client.
async fn exchange<C, W, S>(
    client: &mut C,
    client_write: &mut W,
    head: &Head,
    body: Body,
    server: &mut S,
) -> io::Result<Done>
where
    C: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
    S: AsyncBufRead + AsyncWrite + Unpin,
{
    server.write_all(&head.raw).await?;
    copy_body(client, server, body).await?;
    server.flush().await?;
    loop {
        let Some(response) = read_head(server, false).await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed before answering",
            ));
        };
        client_write.write_all(&response.raw).await?;
        let response_body = response.response_body(&head.method)?;
        copy_body(server, client_write, response_body).await?;
        client_write.flush().await?;
        // An interim answer (100 Continue...) is followed by the real one.
        if (100..200).contains(&response.status) && response.status != 101 {
            continue;
        }
        let until_close = response_body == Body::UntilClose;
        return Ok(Done {
            reuse: !response.close && !until_close,
            end_client: until_close,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        futures::executor::block_on(async {
            let mut reader = BufReader::new(text.as_bytes());
            read_head(&mut reader, true).await.unwrap().unwrap()
        })
    }

    #[test]
    fn every_given_pattern_must_match() {
        let filter = |header: Option<&str>, path: Option<&str>| {
            HttpFilter::new(&mirrord_protocol::HttpFilter {
                header: header.map(str::to_owned),
                path: path.map(str::to_owned),
            })
            .unwrap()
        };
        let alice = head("GET /api/x?y=1 HTTP/1.1\r\nX-User: alice\r\n\r\n");
        let bob = head("GET /health HTTP/1.1\r\nX-User: bob\r\n\r\n");
        let by_header = filter(Some("^(?i)x-user: alice$"), None);
        assert!(by_header.matches(&alice) && !by_header.matches(&bob));
        let by_path = filter(None, Some("^/api/"));
        assert!(by_path.matches(&alice) && !by_path.matches(&bob));
        let both = filter(Some("bob"), Some("^/api/"));
        assert!(!both.matches(&alice) && !both.matches(&bob));
        assert!(HttpFilter::new(&mirrord_protocol::HttpFilter {
            header: Some("(".into()),
            path: None
        })
        .is_err());
    }
}
