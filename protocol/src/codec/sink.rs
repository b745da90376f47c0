//! The writing end of a hop: frames gathered up to [`HOP_BUFFER`] bytes,
//! large `ConnData` payloads written from where they are.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;
use tokio::io::AsyncWrite;

use super::frame::{conn_data_head, UNCOPIED_FROM};
use super::{CodecError, Frame, FrameCodec, HOP_BUFFER};

/// A frame writer for one end of a hop: `feed` gathers frames up to
/// [`HOP_BUFFER`] bytes before writing; `flush` writes the rest. Large
/// `ConnData` payloads are not copied into its buffer: they are written
/// from where they are, next to their frame's head, in one vectored write.
pub fn framed_write<W, Out>(writer: W) -> FrameSink<W, Out>
where
    W: AsyncWrite,
    Out: Serialize + Frame,
{
    FrameSink {
        writer,
        segments: VecDeque::new(),
        pending: BytesMut::with_capacity(8 * 1024),
        out: PhantomData,
    }
}

/// See [`framed_write`].
pub struct FrameSink<W, Out> {
    writer: W,
    /// Bytes to write before `pending`: frame heads and the payloads that
    /// follow them.
    segments: VecDeque<Bytes>,
    /// Encoded frames after the last segment.
    pending: BytesMut,
    out: PhantomData<fn(Out)>,
}

/// The most buffers one write hands over.
const SLICES: usize = 64;

impl<W: AsyncWrite + Unpin, Out: Serialize + Frame> FrameSink<W, Out> {
    /// Bytes waiting to be written.
    fn queued(&self) -> usize {
        self.segments.iter().map(Bytes::len).sum::<usize>() + self.pending.len()
    }

    /// Queues `msg`'s frame; an error leaves the queue as it was.
    fn queue(&mut self, msg: Out) -> Result<(), CodecError> {
        // A writer without vectored writes would send the head and the
        // payload in two writes: it gets the payload copied in.
        let gathered = match (Out::CONN_DATA, msg.as_conn_data()) {
            (Some((tag, _)), Some((conn, data)))
                if data.len() >= UNCOPIED_FROM && self.writer.is_write_vectored() =>
            {
                Some((tag, conn, data))
            }
            _ => None,
        };
        match gathered {
            Some((tag, conn, data)) => {
                let (head, len) = conn_data_head(tag, conn, data.len())?;
                self.pending.put_slice(&head[..len]);
                self.segments.push_back(self.pending.split().freeze());
                self.segments.push_back(data.clone());
                Ok(())
            }
            None => {
                use tokio_util::codec::Encoder;
                FrameCodec::<Out, ()>::default().encode(msg, &mut self.pending)
            }
        }
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
        let mut n = ready!(Pin::new(&mut self.writer).poll_write_vectored(cx, &slices[..count]))?;
        if n == 0 {
            return Poll::Ready(Err(
                std::io::Error::from(std::io::ErrorKind::WriteZero).into()
            ));
        }
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
        while this.queued() >= HOP_BUFFER {
            ready!(this.poll_write_some(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, msg: Out) -> Result<(), CodecError> {
        self.get_mut().queue(msg)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        let this = self.get_mut();
        while this.queued() > 0 {
            ready!(this.poll_write_some(cx))?;
        }
        Poll::Ready(ready!(Pin::new(&mut this.writer).poll_flush(cx)).map_err(Into::into))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let this = self.get_mut();
        Poll::Ready(ready!(Pin::new(&mut this.writer).poll_shutdown(cx)).map_err(Into::into))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_frame;
    use crate::ClientMessage;

    /// A writer that takes at most `step` bytes per call, vectored or not.
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.step - n);
                self.got.extend_from_slice(&buf[..take]);
                n += take;
                if n == self.step {
                    break;
                }
            }
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Whatever the mix of gathered payloads and copied frames, and however
    /// little the writer takes per call, the bytes written are the frames
    /// in order, exactly as `encode_frame` makes them.
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
            assert_eq!(sink.queued(), 0);
        }
    }
}
