//! SPDY/3.1 frames. Every frame has an 8-byte head: a control frame is the
//! control bit, the version (3, 15 bits), the type (16 bits), flags (8) and
//! the payload length (24); a data frame is a 0 bit, the stream ID (31
//! bits), flags and length. Header blocks go through the session's
//! [`HeaderEncoder`]/[`HeaderDecoder`], so a frame writer and a frame
//! reader each own one.

use bytes::{Buf, Bytes, BytesMut};

use super::headers::{HeaderDecoder, HeaderEncoder, Headers};
use super::SpdyError;

pub const VERSION: u16 = 3;
/// The last frame of a stream from this side.
pub const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status: a frame that breaks the protocol.
pub const PROTOCOL_ERROR: u32 = 1;
/// RST_STREAM status: a stream that was never opened or is gone.
pub const INVALID_STREAM: u32 = 2;
/// RST_STREAM / GOAWAY status: a refused stream.
pub const REFUSED_STREAM: u32 = 3;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const MAX_LENGTH: usize = 0x00FF_FFFF;

/// One frame, its header block decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// `(flags, id, value)` per setting.
    Settings {
        flags: u8,
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    Data {
        stream: u32,
        flags: u8,
        data: Bytes,
    },
}

/// Writes frames, compressing header blocks in the order they are written.
#[derive(Default)]
pub struct FrameWriter {
    headers: HeaderEncoder,
}

impl FrameWriter {
    /// Appends `frame`'s bytes to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let (kind, flags, payload): (u16, u8, Vec<u8>) = match frame {
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                if data.len() > MAX_LENGTH {
                    return Err(SpdyError::Protocol(format!(
                        "a data frame of {} bytes is longer than SPDY allows",
                        data.len()
                    )));
                }
                out.extend_from_slice(&(stream & 0x7FFF_FFFF).to_be_bytes());
                push_flags_length(out, *flags, data.len());
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream & 0x7FFF_FFFF).to_be_bytes());
                p.extend_from_slice(&(associated & 0x7FFF_FFFF).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(0); // slot
                p.extend_from_slice(&self.headers.encode(headers)?);
                (SYN_STREAM, *flags, p)
            }
            Frame::SynReply {
                stream,
                flags,
                headers,
            } => (SYN_REPLY, *flags, self.stream_block(*stream, headers)?),
            Frame::Headers {
                stream,
                flags,
                headers,
            } => (HEADERS, *flags, self.stream_block(*stream, headers)?),
            Frame::RstStream { stream, status } => (RST_STREAM, 0, words(&[*stream, *status])),
            Frame::Settings { flags, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (flags, id, value) in entries {
                    p.push(*flags);
                    p.extend_from_slice(&id.to_be_bytes()[1..]);
                    p.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, *flags, p)
            }
            Frame::Ping { id } => (PING, 0, words(&[*id])),
            Frame::GoAway { last_good, status } => (GOAWAY, 0, words(&[*last_good, *status])),
            Frame::WindowUpdate { stream, delta } => (WINDOW_UPDATE, 0, words(&[*stream, *delta])),
        };
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        push_flags_length(out, flags, payload.len());
        out.extend_from_slice(&payload);
        Ok(())
    }

    fn stream_block(&mut self, stream: u32, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut p = (stream & 0x7FFF_FFFF).to_be_bytes().to_vec();
        p.extend_from_slice(&self.headers.encode(headers)?);
        Ok(p)
    }
}

/// Reads frames, decompressing header blocks in the order they arrive.
#[derive(Default)]
pub struct FrameReader {
    headers: HeaderDecoder,
}

