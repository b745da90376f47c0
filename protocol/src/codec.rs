//! Length-prefixed framing: a 4-byte big-endian length, then that many bytes
//! of bincode.
//!
//! A length above [`MAX_FRAME_LEN`] is refused before anything is allocated,
//! and bincode is given the same limit, so a lying length prefix inside a
//! message (a `Vec` claiming 2^60 elements) cannot allocate either.

use std::io::{Read, Write};
use std::marker::PhantomData;

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

use crate::{ConnId, Payload};

/// The largest frame either side accepts: a 1 MiB read plus headroom.
pub const MAX_FRAME_LEN: usize = 4 << 20;

const LEN_BYTES: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("connection closed")]
    Closed,
    #[error("connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

fn options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_FRAME_LEN as u64)
}

/// How a message type carries `ConnData`, for the codec's path that reads
/// and writes payloads without copying them. Types without it keep the
/// defaults.
pub trait Frame: Sized {
    /// bincode's index of the `ConnData` variant (one varint byte).
    const CONN_DATA: Option<u8> = None;

    /// The `ConnData` message for `conn` and `data`.
    fn conn_data(_conn: ConnId, _data: Payload) -> Option<Self> {
        None
    }

    /// The connection and payload of a `ConnData` message.
    fn as_conn_data(&self) -> Option<(ConnId, &Payload)> {
        None
    }
}

impl Frame for crate::LayerMessage {}
impl Frame for crate::ProxyMessage {}

impl Frame for crate::ClientMessage {
    const CONN_DATA: Option<u8> = Some(2);

    fn conn_data(conn: ConnId, data: Payload) -> Option<Self> {
        Some(Self::ConnData { conn, data })
    }

    fn as_conn_data(&self) -> Option<(ConnId, &Payload)> {
        match self {
            Self::ConnData { conn, data } => Some((*conn, data)),
            _ => None,
        }
    }
}

impl Frame for crate::AgentMessage {
    const CONN_DATA: Option<u8> = Some(3);

    fn conn_data(conn: ConnId, data: Payload) -> Option<Self> {
        Some(Self::ConnData { conn, data })
    }

    fn as_conn_data(&self) -> Option<(ConnId, &Payload)> {
        match self {
            Self::ConnData { conn, data } => Some((*conn, data)),
            _ => None,
        }
    }
}

/// The bytes before a `ConnData` payload of `len` bytes: the frame's
/// length, the variant `tag`, the connection and the payload's length as
/// bincode writes them. The buffer and how much of it is used.
fn conn_data_head(tag: u8, conn: ConnId, len: usize) -> Result<([u8; 23], usize), CodecError> {
    let mut head = [0u8; 23];
    let mut at = LEN_BYTES;
    head[at] = tag;
    at += 1;
    at += put_varint(&mut head[at..], conn);
    at += put_varint(&mut head[at..], len as u64);
    let body = at - LEN_BYTES + len;
    if body > MAX_FRAME_LEN {
        return Err(CodecError::TooLarge(body));
    }
    head[..LEN_BYTES].copy_from_slice(&(body as u32).to_be_bytes());
    Ok((head, at))
}

/// Writes `value` as a bincode varint at the start of `out` (which has
/// room for nine bytes); its length.
fn put_varint(out: &mut [u8], value: u64) -> usize {
    match value {
        0..=250 => {
            out[0] = value as u8;
            1
        }
        251..=0xffff => {
            out[0] = 251;
            out[1..3].copy_from_slice(&(value as u16).to_le_bytes());
            3
        }
        0x1_0000..=0xffff_ffff => {
            out[0] = 252;
            out[1..5].copy_from_slice(&(value as u32).to_le_bytes());
            5
        }
        _ => {
            out[0] = 253;
            out[1..9].copy_from_slice(&value.to_le_bytes());
            9
        }
    }
}

