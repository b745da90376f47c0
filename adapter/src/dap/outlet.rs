//! Writing to one side without ever blocking the proxy's loop.
//!
//! The loop queues messages with [`Outlet::send`] and, once it has
//! handled everything one read brought, writes them with
//! [`Outlet::flush`]: all at once, in one `write`, from the loop itself.
//! Only what the peer does not take at once is left to a task that waits
//! until it can write, while the loop goes on (later messages queue behind
//! it, in order). A loop that waited on one side's write could deadlock
//! with an adapter that stops reading while its own writes to us are
//! pending.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::framing;

pub type Writer = Box<dyn AsyncWrite + Unpin + Send>;

pub struct Outlet {
    /// Messages queued since the last flush.
    queued: Vec<u8>,
    shared: Arc<Mutex<Shared>>,
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

struct Shared {
    writer: Writer,
    /// Bytes the peer has not taken yet, from `written` on.
    backlog: Vec<u8>,
    written: usize,
    /// The backlog belongs to the task, which waits until the peer can
    /// take more: the loop must not write past it (nor poll the writer,
    /// which would take the task's place as the one woken).
    stalled: bool,
    /// A write failed: the peer is gone; later messages are dropped.
    failed: bool,
    /// The stream closes once the backlog is written.
    closing: bool,
}

impl Shared {
    /// Writes the backlog and flushes; `Pending` when the peer takes no
    /// more now.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.written < self.backlog.len() && !self.failed {
            let rest = &self.backlog[self.written..];
            match Pin::new(&mut self.writer).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => self.failed = true,
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        if !self.failed {
            match Pin::new(&mut self.writer).poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => self.failed = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.backlog.clear();
        self.written = 0;
        Poll::Ready(())
    }
}

impl Outlet {
    pub fn new(writer: Writer) -> Outlet {
        let shared = Arc::new(Mutex::new(Shared {
            writer,
            backlog: Vec::new(),
            written: 0,
            stalled: false,
            failed: false,
            closing: false,
        }));
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(finish_writes(shared.clone(), wake.clone()));
        Outlet {
            queued: Vec::new(),
            shared,
            wake,
            task,
        }
    }

    /// Queues one message (written by the next [`Outlet::flush`]).
    pub fn send(&mut self, body: &[u8]) {
        framing::encode_into(&mut self.queued, body);
    }

    /// Writes what is queued now, in one write when the peer takes it all;
    /// what it does not take is written by the task when it can.
    pub fn flush(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        if shared.failed {
            self.queued.clear();
            return;
        }
        if shared.backlog.is_empty() {
            std::mem::swap(&mut shared.backlog, &mut self.queued);
        } else {
            shared.backlog.extend_from_slice(&self.queued);
            self.queued.clear();
        }
        if shared.stalled {
            return;
        }
        // A waker that does nothing: a peer that takes no more makes this
        // `Pending`, and the task (woken by the notification) polls again
        // with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        if shared.drain(&mut cx).is_pending() {
            shared.stalled = true;
            self.wake.notify_one();
        }
    }

    /// Writes what is queued (within `limit`), then closes the stream.
    pub async fn close(mut self, limit: std::time::Duration) {
        self.flush();
        if let Ok(mut shared) = self.shared.lock() {
            shared.closing = true;
        }
        self.wake.notify_one();
        if tokio::time::timeout(limit, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// The task: writes a stalled backlog when the peer can take it, and
/// closes the stream at the end.
async fn finish_writes(shared: Arc<Mutex<Shared>>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        // The lock is held only inside each poll, never while waiting.
        let done = std::future::poll_fn(|cx| {
            let Ok(mut shared) = shared.lock() else {
                return Poll::Ready(true);
            };
            if shared.drain(cx).is_pending() {
                return Poll::Pending;
            }
            shared.stalled = false;
            Poll::Ready(shared.failed || shared.closing)
        })
        .await;
        if done {
            break;
        }
    }
    let _ = std::future::poll_fn(|cx| match shared.lock() {
        Ok(mut shared) => Pin::new(&mut shared.writer).poll_shutdown(cx),
        Err(_) => Poll::Ready(Ok(())),
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn writes_in_order_past_a_peer_that_reads_late() {
        // A pipe far smaller than what is sent: the loop's writes stall,
        // the task finishes them once the peer reads.
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut outlet = Outlet::new(Box::new(ours));
        let bodies: Vec<Vec<u8>> = (0..50)
            .map(|i| format!(r#"{{"seq":{i},"pad":"{}"}}"#, "y".repeat(i * 7)).into_bytes())
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            outlet.send(body);
            if i % 3 == 0 {
                outlet.flush();
            }
        }
        let closed = tokio::spawn(outlet.close(Duration::from_secs(10)));
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.unwrap();
        closed.await.unwrap();
        let expected: Vec<u8> = bodies.iter().flat_map(|b| framing::encode(b)).collect();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_gone_peer_drops_messages_without_blocking() {
        let (ours, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let mut outlet = Outlet::new(Box::new(ours));
        outlet.send(b"{}");
        outlet.flush();
        outlet.send(b"{}");
        outlet.flush();
        tokio::time::timeout(Duration::from_secs(5), outlet.close(Duration::from_secs(1)))
            .await
            .expect("close returns");
    }
}
