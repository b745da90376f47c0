//! DAP's base protocol: `Content-Length: N\r\n\r\n` and N bytes of JSON.
//!
//! Parsing is strict: every header line must be `Name: value` ending in
//! CRLF, `Content-Length` must be present once and be a plain decimal, the
//! header block and the body have limits, and the body must be one JSON
//! object ([`super::scan`]). The body is returned as the exact bytes
//! received, so a message the proxy does not rewrite goes out byte for
//! byte.
//!
//! [`FrameReader`] reads into one buffer and cuts every message that one
//! read brought, so a burst costs one `read` however many messages it
//! holds.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::message::Envelope;
use super::scan;

/// One message: its exact bytes and the fields the proxy routes by (`None`
/// for a valid JSON object whose routing fields have unexpected types).
#[derive(Debug)]
pub struct Frame {
    pub body: Vec<u8>,
    pub envelope: Option<Envelope>,
}

/// The largest body accepted (a `variables` or `source` response can be
/// big, but nothing legitimate comes near this).
pub const MAX_BODY: usize = 64 << 20;
/// The largest header block accepted.
const MAX_HEADER: usize = 8 << 10;
/// The read buffer's usual size; it grows for one larger message and
/// shrinks back once that message is taken.
const BUFFER: usize = 64 << 10;

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

/// The messages of one stream, cut out of a buffer that each read fills
/// as far as it can.
pub struct FrameReader {
    buf: Vec<u8>,
    /// The first byte not yet taken.
    start: usize,
    /// One past the last byte read.
    end: usize,
    /// The size of the message at `start`, once its header is in.
    need: usize,
    eof: bool,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            need: 0,
            eof: false,
        }
    }
}

impl FrameReader {
    /// The next message out of what was read: `Some(Ok(Some(frame)))`, an
    /// error, or `Some(Ok(None))` at a clean end of stream (between
    /// messages); `None` when more bytes must be read first.
    pub fn take(&mut self) -> Option<Result<Option<Frame>, FrameError>> {
        let pending = &self.buf[self.start..self.end];
        let (header, length) = match parse_header(pending) {
            Ok(Some(sizes)) => sizes,
            Ok(None) if !self.eof => return None,
            Ok(None) if pending.is_empty() => return Some(Ok(None)),
            Ok(None) => return Some(Err(FrameError::Truncated)),
            Err(e) => return Some(Err(e)),
        };
        let total = header + length;
        if pending.len() < total {
            self.need = total;
            return (self.eof).then_some(Err(FrameError::Truncated));
        }
        let body = pending[header..total].to_vec();
        self.start += total;
        self.need = 0;
        Some(match scan::envelope(&body) {
            Ok(envelope) => Ok(Some(Frame { body, envelope })),
            Err(e) => Err(FrameError::BadJson(e.to_string())),
        })
    }

    /// Reads once, as much as the buffer takes (cancel-safe: nothing is
    /// lost if the future is dropped before it completes).
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> std::io::Result<()> {
        self.make_room();
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        self.eof |= n == 0;
        Ok(())
    }

    /// Reads until the next message, error or end of stream.
    #[cfg(test)]
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(next) = self.take() {
                return next;
            }
            self.fill(reader).await?;
        }
    }

    /// Moves what is left to the front when the buffer's tail is short,
    /// and grows the buffer when the message being read does not fit (or
    /// shrinks it back after a big one).
    fn make_room(&mut self) {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            if self.need == 0 && self.buf.len() > BUFFER {
                self.buf.truncate(BUFFER);
                self.buf.shrink_to_fit();
            }
        }
        let room = self.buf.len() - self.end;
        if self.start > 0 && (room < 4096 || self.buf.len() - self.start < self.need) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        // The header's limits keep `need` within MAX_HEADER + MAX_BODY.
        if self.buf.len() - self.start < self.need {
            self.buf.resize(self.start + self.need, 0);
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() + BUFFER, 0);
        }
    }
}