/// The connection and where the payload starts in `body` (a frame's bytes
/// after the length), when `body` is a well-formed `ConnData` of variant
/// `tag`: the tag, the connection and the payload's length as bincode's
/// varints, and exactly that many bytes after them.
fn conn_data_header(body: &[u8], tag: u8) -> Option<(ConnId, usize)> {
    let (&first, rest) = body.split_first()?;
    if first != tag {
        return None;
    }
    let (conn, a) = varint(rest)?;
    let (len, b) = varint(rest.get(a..)?)?;
    let start = 1 + a + b;
    (body.len().checked_sub(start)? as u64 == len).then_some((conn, start))
}

/// One bincode varint: a byte below 251 is the value; 251, 252 and 253
/// announce a little-endian u16, u32 or u64. The value and its length.
fn varint(b: &[u8]) -> Option<(u64, usize)> {
    fn le<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.get(1..1 + N)?.try_into().ok()
    }
    match *b.first()? {
        small @ 0..=250 => Some((u64::from(small), 1)),
        251 => Some((u64::from(u16::from_le_bytes(le(b)?)), 3)),
        252 => Some((u64::from(u32::from_le_bytes(le(b)?)), 5)),
        253 => Some((u64::from_le_bytes(le(b)?), 9)),
        _ => None,
    }
}

/// Encodes one message as a complete frame.
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let mut frame = vec![0; LEN_BYTES];
    options()
        .serialize_into(&mut frame, msg)
        .map_err(|e| CodecError::Malformed(e.to_string()))?;
    let len = frame.len() - LEN_BYTES;
    if len > MAX_FRAME_LEN {
        return Err(CodecError::TooLarge(len));
    }
    frame[..LEN_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

/// Decodes the first frame of `buf`.
///
/// `Ok(None)` means the frame is not complete yet (read more bytes);
/// `Ok(Some((msg, used)))` gives the message and how many bytes it took;
/// an error means the stream is broken and must be closed.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, CodecError> {
    let Some(len) = frame_len(buf)? else {
        return Ok(None);
    };
    let end = LEN_BYTES + len;
    if buf.len() < end {
        return Ok(None);
    }
    let msg = decode_body(&buf[LEN_BYTES..end])?;
    Ok(Some((msg, end)))
}

/// Reads one frame from a blocking stream.
pub fn read_frame<T: DeserializeOwned, R: Read>(reader: &mut R) -> Result<T, CodecError> {
    let mut header = [0u8; LEN_BYTES];
    if let Err(e) = reader.read_exact(&mut header) {
        return Err(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => CodecError::Closed,
            _ => CodecError::Io(e),
        });
    }
    let len = checked_len(header)?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    decode_body(&body)
}

/// Writes one frame to a blocking stream.
pub fn write_frame<T: Serialize, W: Write>(writer: &mut W, msg: &T) -> Result<(), CodecError> {
    writer.write_all(&encode_frame(msg)?)?;
    Ok(())
}

fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    match buf.get(..LEN_BYTES) {
        Some(header) => {
            let mut bytes = [0u8; LEN_BYTES];
            bytes.copy_from_slice(header);
            checked_len(bytes).map(Some)
        }
        None => Ok(None),
    }
}

fn checked_len(header: [u8; LEN_BYTES]) -> Result<usize, CodecError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        Err(CodecError::TooLarge(len))
    } else {
        Ok(len)
    }
}

fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, CodecError> {
    options()
        .deserialize(body)
        .map_err(|e| CodecError::Malformed(e.to_string()))
}

/// A tokio codec that writes `Out` and reads `In`; see the aliases for the
/// four ends of the two hops.
pub struct FrameCodec<Out, In>(PhantomData<fn(Out) -> In>);