impl FrameReader {
    /// The next whole frame at the front of `buf` (consumed), or `None`
    /// when `buf` holds less than one frame. Control frames of a type
    /// SPDY/3.1 does not define are skipped, as the spec says.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        loop {
            let Some(head) = buf.first_chunk::<8>() else {
                return Ok(None);
            };
            let head = *head;
            let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            if buf.len() < 8 + length {
                buf.reserve(8 + length - buf.len());
                return Ok(None);
            }
            let flags = head[4];
            buf.advance(8);
            let payload = buf.split_to(length).freeze();
            let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if first & 0x8000_0000 == 0 {
                return Ok(Some(Frame::Data {
                    stream: first,
                    flags,
                    data: payload,
                }));
            }
            let version = ((first >> 16) & 0x7FFF) as u16;
            if version != VERSION {
                return Err(SpdyError::Protocol(format!(
                    "SPDY version {version} (this server speaks SPDY/3.1)"
                )));
            }
            if let Some(frame) = self.control((first & 0xFFFF) as u16, flags, &payload)? {
                return Ok(Some(frame));
            }
        }
    }

    fn control(&mut self, kind: u16, flags: u8, p: &[u8]) -> Result<Option<Frame>, SpdyError> {
        let word = |i: usize| -> Result<u32, SpdyError> {
            p.get(i * 4..i * 4 + 4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .ok_or_else(|| {
                    SpdyError::Protocol(format!("control frame type {kind} is too short"))
                })
        };
        let frame = match kind {
            SYN_STREAM => {
                let block = p.get(10..).ok_or_else(|| {
                    SpdyError::Protocol("SYN_STREAM shorter than its fixed fields".into())
                })?;
                Frame::SynStream {
                    stream: word(0)? & 0x7FFF_FFFF,
                    associated: word(1)? & 0x7FFF_FFFF,
                    priority: p[8] >> 5,
                    flags,
                    headers: self.headers.decode(block)?,
                }
            }
            SYN_REPLY | HEADERS => {
                let stream = word(0)? & 0x7FFF_FFFF;
                let headers = self.headers.decode(&p[4..])?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        flags,
                        headers,
                    }
                }
            }
            RST_STREAM => Frame::RstStream {
                stream: word(0)? & 0x7FFF_FFFF,
                status: word(1)?,
            },
            SETTINGS => {
                let count = word(0)? as usize;
                let entries = (0..count)
                    .map(|i| {
                        let id_word = word(1 + 2 * i)?;
                        Ok(((id_word >> 24) as u8, id_word & 0xFF_FFFF, word(2 + 2 * i)?))
                    })
                    .collect::<Result<_, SpdyError>>()?;
                Frame::Settings { flags, entries }
            }
            PING => Frame::Ping { id: word(0)? },
            GOAWAY => Frame::GoAway {
                last_good: word(0)? & 0x7FFF_FFFF,
                status: word(1)?,
            },
            WINDOW_UPDATE => Frame::WindowUpdate {
                stream: word(0)? & 0x7FFF_FFFF,
                delta: word(1)? & 0x7FFF_FFFF,
            },
            _ => return Ok(None),
        };
        Ok(Some(frame))
    }
}

fn push_flags_length(out: &mut Vec<u8>, flags: u8, length: usize) {
    let len = (length as u32).to_be_bytes();
    out.extend_from_slice(&[flags, len[1], len[2], len[3]]);
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::headers::from_pairs as headers;
    use super::*;

    #[test]
    fn every_frame_type_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 3,
                flags: 0,
                headers: headers(&[("streamtype", "error"), ("port", "80")]),
            },
            Frame::SynReply {
                stream: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                stream: 1,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
            Frame::RstStream {
                stream: 3,
                status: REFUSED_STREAM,
            },
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536), (1, 4, 100)],
            },
            Frame::Ping { id: 5 },
            Frame::GoAway {
                last_good: 9,
                status: 0,
            },
            Frame::Headers {
                stream: 5,
                flags: 0,
                headers: headers(&[("x", "y")]),
            },
            Frame::WindowUpdate {
                stream: 1,
                delta: 65536,
            },
        ];
        let (mut writer, mut reader) = (FrameWriter::default(), FrameReader::default());
        let mut bytes = Vec::new();
        for frame in &frames {
            writer.encode(frame, &mut bytes).expect("encode");
        }
        // Delivered a few bytes at a time, as a socket may.
        let mut buf = BytesMut::new();
        let mut read = Vec::new();
        for chunk in bytes.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = reader.decode(&mut buf).expect("decode") {
                read.push(frame);
            }
        }
        assert_eq!(read, frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn the_wire_form_follows_the_spec() {
        let mut out = Vec::new();
        let mut writer = FrameWriter::default();
        writer
            .encode(&Frame::Ping { id: 0x0102_0304 }, &mut out)
            .expect("ping");
        assert_eq!(out, [0x80, 3, 0, 6, 0, 0, 0, 4, 1, 2, 3, 4]);
        out.clear();
        writer
            .encode(
                &Frame::Data {
                    stream: 7,
                    flags: FLAG_FIN,
                    data: Bytes::from_static(b"ab"),
                },
                &mut out,
            )
            .expect("data");
        assert_eq!(out, [0, 0, 0, 7, 1, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn unknown_control_frames_are_skipped_and_other_versions_refused() {
        let mut reader = FrameReader::default();
        // Type 5 (NOOP in SPDY/2) then a PING.
        let mut buf = BytesMut::from(&[0x80, 3, 0, 5, 0, 0, 0, 0][..]);
        buf.extend_from_slice(&[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
        assert_eq!(
            reader.decode(&mut buf).expect("ok"),
            Some(Frame::Ping { id: 1 })
        );
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        let err = reader.decode(&mut v2).expect_err("version 2");
        assert!(err.to_string().contains("SPDY version 2"), "{err}");
        let mut short = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(reader.decode(&mut short).is_err());
    }
}
