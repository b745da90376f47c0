//! The HTTP filter of a stolen port: each HTTP/1.1 request of a stolen
//! connection (keep-alive included) goes either to the client that stole
//! it (when every given pattern matches) or to the target's own server at
//! the connection's original destination, byte for byte. Requests are
//! handled one at a time: a request is forwarded, its response copied back
//! whole, then the next request is read (pipelined requests wait in the
//! buffer meanwhile). A request that switches protocols (`101` to an
//! `Upgrade`, such as a WebSocket handshake, or a `2xx` to `CONNECT`)
//! turns the rest of the connection into a tunnel to whichever side
//! answered it. A connection that does not open with an HTTP/1 request
//! (HTTP/2's preface, TLS) is not filtered: it goes whole to the target's
//! own server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use regex::Regex;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream,
};
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
        if not_http1(&mut client_read).await? {
            // Not filterable here: the whole connection is the target's.
            let mut server = connect(&factory, original).await?;
            return tunnel(&mut client_read, &mut client_write, &mut server).await;
        }
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
                if done.tunnel {
                    return tunnel(&mut client_read, &mut client_write, stream).await;
                }
                if !done.reuse {
                    local = None; // The next match opens a new connection.
                }
                done
            } else {
                let stream = match &mut upstream {
                    Some(stream) => stream,
                    None => upstream.insert(BufReader::new(connect(&factory, original).await?)),
                };
                let done =
                    exchange(&mut client_read, &mut client_write, &head, body, stream).await?;
                if done.tunnel {
                    return tunnel(&mut client_read, &mut client_write, stream).await;
                }
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

/// The target's own server at the connection's original destination.
async fn connect(factory: &SocketFactory, original: SocketAddr) -> io::Result<TcpStream> {
    let socket = factory.tcp(original.is_ipv6()).await?;
    let stream = socket.connect(original).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The connection does not open with an HTTP/1 request line: HTTP/2's
/// prior-knowledge preface (`h2c`, as gRPC without TLS sends it), a TLS
/// handshake or any other protocol (a method starts with a capital
/// letter). Decided on the first bytes that arrived (a client sends its
/// opening in one write), which stay in the buffer.
async fn not_http1<R: AsyncBufRead + Unpin>(client: &mut R) -> io::Result<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let first = client.fill_buf().await?;
    let n = first.len().min(PREFACE.len());
    let http2 = n >= 4 && first[..n] == PREFACE[..n];
    Ok(http2 || first.first().is_some_and(|b| !b.is_ascii_uppercase()))
}

/// What one exchange left behind.
struct Done {
    /// The server's connection can take another request.
    reuse: bool,
    /// The response ended by the server closing: the client's connection
    /// must close too, for the client to see where it ends.
    end_client: bool,
    /// The server switched protocols: the connection is a tunnel from now.
    tunnel: bool,
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
        if switches_protocols(head, &response) {
            client_write.flush().await?;
            return Ok(Done {
                reuse: false,
                end_client: false,
                tunnel: true,
            });
        }
        let response_body = response.response_body(&head.method)?;
        copy_body(server, client_write, response_body).await?;
        client_write.flush().await?;
        // An interim answer (100 Continue...) is followed by the real one.
        if (100..200).contains(&response.status) {
            continue;
        }
        let until_close = response_body == Body::UntilClose;
        return Ok(Done {
            reuse: !response.close && !until_close,
            end_client: until_close,
            tunnel: false,
        });
    }
}

/// `101 Switching Protocols` (the answer to an `Upgrade`), or a `2xx` to
/// `CONNECT`: what follows the response's head is no longer HTTP.
fn switches_protocols(request: &Head, response: &Head) -> bool {
    response.status == 101
        || (request.method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&response.status))
}