impl<Out, In> Default for FrameCodec<Out, In> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// The agent's end of the intproxy <-> agent hop.
pub type AgentCodec = FrameCodec<crate::AgentMessage, crate::ClientMessage>;
/// The intproxy's end of the intproxy <-> agent hop.
pub type ClientCodec = FrameCodec<crate::ClientMessage, crate::AgentMessage>;
/// The intproxy's end of the layer <-> intproxy hop.
pub type ProxyCodec = FrameCodec<crate::ProxyMessage, crate::LayerMessage>;

/// How many bytes a hop reads per wake-up and gathers before a write
/// flushes on its own: several 64 KiB `ConnData` frames travel in one
/// syscall instead of one each.
#[cfg(feature = "tokio")]
pub const HOP_BUFFER: usize = 256 * 1024;

/// A frame reader for one end of a hop, reading up to [`HOP_BUFFER`] bytes
/// at a time.
#[cfg(feature = "tokio")]
pub fn framed_read<R, Out, In>(reader: R) -> tokio_util::codec::FramedRead<R, FrameCodec<Out, In>>
where
    R: tokio::io::AsyncRead,
    In: DeserializeOwned,
{
    tokio_util::codec::FramedRead::with_capacity(reader, FrameCodec::default(), HOP_BUFFER)
}

/// A frame writer for one end of a hop: `feed` gathers frames up to
/// [`HOP_BUFFER`] bytes before writing; `flush` writes the rest. Large
/// `ConnData` payloads are not copied into its buffer: they are written
/// from where they are, next to their frame's head, in one vectored write.
#[cfg(feature = "tokio")]
pub fn framed_write<W, Out>(writer: W) -> FrameSink<W, Out>
where
    W: tokio::io::AsyncWrite,
    Out: Serialize + Frame,
{
    FrameSink {
        writer,
        segments: std::collections::VecDeque::new(),
        pending: bytes::BytesMut::with_capacity(8 * 1024),
        queued: 0,
        out: PhantomData,
    }
}

/// See [`framed_write`].
#[cfg(feature = "tokio")]
pub struct FrameSink<W, Out> {
    writer: W,
    /// Bytes to write before `pending`: frame heads and the payloads that
    /// follow them.
    segments: std::collections::VecDeque<bytes::Bytes>,
    /// Encoded frames after the last segment.
    pending: bytes::BytesMut,
    /// Bytes in `segments` and `pending`.
    queued: usize,
    out: PhantomData<fn(Out)>,
}

#[cfg(feature = "tokio")]
mod tokio_impl {
    use super::*;
    use bytes::{Buf, BytesMut};

    /// A `ConnData` payload at least this large is handed on as a slice of
    /// the read buffer; a smaller one is copied out, so that it does not
    /// keep a whole buffer alive while it waits to be written.
    const SLICE_FROM: usize = 16 * 1024;

