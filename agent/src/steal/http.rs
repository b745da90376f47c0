//! HTTP/1.1 framing for the steal filter: where a request or a response
//! head ends, how long its body is, and copying one message verbatim.
//! Heads are parsed with `httparse`; bytes are forwarded exactly as read.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest head accepted (request line or status line and headers).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
    /// A response without length: it ends when the server closes.
    UntilClose,
}

/// A parsed message head and its raw bytes.
#[derive(Debug)]
pub struct Head {
    pub raw: Vec<u8>,
    /// `GET`... for a request; empty for a response.
    pub method: String,
    /// The request target (path and query); empty for a response.
    pub path: String,
    /// The status code of a response; 0 for a request.
    pub status: u16,
    /// Header lines as `Name: value`.
    pub headers: Vec<String>,
    /// `Connection: close` was sent.
    pub close: bool,
}

impl Head {
    fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter_map(move |line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .any(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn length(&self) -> io::Result<Option<u64>> {
        match self.header("content-length").next() {
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| invalid(format!("bad Content-Length {v:?}"))),
            None => Ok(None),
        }
    }

    /// The body of this request.
    pub fn request_body(&self) -> io::Result<Body> {
        if self.chunked() {
            return Ok(Body::Chunked);
        }
        Ok(self.length()?.map_or(Body::None, Body::Length))
    }

    /// The body of this response to a request with `method`.
    pub fn response_body(&self, method: &str) -> io::Result<Body> {
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return Ok(Body::None);
        }
        if self.chunked() {
            return Ok(Body::Chunked);
        }
        Ok(self.length()?.map_or(Body::UntilClose, Body::Length))
    }
}

/// Reads one head; `None` at a clean end of stream before any byte.
pub async fn read_head<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    request: bool,
) -> io::Result<Option<Head>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = reader.read_until(b'\n', &mut raw).await?;
        if n == 0 {
            return if raw.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if raw.len() > MAX_HEAD {
            return Err(invalid("HTTP head too large".into()));
        }
        let line = &raw[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                raw.clear(); // A stray empty line between messages.
                continue;
            }
            break;
        }
    }
    parse(raw, request).map(Some)
}

fn parse(raw: Vec<u8>, request: bool) -> io::Result<Head> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (method, path, status, parsed) = if request {
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(invalid("malformed HTTP request".into())),
        }
        (
            req.method.unwrap_or_default().to_owned(),
            req.path.unwrap_or_default().to_owned(),
            0,
            req.headers.to_vec(),
        )
    } else {
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(&raw) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(invalid("malformed HTTP response".into())),
        }
        (
            String::new(),
            String::new(),
            res.code.unwrap_or(0),
            res.headers.to_vec(),
        )
    };
    let headers: Vec<String> = parsed
        .iter()
        .map(|h| format!("{}: {}", h.name, String::from_utf8_lossy(h.value)))
        .collect();
    let close = headers.iter().any(|line| {
        line.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        })
    });
    Ok(Head {
        raw,
        method,
        path,
        status,
        headers,
        close,
    })
}

/// Copies a body of kind `body` from `reader` to `writer`, byte for byte.
pub async fn copy_body<R, W>(reader: &mut R, writer: &mut W, body: Body) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match body {
        Body::None => Ok(()),
        Body::Length(n) => copy_exact(reader, writer, n).await,
        Body::UntilClose => tokio::io::copy_buf(reader, writer).await.map(drop),
        Body::Chunked => loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            writer.write_all(&line).await?;
            let text = String::from_utf8_lossy(&line);
            let size = text.trim().split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let mut trailer = Vec::new();
                    if reader.read_until(b'\n', &mut trailer).await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    writer.write_all(&trailer).await?;
                    if trailer == b"\r\n" || trailer == b"\n" {
                        return Ok(());
                    }
                }
            }
            copy_exact(reader, writer, size + 2).await?; // Data and its CRLF.
        },
    }
}

async fn copy_exact<R, W>(reader: &mut R, writer: &mut W, n: u64) -> io::Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy_buf(&mut reader.take(n), writer).await?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one(bytes: &[u8], request: bool) -> (Head, Vec<u8>) {
        let mut reader = tokio::io::BufReader::new(bytes);
        let head = read_head(&mut reader, request).await.unwrap().unwrap();
        let body = if request {
            head.request_body().unwrap()
        } else {
            head.response_body("GET").unwrap()
        };
        let mut out = Vec::new();
        copy_body(&mut reader, &mut out, body).await.unwrap();
        (head, out)
    }

    #[tokio::test]
    async fn messages_are_framed_by_length_chunks_or_nothing() {
        let (head, body) = one(
            b"POST /a?b HTTP/1.1\r\nX-User: alice\r\nContent-Length: 3\r\n\r\nabcNEXT",
            true,
        )
        .await;
        assert_eq!((head.method.as_str(), head.path.as_str()), ("POST", "/a?b"));
        assert_eq!(head.headers, ["X-User: alice", "Content-Length: 3"]);
        assert_eq!(body, b"abc");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\nNEXT";
        let (head, body) = one(chunked, false).await;
        assert_eq!(head.status, 200);
        assert_eq!(body, &chunked[head.raw.len()..chunked.len() - 4]);
        let (head, body) = one(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", true).await;
        assert!(head.close && body.is_empty());
        let (_, body) = one(b"HTTP/1.1 200 OK\r\n\r\nuntil close", false).await;
        assert_eq!(body, b"until close");
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_errors() {
        let mut reader = tokio::io::BufReader::new(&b"\x00\x01 nonsense\r\n\r\n"[..]);
        assert!(read_head(&mut reader, true).await.is_err());
        let mut reader = tokio::io::BufReader::new(&b"GET / HTTP/1.1\r\nHost"[..]);
        assert!(read_head(&mut reader, true).await.is_err());
        let mut reader = tokio::io::BufReader::new(&b""[..]);
        assert!(read_head(&mut reader, true).await.unwrap().is_none());
    }
}