/// The header block at the start of `bytes`: `(header length, body
/// length)`, or `None` while it is incomplete.
fn parse_header(bytes: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let mut length = None;
    let mut at = 0;
    loop {
        let Some(newline) = bytes[at..].iter().position(|&b| b == b'\n') else {
            return if bytes.len() > MAX_HEADER {
                Err(FrameError::HeaderTooLong)
            } else {
                Ok(None)
            };
        };
        let line = &bytes[at..at + newline + 1];
        at += newline + 1;
        if at > MAX_HEADER {
            return Err(FrameError::HeaderTooLong);
        }
        let Some(text) = line.strip_suffix(b"\r\n") else {
            return Err(bad_header(line));
        };
        if text.is_empty() {
            break;
        }
        let text = std::str::from_utf8(text).map_err(|_| bad_header(line))?;
        let (name, value) = text.split_once(':').ok_or_else(|| bad_header(line))?;
        if name.is_empty() || name.trim() != name {
            return Err(bad_header(line));
        }
        if name.eq_ignore_ascii_case("Content-Length") {
            let value = value.trim();
            if length.is_some()
                || value.is_empty()
                || !value.bytes().all(|b| b.is_ascii_digit())
                || value.len() > 12
            {
                return Err(bad_header(line));
            }
            let n: usize = value.parse().map_err(|_| bad_header(line))?;
            if n > MAX_BODY {
                return Err(FrameError::TooLong(n));
            }
            length = Some(n);
        }
    }
    let length = length.ok_or(FrameError::NoLength)?;
    Ok(Some((at, length)))
}

fn bad_header(line: &[u8]) -> FrameError {
    let shown: String = String::from_utf8_lossy(line).chars().take(80).collect();
    FrameError::BadHeader(shown)
}

/// Appends one message with its header to `out`.
pub fn encode_into(out: &mut Vec<u8>, body: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    out.extend_from_slice(body);
}

/// One message with its header.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 32);
    encode_into(&mut frame, body);
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
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;

    /// Gives its bytes `step` at a time.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self
                .step
                .min(self.data.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    async fn read_in_steps(input: &[u8], step: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut reader = Trickle {
            data: input.to_vec(),
            at: 0,
            step,
        };
        let mut frames = FrameReader::default();
        let mut out = Vec::new();
        while let Some(frame) = frames.read(&mut reader).await? {
            out.push(frame.body);
        }
        Ok(out)
    }

    async fn read_all(input: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        read_in_steps(input, usize::MAX).await
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
    async fn messages_come_out_whole_however_the_reads_cut_them() {
        // Small and big messages (one bigger than the buffer), read one
        // byte, a few bytes, or everything at a time.
        let bodies: Vec<Vec<u8>> = [10, 3000, BUFFER * 3, 0, 70_000]
            .iter()
            .enumerate()
            .map(|(i, &pad)| format!(r#"{{"seq":{i},"pad":"{}"}}"#, "x".repeat(pad)).into_bytes())
            .collect();
        let input: Vec<u8> = bodies.iter().flat_map(|b| encode(b)).collect();
        for step in [1, 7, 4096, BUFFER + 1, usize::MAX] {
            assert_eq!(read_in_steps(&input, step).await.unwrap(), bodies, "{step}");
        }
        // The buffer grew for the big ones and is back to its usual size.
        let mut reader = &input[..];
        let mut frames = FrameReader::default();
        while frames.read(&mut reader).await.unwrap().is_some() {}
        assert_eq!(frames.buf.len(), BUFFER);
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
            (b"Content-Length: 7\r\n\r\n{\"a\":1,", "JSON"),
            (b"Content-Len", "ended"),
        ];
        for (input, expected) in cases {
            for step in [1, usize::MAX] {
                let err = read_in_steps(input, step).await.unwrap_err().to_string();
                assert!(
                    err.contains(expected),
                    "{:?}: {err}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        let long_header = vec![b'a'; MAX_HEADER + 10];
        assert!(matches!(
            read_all(&long_header).await,
            Err(FrameError::HeaderTooLong)
        ));
        // An oversized length is refused from its header, before its body.
        let mut too_long = format!("Content-Length: {}\r\n\r\n", MAX_BODY + 1).into_bytes();
        too_long.extend_from_slice(b"{}");
        assert!(matches!(
            read_all(&too_long).await,
            Err(FrameError::TooLong(_))
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