    impl<Out: Serialize, In: DeserializeOwned + Frame> tokio_util::codec::Decoder
        for FrameCodec<Out, In>
    {
        type Item = In;
        type Error = CodecError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
            if let Some(len) = frame_len(src)? {
                let end = LEN_BYTES + len;
                if src.len() >= end {
                    return take_frame(src, end).map(Some);
                }
                src.reserve(end - src.len());
            }
            // Room for the next read. A buffer that payloads were sliced
            // from is shared with them, so this is a fresh one then (the
            // bytes of a partial frame move into it).
            if src.capacity() - src.len() < HOP_BUFFER / 4 {
                src.reserve(HOP_BUFFER);
            }
            Ok(None)
        }
    }

    /// Cuts the complete frame `src[..end]` off the buffer as a message.
    fn take_frame<In: DeserializeOwned + Frame>(
        src: &mut BytesMut,
        end: usize,
    ) -> Result<In, CodecError> {
        let header = In::CONN_DATA.and_then(|tag| conn_data_header(&src[LEN_BYTES..end], tag));
        let Some((conn, start)) = header else {
            let msg = decode_body(&src[LEN_BYTES..end])?;
            src.advance(end);
            return Ok(msg);
        };
        let start = LEN_BYTES + start;
        let data = if end - start >= SLICE_FROM {
            src.split_to(end).freeze().slice(start..)
        } else {
            let data = Payload::copy_from_slice(&src[start..end]);
            src.advance(end);
            data
        };
        In::conn_data(conn, data)
            .ok_or_else(|| CodecError::Malformed("a ConnData frame for a type without it".into()))
    }

    impl<Out: Serialize, In: DeserializeOwned> tokio_util::codec::Encoder<Out> for FrameCodec<Out, In> {
        type Error = CodecError;

        /// Serialises straight into the write buffer (no frame-sized
        /// temporary per message); a message that cannot be encoded leaves
        /// the buffer as it was.
        fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
            use bytes::BufMut;
            let start = dst.len();
            dst.put_slice(&[0; LEN_BYTES]);
            let mut writer = dst.writer();
            let encoded = options().serialize_into(&mut writer, &msg);
            let dst = writer.into_inner();
            let len = dst.len() - start - LEN_BYTES;
            let checked = match encoded {
                Err(e) => Err(CodecError::Malformed(e.to_string())),
                Ok(()) if len > MAX_FRAME_LEN => Err(CodecError::TooLarge(len)),
                Ok(()) => Ok(()),
            };
            if let Err(e) = checked {
                dst.truncate(start);
                return Err(e);
            }
            dst[start..start + LEN_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
            Ok(())
        }
    }
}

#[cfg(feature = "tokio")]
mod sink_impl {
    use super::*;
    use bytes::{Buf, BufMut};
    use std::io::IoSlice;
    use std::pin::Pin;
    use std::task::{ready, Context, Poll};
    use tokio::io::AsyncWrite;

    /// A `ConnData` payload at least this large is written from where it
    /// is; a smaller one is copied in with its frame.
    const GATHER_FROM: usize = 16 * 1024;

    /// The most buffers one write hands over.
    const SLICES: usize = 64;

    impl<W: AsyncWrite + Unpin, Out: Serialize + Frame> FrameSink<W, Out> {
        /// Queues `msg`'s frame; an error leaves the queue as it was.
        fn queue(&mut self, msg: Out) -> Result<(), CodecError> {
            // A writer without vectored writes would send the head and the
            // payload in two writes: it gets the payload copied in.
            let gathered = match (Out::CONN_DATA, msg.as_conn_data()) {
                (Some(tag), Some((conn, data)))
                    if data.len() >= GATHER_FROM && self.writer.is_write_vectored() =>
                {
                    Some((tag, conn, data))
                }
                _ => None,
            };
            let before = self.pending.len();
            match gathered {
                Some((tag, conn, data)) => {
                    let (head, len) = conn_data_head(tag, conn, data.len())?;
                    self.pending.put_slice(&head[..len]);
                    self.segments.push_back(self.pending.split().freeze());
                    self.segments.push_back(data.clone());
                    self.queued += len + data.len();
                }
                None => {
                    use tokio_util::codec::Encoder;
                    FrameCodec::<Out, ()>::default().encode(msg, &mut self.pending)?;
                    self.queued += self.pending.len() - before;
                }
            }
            Ok(())
        }

