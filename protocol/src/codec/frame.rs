//! How `ConnData` frames are told apart and built without bincode, for
//! the hops' copy-free path: the [`Frame`] trait of the message types,
//! and a frame's head (its length, the variant index, the connection and
//! the payload's length) read and written exactly as bincode does.

#[cfg(feature = "tokio")]
use super::{CodecError, LEN_BYTES, MAX_FRAME_LEN};
use crate::{ConnId, Payload};

/// A `ConnData` payload at least this large travels without a copy: the
/// decoder hands it on as a slice of its read buffer, the writer sends it
/// from where it is. A smaller one is copied (out of the read buffer, so
/// that it does not keep a whole buffer alive while it waits; into the
/// write buffer, beside its frame).
#[cfg(feature = "tokio")]
pub(super) const UNCOPIED_FROM: usize = 16 * 1024;

/// A `ConnData` variant: bincode's index of it (one varint byte) and its
/// constructor.
pub type ConnDataVariant<M> = (u8, fn(ConnId, Payload) -> M);

/// How a message type carries `ConnData`, for the codec's path that reads
/// and writes payloads without copying them. Types without it keep the
/// defaults.
pub trait Frame: Sized {
    /// The `ConnData` variant, when the type has one.
    const CONN_DATA: Option<ConnDataVariant<Self>> = None;

    /// The connection and payload of a `ConnData` message.
    fn as_conn_data(&self) -> Option<(ConnId, &Payload)> {
        None
    }
}

impl Frame for crate::LayerMessage {}
impl Frame for crate::ProxyMessage {}

/// `Frame` for a message type whose `ConnData { conn, data }` is variant
/// `tag` (the `ConnData` tests check the tag against bincode's output).
macro_rules! conn_data_frame {
    ($message:ty, $tag:expr) => {
        impl Frame for $message {
            const CONN_DATA: Option<ConnDataVariant<Self>> =
                Some(($tag, |conn, data| Self::ConnData { conn, data }));

            fn as_conn_data(&self) -> Option<(ConnId, &Payload)> {
                match self {
                    Self::ConnData { conn, data } => Some((*conn, data)),
                    _ => None,
                }
            }
        }
    };
}

conn_data_frame!(crate::ClientMessage, 2);
conn_data_frame!(crate::AgentMessage, 3);

/// The bytes before a `ConnData` payload of `len` bytes: the frame's
/// length, the variant `tag`, the connection and the payload's length as
/// bincode writes them. The buffer and how much of it is used.
#[cfg(feature = "tokio")]
pub(super) fn conn_data_head(
    tag: u8,
    conn: ConnId,
    len: usize,
) -> Result<([u8; 23], usize), CodecError> {
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
#[cfg(feature = "tokio")]
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
#[cfg(feature = "tokio")]
pub(super) fn conn_data_header(body: &[u8], tag: u8) -> Option<(ConnId, usize)> {
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
#[cfg(feature = "tokio")]
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

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use crate::codec::encode_frame;
    use crate::ClientMessage;

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
                    (client, ClientMessage::CONN_DATA.map(|(tag, _)| tag)),
                    (agent, crate::AgentMessage::CONN_DATA.map(|(tag, _)| tag)),
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
}