/// Carries bytes both ways between the client and `server` as they come
/// (what either side's buffer already holds first), passing each side's
/// end on to the other, until both have ended.
async fn tunnel<C, W, S>(
    client_read: &mut C,
    client_write: &mut W,
    server: &mut S,
) -> io::Result<()>
where
    C: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = tokio::io::join(client_read, client_write);
    tokio::io::copy_bidirectional(&mut client, server)
        .await
        .map(drop)
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

    /// One side of the tunnel test: answers plain requests with `200`
    /// and its name, an `Upgrade` with `101`, then greets with its name
    /// and echoes every byte until the client ends.
    async fn upgradable_server<S>(stream: S, name: &'static str)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        use tokio::io::AsyncReadExt;
        let mut stream = BufReader::new(stream);
        while let Ok(Some(request)) = read_head(&mut stream, true).await {
            if !request.headers.iter().any(|h| h.starts_with("Upgrade:")) {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                    name.len()
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
                continue;
            }
            let switch = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n{name}:");
            stream.write_all(switch.as_bytes()).await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => stream.write_all(&buf[..n]).await.unwrap(),
                }
            }
            let _ = stream.shutdown().await;
            return;
        }
    }

    /// Steals one connection through `serve` (the target's own server and
    /// the stealing client both [`upgradable_server`]s) and returns the
    /// client's end.
    async fn stolen_connection() -> TcpStream {
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let original = target.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = target.accept().await {
                tokio::spawn(upgradable_server(stream, "pod"));
            }
        });
        let open_local: OpenLocal = Box::new(|| {
            let (ours, theirs) = tokio::io::duplex(4096);
            (ours, Box::pin(upgradable_server(theirs, "local")))
        });
        steal(original, "^X-Mirrord: yes$", open_local).await
    }

    /// A client's connection whose other end `serve` filters by `header`,
    /// with `original` as the target's own server.
    async fn steal(original: SocketAddr, header: &str, open_local: OpenLocal) -> TcpStream {
        let filter = HttpFilter::new(&mirrord_protocol::HttpFilter {
            header: Some(header.into()),
            path: None,
        })
        .unwrap();
        let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(front.local_addr().unwrap())
            .await
            .unwrap();
        let (stolen, _) = front.accept().await.unwrap();
        let factory = SocketFactory::start(None).unwrap();
        tokio::spawn(serve(
            stolen,
            original,
            std::sync::Arc::new(filter),
            factory,
            open_local,
        ));
        client
    }

    /// Sends `request` (plus `early` bytes right behind it, in the same
    /// write) and returns everything the connection gives back after the
    /// client has sent `late` and ended its side.
    async fn exchange_over(
        client: &mut TcpStream,
        request: &str,
        early: &str,
        late: &str,
    ) -> String {
        use tokio::io::AsyncReadExt;
        client
            .write_all(format!("{request}{early}").as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(late.as_bytes()).await.unwrap();
        client.shutdown().await.unwrap();
        let mut all = String::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut all))
            .await
            .expect("the tunnel ends once both sides have")
            .unwrap();
        all
    }

    #[tokio::test]
    async fn an_upgrade_makes_a_tunnel_to_the_side_that_answered_it() {
        let upgrade = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n";
        // Matching: the stealing client answers, after a plain request on
        // the same connection went to the target's server.
        let mut client = stolen_connection().await;
        let plain = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let got = exchange_over(
            &mut client,
            &format!("{plain}{upgrade}X-Mirrord: yes\r\n\r\n"),
            "early,",
            "late",
        )
        .await;
        assert!(
            got.starts_with("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\npod"),
            "{got:?}"
        );
        assert!(got.ends_with("101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nlocal:early,late"), "{got:?}");

        // Not matching: the target's own server answers and tunnels.
        let mut client = stolen_connection().await;
        let got = exchange_over(&mut client, &format!("{upgrade}\r\n"), "early,", "late").await;
        assert!(got.ends_with("\r\n\r\npod:early,late"), "{got:?}");
    }

    #[tokio::test]
    async fn a_connection_that_is_not_http1_goes_whole_to_the_target() {
        let h2 = &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"[..];
        let tls = &b"\x16\x03\x01\x00\x05hello"[..];
        for sent in [h2, tls] {
            passes_through_whole(sent).await;
        }
    }

    async fn passes_through_whole(sent: &[u8]) {
        use tokio::io::AsyncReadExt;
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let original = target.local_addr().unwrap();
        let pod = tokio::spawn(async move {
            let (mut stream, _) = target.accept().await.unwrap();
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.unwrap();
            stream.write_all(b"pod saw it").await.unwrap();
            got
        });
        let open_local: OpenLocal =
            Box::new(|| panic!("a connection that is not HTTP/1 reached the client"));
        let mut client = steal(original, ".", open_local).await;
        client.write_all(sent).await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer))
            .await
            .expect("the connection ends")
            .unwrap();
        assert_eq!(answer, b"pod saw it");
        assert_eq!(pod.await.unwrap(), sent);
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
