//! DAP's base protocol: `Content-Length: N\r\n\r\n` and N bytes of JSON.
//!
//! Parsing is strict: every header line must be `Name: value` ending in
//! CRLF, `Content-Length` must be present once and be a plain decimal, the
//! header block and the body have limits, and the body must be one JSON
//! object. The body is returned as the exact bytes received, so a message
//! the proxy does not rewrite goes out byte for byte.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::message::Envelope;

/// One message: its exact bytes and the fields the proxy routes by (`None`
/// for a valid JSON object whose routing fields have unexpected types).
#[derive(Debug)]
pub struct Frame {
    pub body: Vec<u8>,
    pub envelope: Option<Envelope>,
}

impl Frame {
    /// A frame of bytes known to be a JSON object.
    #[cfg(test)]
    pub fn new(body: Vec<u8>) -> Frame {
        let envelope = Envelope::parse(&body);
        Frame { body, envelope }
    }
}

/// The largest body accepted (a `variables` or `source` response can be
/// big, but nothing legitimate comes near this).
pub const MAX_BODY: usize = 64 << 20;
/// The largest header block accepted.
const MAX_HEADER: usize = 8 << 10;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the stream ended in the middle of a message")]
    Truncated,
    #[error("malformed header line {0:?}: expected `Content-Length: <bytes>` ending in CRLF")]
    BadHeader(String),
    #[error("the message has no Content-Length header")]
    NoLength,
    #[error("Content-Length {0} is over the limit of {MAX_BODY} bytes")]
    TooLong(usize),
    #[error("the header block is over {MAX_HEADER} bytes")]
    HeaderTooLong,
    #[error("the body is not a JSON object: {0}")]
    BadJson(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads one message; `Ok(None)` on a clean end of stream (between
/// messages).
pub async fn read_message<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Frame>, FrameError> {
    let mut length = None;
    let mut header_bytes = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut *reader)
            .take((MAX_HEADER - header_bytes + 1) as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return if header_bytes == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        header_bytes += n;
        if header_bytes > MAX_HEADER {
            return Err(FrameError::HeaderTooLong);
        }
        let Some(text) = line.strip_suffix(b"\r\n") else {
            return Err(match line.last() {
                Some(b'\n') => bad_header(&line),
                _ => FrameError::Truncated,
            });
        };
        if text.is_empty() {
            break;
        }
        let text = std::str::from_utf8(text).map_err(|_| bad_header(&line))?;
        let (name, value) = text.split_once(':').ok_or_else(|| bad_header(&line))?;
        if name.is_empty() || name.trim() != name {
            return Err(bad_header(&line));
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            let value = value.trim();
            if length.is_some()
                || value.is_empty()
                || !value.bytes().all(|b| b.is_ascii_digit())
                || value.len() > 12
            {
                return Err(bad_header(&line));
            }
            let n: usize = value.parse().map_err(|_| bad_header(&line))?;
            if n > MAX_BODY {
                return Err(FrameError::TooLong(n));
            }
            length = Some(n);
        }
    }
    let length = length.ok_or(FrameError::NoLength)?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    // One parse both validates and reads the routing fields; only a body
    // that is not an object with the expected field types parses twice.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return Err(FrameError::BadJson("expected an object".into()));
    }
    if let Some(envelope) = Envelope::parse(&body) {
        return Ok(Some(Frame {
            body,
            envelope: Some(envelope),
        }));
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        Ok(_) => Ok(Some(Frame {
            body,
            envelope: None,
        })),
        Err(e) => Err(FrameError::BadJson(e.to_string())),
    }
}

fn bad_header(line: &[u8]) -> FrameError {
    let shown: String = String::from_utf8_lossy(line).chars().take(80).collect();
    FrameError::BadHeader(shown)
}

/// One message with its header.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 32);
    frame.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Writes one message (in one write) and flushes.
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    writer.write_all(&encode(body)).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut reader = tokio::io::BufReader::new(input);
        let mut out = Vec::new();
        while let Some(frame) = read_message(&mut reader).await? {
            out.push(frame.body);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn reads_messages_byte_for_byte() {
        let a = br#"{"seq":1, "type":"request","x":"\u00e9"}"#;
        let b = br#"{"seq":2,"type":"event"}"#;
        let mut input = Vec::new();
        input.extend(format!("Content-Length: {}\r\n\r\n", a.len()).as_bytes());
        input.extend(a);
        input.extend(
            format!(
                "content-length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
                b.len()
            )
            .as_bytes(),
        );
        input.extend(b);
        assert_eq!(
            read_all(&input).await.unwrap(),
            vec![a.to_vec(), b.to_vec()]
        );
    }

    #[tokio::test]
    async fn bad_input_is_an_error_never_a_panic() {
        let cases: &[(&[u8], &str)] = &[
            (b"Content-Length: 5\r\n\r\n{\"a\"", "ended"),
            (b"Content-Length: 2\n\n{}", "malformed"),
            (b"Content-Length: x\r\n\r\n{}", "malformed"),
            (b"Content-Length: -1\r\n\r\n{}", "malformed"),
            (b"Content-Length: 99999999999\r\n\r\n", "limit"),
            (
                b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
                "malformed",
            ),
            (b"Content-Type: x\r\n\r\n{}", "no Content-Length"),
            (b"garbage\r\n\r\n", "malformed"),
            (b"Content-Length: 3\r\n\r\n{}}", "JSON"),
            (b"Content-Length: 2\r\n\r\n[]", "object"),
            (b"Content-Length: 4\r\n\r\n\xff\xfe{}", "JSON"),
            (b"Content-Len", "ended"),
        ];
        for (input, expected) in cases {
            let err = read_all(input).await.unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{:?}: {err}",
                String::from_utf8_lossy(input)
            );
        }
        let long_header = vec![b'a'; MAX_HEADER + 10];
        assert!(matches!(
            read_all(&long_header).await,
            Err(FrameError::HeaderTooLong)
        ));
    }

    #[tokio::test]
    async fn write_then_read_round_trips() {
        let mut out = Vec::new();
        write_message(&mut out, b"{\"seq\":1}").await.unwrap();
        assert_eq!(out, b"Content-Length: 9\r\n\r\n{\"seq\":1}");
        assert_eq!(read_all(&out).await.unwrap(), vec![b"{\"seq\":1}".to_vec()]);
    }
}
