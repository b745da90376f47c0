//! The open files of one client connection, and the order of the requests
//! that use them.
//!
//! Each handle has its own worker task fed by a bounded queue: requests on
//! one handle run one after the other in arrival order (pipelined writes
//! land in order), while different handles and path requests proceed in
//! parallel. The blocking I/O itself runs on tokio's blocking pool.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

use mirrord_protocol::{AgentMessage, Handle, RemoteError, RequestId, Response};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use crate::files;

/// How many requests may wait on one handle before the connection's reader
/// waits too (backpressure instead of unbounded queues).
const HANDLE_QUEUE: usize = 64;

pub enum HandleOp {
    Read { offset: u64, len: u32 },
    Write { offset: Option<u64>, data: Vec<u8> },
    Truncate { len: u64 },
    Sync,
    FStat,
    Close,
}

struct Job {
    id: RequestId,
    op: HandleOp,
    _permit: OwnedSemaphorePermit,
}

/// The handle table of one connection.
pub struct Handles {
    /// A std mutex: it guards plain map operations and is never held across
    /// an `.await`.
    table: Mutex<HashMap<Handle, mpsc::Sender<Job>>>,
    next: Mutex<Handle>,
    out: mpsc::Sender<AgentMessage>,
}

impl Handles {
    pub fn new(out: mpsc::Sender<AgentMessage>) -> Arc<Self> {
        Arc::new(Self {
            table: Mutex::new(HashMap::new()),
            next: Mutex::new(1),
            out,
        })
    }

    /// Registers an opened file; the caller answers `Opened` and then runs
    /// the returned worker, so the handle is known before the client is.
    pub fn insert(&self, file: File) -> (Handle, Worker) {
        let handle = {
            let mut next = lock(&self.next);
            let h = *next;
            *next += 1;
            h
        };
        let (tx, rx) = mpsc::channel(HANDLE_QUEUE);
        lock(&self.table).insert(handle, tx);
        (
            handle,
            Worker {
                inline: crate::fs_kind::inline_io(&file),
                file: Arc::new(file),
                rx,
                out: self.out.clone(),
            },
        )
    }

    /// Queues `op` behind the earlier requests on `handle`; an unknown
    /// handle is answered with `EBADF` at once. A `Close` removes the handle
    /// now (later requests get `EBADF`) and closes the file once the
    /// requests before it have run.
    pub async fn submit(
        &self,
        id: RequestId,
        handle: Handle,
        op: HandleOp,
        permit: OwnedSemaphorePermit,
    ) {
        let tx = {
            let mut table = lock(&self.table);
            if matches!(op, HandleOp::Close) {
                table.remove(&handle)
            } else {
                table.get(&handle).cloned()
            }
        };
        let Some(tx) = tx else {
            let err = RemoteError::new(libc::EBADF, format!("no open file with handle {handle}"));
            let _ = self
                .out
                .send(AgentMessage::Response {
                    id,
                    result: Err(err),
                })
                .await;
            return;
        };
        if tx
            .send(Job {
                id,
                op,
                _permit: permit,
            })
            .await
            .is_err()
        {
            tracing::debug!(handle, "handle worker already gone");
        }
    }

    pub fn open_count(&self) -> usize {
        lock(&self.table).len()
    }
}

/// Runs the requests of one handle in order until it is closed or the
/// connection ends (the table, and so the queue's sender, is dropped).
pub struct Worker {
    /// A regular file on a local filesystem, where a read or write of the
    /// page cache cannot stall: run it right here, without handing the
    /// thread over (`block_in_place` wakes another thread per call).
    inline: bool,
    file: Arc<File>,
    rx: mpsc::Receiver<Job>,
    out: mpsc::Sender<AgentMessage>,
}

impl Worker {
    pub async fn run(self) {
        let Worker {
            inline,
            file,
            mut rx,
            out,
        } = self;
        while let Some(job) = rx.recv().await {
            let close = matches!(job.op, HandleOp::Close);
            let op = job.op;
            let f = file.clone();
            let result = crate::session::off_worker(inline, move || Ok(run(&f, op)))
                .await
                .unwrap_or_else(|e| Err(RemoteError::from_io(&e)));
            if out
                .send(AgentMessage::Response { id: job.id, result })
                .await
                .is_err()
                || close
            {
                break;
            }
        }
    }
}

fn run(file: &File, op: HandleOp) -> Result<Response, RemoteError> {
    let io = |e: std::io::Error| RemoteError::from_io(&e);
    match op {
        HandleOp::Read { offset, len } => files::read_at(file, offset, len, None)
            .map(|(data, eof)| Response::Data { data, eof })
            .map_err(io),
        HandleOp::Write { offset, data } => files::write(file, offset, &data)
            .map(|len| Response::Written { len })
            .map_err(io),
        HandleOp::Truncate { len } => files::truncate(file, len)
            .map(|()| Response::Done)
            .map_err(io),
        HandleOp::Sync => files::sync(file).map(|()| Response::Done).map_err(io),
        HandleOp::FStat => files::fstat(file).map(Response::Stat).map_err(io),
        // The descriptor closes when the worker drops the last reference.
        HandleOp::Close => Ok(Response::Done),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked mid-update of a map
    // that stays consistent; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
