//! Writing to one side without ever blocking the proxy's loop: messages
//! are queued and a task writes them, batching what has queued up into one
//! write. A loop that waited on one side's write could deadlock with an
//! adapter that stops reading while its own writes to us are pending.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::framing;

pub struct Outlet {
    queue: Option<mpsc::UnboundedSender<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Outlet {
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(mut writer: W) -> Outlet {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                batch.clear();
                batch.extend_from_slice(&first);
                while batch.len() < (1 << 20) {
                    match rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                if writer.write_all(&batch).await.is_err() || writer.flush().await.is_err() {
                    return;
                }
            }
            let _ = writer.shutdown().await;
        });
        Outlet {
            queue: Some(tx),
            task,
        }
    }

    /// Queues one message.
    pub fn send(&self, body: &[u8]) {
        if let Some(queue) = &self.queue {
            let _ = queue.send(framing::encode(body));
        }
    }

    /// Writes what is queued (within `limit`), then closes the stream.
    pub async fn close(mut self, limit: std::time::Duration) {
        self.queue = None;
        if tokio::time::timeout(limit, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}
