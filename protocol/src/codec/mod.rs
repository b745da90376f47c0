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

mod frame;
#[cfg(feature = "tokio")]
mod sink;

pub use frame::Frame;
#[cfg(feature = "tokio")]
pub use sink::{framed_write, FrameSink};

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

/// Reads exactly one frame from an async stream and nothing after it:
/// the opening frame of a connection whose bytes may stop being frames
/// after it (a side stream, `ClientMessage::OpenStream`).
#[cfg(feature = "tokio")]
pub async fn read_one_frame<T, R>(reader: &mut R) -> Result<T, CodecError>
where
    T: DeserializeOwned,
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let eof = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => CodecError::Closed,
        _ => CodecError::Io(e),
    };
    let mut header = [0u8; LEN_BYTES];
    reader.read_exact(&mut header).await.map_err(eof)?;
    let mut body = vec![0; checked_len(header)?];
    reader.read_exact(&mut body).await.map_err(eof)?;
    decode_body(&body)
}

/// Writes one frame to an async stream, unbuffered.
#[cfg(feature = "tokio")]
pub async fn write_one_frame<T, W>(writer: &mut W, msg: &T) -> Result<(), CodecError>
where
    T: Serialize,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    writer.write_all(&encode_frame(msg)?).await?;
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

#[cfg(feature = "tokio")]
mod tokio_impl {
    use super::frame::{conn_data_header, UNCOPIED_FROM};
    use super::*;
    use crate::Payload;
    use bytes::{Buf, BytesMut};

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
        let conn_data = In::CONN_DATA.and_then(|(tag, build)| {
            conn_data_header(&src[LEN_BYTES..end], tag).map(|(conn, start)| (build, conn, start))
        });
        let Some((build, conn, start)) = conn_data else {
            let msg = decode_body(&src[LEN_BYTES..end])?;
            src.advance(end);
            return Ok(msg);
        };
        let start = LEN_BYTES + start;
        let data = if end - start >= UNCOPIED_FROM {
            src.split_to(end).freeze().slice(start..)
        } else {
            let data = Payload::copy_from_slice(&src[start..end]);
            src.advance(end);
            data
        };
        Ok(build(conn, data))
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

    /// The bytes after an opening frame belong to whoever reads the
    /// stream next (a side stream's first unframed bytes).
    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn one_frame_is_read_and_nothing_after_it() {
        let msg = ClientMessage::ConnClose { conn: 7 };
        let mut stream = encode_frame(&msg).unwrap();
        stream.extend_from_slice(b"raw bytes");
        let mut reader = &stream[..];
        assert_eq!(
            read_one_frame::<ClientMessage, _>(&mut reader)
                .await
                .unwrap(),
            msg
        );
        assert_eq!(reader, b"raw bytes");
        assert!(matches!(
            read_one_frame::<ClientMessage, _>(&mut &stream[..3]).await,
            Err(CodecError::Closed)
        ));
        let mut huge = u32::MAX.to_be_bytes().to_vec();
        huge.extend_from_slice(&[0; 16]);
        assert!(matches!(
            read_one_frame::<ClientMessage, _>(&mut &huge[..]).await,
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
        let inside = |data: &crate::Payload| {
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