        /// Writes as much of the queue as the writer takes in one call.
        fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let mut count = 0;
            for segment in self.segments.iter().take(SLICES) {
                slices[count] = IoSlice::new(segment);
                count += 1;
            }
            if count < SLICES && !self.pending.is_empty() {
                slices[count] = IoSlice::new(&self.pending);
                count += 1;
            }
            let mut n =
                ready!(Pin::new(&mut self.writer).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(
                    std::io::Error::from(std::io::ErrorKind::WriteZero).into()
                ));
            }
            self.queued -= n;
            while n > 0 {
                match self.segments.front_mut() {
                    Some(front) if n >= front.len() => {
                        n -= front.len();
                        self.segments.pop_front();
                    }
                    Some(front) => {
                        front.advance(n);
                        n = 0;
                    }
                    None => {
                        self.pending.advance(n);
                        n = 0;
                    }
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    impl<W: AsyncWrite + Unpin, Out: Serialize + Frame> futures_sink::Sink<Out> for FrameSink<W, Out> {
        type Error = CodecError;

        /// Ready while less than [`HOP_BUFFER`] is queued; else writes first.
        fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
            let this = self.get_mut();
            while this.queued >= HOP_BUFFER {
                ready!(this.poll_write_some(cx))?;
            }
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, msg: Out) -> Result<(), CodecError> {
            self.get_mut().queue(msg)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
            let this = self.get_mut();
            while this.queued > 0 {
                ready!(this.poll_write_some(cx))?;
            }
            Poll::Ready(ready!(Pin::new(&mut this.writer).poll_flush(cx)).map_err(Into::into))
        }

        fn poll_close(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), CodecError>> {
            ready!(self.as_mut().poll_flush(cx))?;
            let this = self.get_mut();
            Poll::Ready(ready!(Pin::new(&mut this.writer).poll_shutdown(cx)).map_err(Into::into))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientMessage, Request};
    use proptest::prelude::*;

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut frame = (u32::MAX).to_be_bytes().to_vec();
        frame.extend_from_slice(&[0; 16]);
        assert!(matches!(
            decode_frame::<ClientMessage>(&frame),
            Err(CodecError::TooLarge(_))
        ));
        assert!(matches!(
            read_frame::<ClientMessage, _>(&mut &frame[..]),
            Err(CodecError::TooLarge(_))
        ));
    }

    #[test]
    fn lying_vec_length_inside_a_frame_is_malformed() {
        // A `ConnData` whose data claims u64::MAX bytes: bincode's limit
        // refuses it instead of allocating.
        let mut body = vec![2u8, 1];
        body.push(255);
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        assert!(matches!(
            decode_frame::<ClientMessage>(&frame),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn trailing_bytes_in_a_frame_are_malformed() {
        let mut frame = encode_frame(&ClientMessage::Ping).unwrap();
        frame.push(0);
        let len = (frame.len() - LEN_BYTES) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        assert!(decode_frame::<ClientMessage>(&frame).is_err());
    }

    #[test]
    fn truncated_stream_is_closed_not_a_panic() {
        let frame = encode_frame(&ClientMessage::Request {
            id: 1,
            request: Request::GetEnv,
        })
        .unwrap();
        for cut in 0..frame.len() {
            let r = read_frame::<ClientMessage, _>(&mut &frame[..cut]);
            assert!(r.is_err(), "cut at {cut} decoded");
        }
    }

    #[test]
    fn two_frames_back_to_back_decode_in_order() {
        let mut buf = encode_frame(&ClientMessage::Ping).unwrap();
        buf.extend(encode_frame(&ClientMessage::ConnClose { conn: 9 }).unwrap());
        let (a, used) = decode_frame::<ClientMessage>(&buf).unwrap().unwrap();
        let (b, _) = decode_frame::<ClientMessage>(&buf[used..])
            .unwrap()
            .unwrap();
        assert_eq!(a, ClientMessage::Ping);
        assert_eq!(b, ClientMessage::ConnClose { conn: 9 });
    }

    /// The copy-free path reads exactly what bincode writes: the variant
    /// index of `ConnData` and every width of varint.
    #[test]
    fn conn_data_headers_are_read_as_bincode_writes_them() {
        let conns = [
            0,
            250,
            251,
            65_535,
            65_536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ];
        for conn in conns {
            for len in [0, 250, 251, 65_535, 65_536, 70_000] {
                let data = Payload::from(vec![7u8; len]);
                let client = encode_frame(&ClientMessage::ConnData {
                    conn,
                    data: data.clone(),
                })
                .unwrap();
                let agent = encode_frame(&crate::AgentMessage::ConnData { conn, data }).unwrap();
                for (frame, tag) in [
                    (client, ClientMessage::CONN_DATA),
                    (agent, crate::AgentMessage::CONN_DATA),
                ] {
                    let body = &frame[LEN_BYTES..];
                    let tag = tag.unwrap();
                    assert_eq!(
                        conn_data_header(body, tag),
                        Some((conn, body.len() - len)),
                        "conn {conn}, {len} bytes"
                    );
                }
            }
        }
        // Anything else is left to bincode.
        let ping = encode_frame(&ClientMessage::Ping).unwrap();
        assert_eq!(conn_data_header(&ping[LEN_BYTES..], 2), None);
        let short = encode_frame(&ClientMessage::ConnData {
            conn: 1,
            data: vec![1, 2, 3].into(),
        })
        .unwrap();
        assert_eq!(
            conn_data_header(&short[LEN_BYTES..short.len() - 1], 2),
            None
        );
        assert_eq!(conn_data_header(&[2, 254, 0], 2), None);
    }

    /// The head written before a gathered payload is bincode's, byte for
    /// byte, at every varint width.
    #[test]
    fn conn_data_heads_are_written_as_bincode_writes_them() {
        for conn in [0, 250, 251, 65_535, 65_536, u32::MAX as u64 + 1, u64::MAX] {
            for len in [0, 250, 251, 65_536, 70_000] {
                let msg = crate::AgentMessage::ConnData {
                    conn,
                    data: vec![1u8; len].into(),
                };
                let frame = encode_frame(&msg).unwrap();
                let (head, used) = conn_data_head(3, conn, len).unwrap();
                assert_eq!(
                    &head[..used],
                    &frame[..frame.len() - len],
                    "conn {conn}, {len} bytes"
                );
            }
        }
        assert!(matches!(
            conn_data_head(3, 1, MAX_FRAME_LEN),
            Err(CodecError::TooLarge(_))
        ));
    }

    /// A writer that takes at most `step` bytes per call, vectored or not.
    #[cfg(feature = "tokio")]
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        vectored: bool,
    }

    #[cfg(feature = "tokio")]
    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            std::task::Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.step - n);
                self.got.extend_from_slice(&buf[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            std::task::Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// Whatever the mix of gathered payloads and copied frames, and however
    /// little the writer takes per call, the bytes written are the frames
    /// in order, exactly as `encode_frame` makes them.
    #[cfg(feature = "tokio")]
    #[test]
    fn the_frame_sink_writes_every_frame_in_order() {
        use futures::SinkExt;
        let big = |conn, byte| ClientMessage::ConnData {
            conn,
            data: vec![byte; 40_000].into(),
        };
        let msgs = vec![
            ClientMessage::Ping,
            big(1, 1),
            big(2, 2),
            ClientMessage::ConnData {
                conn: 3,
                data: vec![3; 100].into(),
            },
            ClientMessage::ConnClose { conn: 3 },
            big(300, 4),
            ClientMessage::Ping,
        ];
        let expected: Vec<u8> = msgs.iter().flat_map(|m| encode_frame(m).unwrap()).collect();
        for (step, vectored) in [(usize::MAX, true), (1000, true), (7, true), (1000, false)] {
            let mut sink = framed_write::<_, ClientMessage>(Trickle {
                got: Vec::new(),
                step,
                vectored,
            });
            futures::executor::block_on(async {
                for msg in &msgs {
                    sink.feed(msg.clone()).await.unwrap();
                }
                sink.flush().await.unwrap();
            });
            assert_eq!(
                sink.writer.got, expected,
                "step {step}, vectored {vectored}"
            );
            assert_eq!(sink.queued, 0);
        }
    }

    /// Large payloads come out as slices of the read buffer, which is
    /// replaced before the next read; small ones are copied out.
    #[cfg(feature = "tokio")]
    #[test]
    fn the_tokio_decoder_slices_large_payloads_out_of_its_buffer() {
        use tokio_util::codec::Decoder;
        let big = ClientMessage::ConnData {
            conn: 4,
            data: vec![9u8; 100_000].into(),
        };
        let small = ClientMessage::ConnData {
            conn: 5,
            data: vec![8u8; 100].into(),
        };
        let mut buf = bytes::BytesMut::with_capacity(HOP_BUFFER);
        for msg in [&big, &small, &big] {
            buf.extend_from_slice(&encode_frame(msg).unwrap());
        }
        let start = buf.as_ptr() as usize;
        let inside = |data: &Payload| {
            let at = data.as_ptr() as usize;
            at >= start && at < start + HOP_BUFFER
        };
        let mut codec = AgentCodec::default();
        let mut got = Vec::new();
        while let Some(msg) = codec.decode(&mut buf).unwrap() {
            got.push(msg);
        }
        assert_eq!(got, [big.clone(), small, big]);
        let ClientMessage::ConnData { data, .. } = &got[0] else {
            unreachable!()
        };
        assert!(inside(data), "a large payload is a slice of the buffer");
        let ClientMessage::ConnData { data, .. } = &got[1] else {
            unreachable!()
        };
        assert!(!inside(data), "a small payload is copied out");
        assert!(
            buf.capacity() >= HOP_BUFFER,
            "a fresh buffer for the next read"
        );
    }

    proptest! {
        /// Garbage never panics and never claims more bytes than it was given.
        #[test]
        fn garbage_is_an_error_or_incomplete(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(Some((_, used))) = decode_frame::<ClientMessage>(&bytes) {
                prop_assert!(used <= bytes.len());
            }
            let _ = read_frame::<ClientMessage, _>(&mut &bytes[..]);
        }

        /// The tokio encoder appends exactly `encode_frame`'s bytes after
        /// whatever is already buffered; a frame over the limit is refused
        /// and leaves the buffer untouched.
        #[cfg(feature = "tokio")]
        #[test]
        fn tokio_encoder_appends_the_same_frame(prefix in proptest::collection::vec(any::<u8>(), 0..64), data in proptest::collection::vec(any::<u8>(), 0..512)) {
            use tokio_util::codec::Encoder;
            let msg = ClientMessage::ConnData { conn: 3, data: data.into() };
            let mut buf = bytes::BytesMut::from(&prefix[..]);
            let mut codec = ClientCodec::default();
            codec.encode(msg.clone(), &mut buf).unwrap();
            let mut expected = prefix.clone();
            expected.extend_from_slice(&encode_frame(&msg).unwrap());
            prop_assert_eq!(&buf[..], &expected[..]);

            let huge = ClientMessage::ConnData { conn: 3, data: vec![0; MAX_FRAME_LEN + 1].into() };
            prop_assert!(codec.encode(huge, &mut buf).is_err());
            prop_assert_eq!(&buf[..], &expected[..]);
        }

        /// The tokio decoder yields the same messages however the bytes are split.
        #[cfg(feature = "tokio")]
        #[test]
        fn tokio_decoder_handles_any_split(split in 0usize..40, id in any::<u64>()) {
            use tokio_util::codec::Decoder;
            let msg = ClientMessage::Request { id, request: Request::Stat { path: b"/etc/hosts".to_vec(), follow: true } };
            let frame = encode_frame(&msg).unwrap();
            let split = split.min(frame.len());
            let mut codec = AgentCodec::default();
            let mut buf = bytes::BytesMut::from(&frame[..split]);
            let first = codec.decode(&mut buf).unwrap();
            if split < frame.len() {
                prop_assert!(first.is_none());
                buf.extend_from_slice(&frame[split..]);
                prop_assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
            } else {
                prop_assert_eq!(first, Some(msg));
            }
        }
    }
}
