//! The layer's one blocking connection to the intproxy.
//!
//! There is no thread of ours in the user's process: a hook that needs the
//! agent takes the connection's lock, writes its request and reads frames
//! until its answer arrives. Answers to pipelined writes that arrive in the
//! meantime are recorded and reported by [`flush`].
//!
//! The connection's fd is moved to a high number (so the program sees the fd
//! numbers it would see without mirrord), is close-on-exec (an exec'd child
//! loads its own layer and connects anew), and is protected from the
//! program's `close`/`dup2` by [`crate::fdhooks`].

use std::collections::HashMap;
use std::io::Read;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use mirrord_protocol::{
    decode_frame, encode_frame, CodecError, Endpoint, Handle, LayerHello, LayerId, LayerMessage,
    LayerRequest, LayerResponse, ProxyMessage, RemoteError, Request, RequestId, Response,
    CLOSED_HANDLE, PROTOCOL_VERSION,
};
use parking_lot::Mutex;

use crate::error::HookError;

struct Connection {
    /// A Unix or a TCP socket (see [`connect_to`]); held as a `UnixStream`
    /// because every operation used here (`send`, `recv`, `SO_RCVTIMEO`)
    /// is the same socket call for both.
    stream: UnixStream,
    /// Bytes read but not yet decoded: one `recv` usually brings a whole
    /// answer, header and body.
    rbuf: Vec<u8>,
    layer_id: LayerId,
    next_id: RequestId,
    /// Pipelined requests whose answers have not arrived, by handle.
    in_flight: HashMap<RequestId, Handle>,
    /// The first failure of a pipelined request per handle, reported by `flush`.
    deferred: HashMap<Handle, RemoteError>,
}

/// `parking_lot` so the atfork handlers can lock it in `prepare` and release
/// it in the parent and child without a guard object crossing the callbacks.
static CONN: Mutex<Option<Connection>> = parking_lot::const_mutex(None);
/// The connection's fd, for the `close`/`dup2` protection; -1 when none.
static LAYER_FD: AtomicI32 = AtomicI32::new(-1);
static LAYER_ID: AtomicU64 = AtomicU64::new(0);
/// Set once at load; read by a forked child to reconnect.
static PROXY_ADDR: OnceLock<Endpoint> = OnceLock::new();
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);
/// How much one `recv` asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Whether `fd` is the layer's own connection.
#[inline]
pub fn is_layer_fd(fd: i32) -> bool {
    fd >= 0 && LAYER_FD.load(Ordering::Relaxed) == fd
}

/// Whether the program (not the layer) is touching the layer's connection:
/// to the program that fd is not open (`EBADF`), as it would be without
/// mirrord.
#[inline]
pub fn hidden(fd: i32) -> bool {
    is_layer_fd(fd) && !crate::detour::in_layer()
}

/// The connection's fd, or -1.
pub fn current_fd() -> i32 {
    LAYER_FD.load(Ordering::Relaxed)
}

/// Moves the connection to another fd because the program is about to
/// `dup2` onto ours. Must run with the detour guard held.
pub fn move_away() {
    let mut guard = CONN.lock();
    if let Some(conn) = guard.as_mut() {
        let old = conn.stream.as_raw_fd();
        // SAFETY: duplicating our own fd above the old number.
        let new = unsafe { libc::fcntl(old, libc::F_DUPFD_CLOEXEC, old + 1) };
        if new >= 0 {
            // SAFETY: `new` is a fresh duplicate we own; the old fd is about
            // to be replaced by the program's dup2, which closes it.
            let stream = unsafe { UnixStream::from_raw_fd(new) };
            let old_stream = std::mem::replace(&mut conn.stream, stream);
            let _ = old_stream.into_raw_fd();
            LAYER_FD.store(new, Ordering::Relaxed);
        }
    }
}

/// This process's layer id, once connected.
pub fn layer_id() -> Option<LayerId> {
    match LAYER_ID.load(Ordering::Relaxed) {
        0 => None,
        id => Some(id),
    }
}

/// Connects to the intproxy at `addr` (`unix:@NAME`, what `mirrord exec`
/// sets, or `IP:PORT`).
fn connect_to(addr: &Endpoint, timeout: Duration) -> std::io::Result<UnixStream> {
    match addr {
        Endpoint::Unix(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            UnixStream::connect_addr(&addr)
        }
        Endpoint::Tcp(addr) => {
            let stream = TcpStream::connect_timeout(addr, timeout)?;
            stream.set_nodelay(true)?;
            Ok(UnixStream::from(OwnedFd::from(stream)))
        }
    }
}

/// Connects to the intproxy and says hello. Called at load and in a forked
/// child (with the parent's id). Must run with the detour guard held.
pub fn connect(
    addr: Endpoint,
    parent: Option<LayerId>,
    timeout: Duration,
) -> Result<(), HookError> {
    TIMEOUT_MS.store(timeout.as_millis() as u64, Ordering::Relaxed);
    let stream = connect_to(&addr, timeout)
        .map_err(|e| HookError::ProxyLost(format!("cannot reach the intproxy at {addr:?}: {e}")))?;
    let _ = PROXY_ADDR.set(addr);
    let stream = relocate(stream)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| HookError::ProxyLost(e.to_string()))?;
    let mut conn = Connection {
        stream,
        rbuf: Vec::with_capacity(READ_CHUNK),
        layer_id: 0,
        next_id: 1,
        in_flight: HashMap::new(),
        deferred: HashMap::new(),
    };
    conn.send(&LayerMessage::Hello(LayerHello {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
        process_name: crate::setup::process_name(),
        parent,
    }))?;
    match conn.read_message()? {
        ProxyMessage::HelloAck { version, layer_id } => {
            PROTOCOL_VERSION
                .check_compatible(version)
                .map_err(HookError::ProxyLost)?;
            conn.layer_id = layer_id;
        }
        ProxyMessage::Refused { reason } => return Err(HookError::ProxyLost(reason)),
        ProxyMessage::Response { .. } => {
            return Err(HookError::UnexpectedResponse("a response before the hello"))
        }
    }
    LAYER_ID.store(conn.layer_id, Ordering::Relaxed);
    LAYER_FD.store(conn.stream.as_raw_fd(), Ordering::Relaxed);
    *CONN.lock() = Some(conn);
    Ok(())
}

/// Sends a request and waits for its answer.
pub fn request(request: LayerRequest) -> Result<LayerResponse, HookError> {
    with_connection(|conn| {
        let id = conn.send_request(request)?;
        conn.wait_for(id)
    })
}

/// Sends a request to the agent and waits for its answer.
pub fn remote(request: Request) -> Result<Response, HookError> {
    match self::request(LayerRequest::Remote(request))? {
        LayerResponse::Remote(response) => Ok(response),
        LayerResponse::Outgoing { .. } | LayerResponse::Peer(_) => Err(
            HookError::UnexpectedResponse("an intproxy answer for a remote request"),
        ),
    }
}

/// Sends a request about `handle` without waiting; a failure is reported by
/// the next [`flush`] of that handle.
pub fn pipeline(handle: Handle, request: Request) -> Result<(), HookError> {
    with_connection(|conn| {
        if let Some(err) = conn.deferred.remove(&handle) {
            return Err(HookError::Remote(err));
        }
        let id = conn.send_request(LayerRequest::Remote(request))?;
        conn.in_flight.insert(id, handle);
        Ok(())
    })
}

/// Closes a remote file without waiting (a failure is reported by nobody:
/// there is nothing left to do with the file). [`CLOSED_HANDLE`] is already
/// closed by the agent.
pub fn close_handle(handle: Handle) -> Result<(), HookError> {
    if handle == CLOSED_HANDLE {
        return Ok(());
    }
    pipeline(handle, Request::Close { handle })
}

/// Waits until every pipelined request of `handle` has been answered, and
/// returns the first failure among them.
pub fn flush(handle: Handle) -> Result<(), HookError> {
    with_connection(|conn| {
        while conn.in_flight.values().any(|h| *h == handle) {
            conn.read_one()?;
        }
        match conn.deferred.remove(&handle) {
            Some(err) => Err(HookError::Remote(err)),
            None => Ok(()),
        }
    })
}

fn with_connection<T>(
    f: impl FnOnce(&mut Connection) -> Result<T, HookError>,
) -> Result<T, HookError> {
    let mut guard = CONN.lock();
    let conn = guard
        .as_mut()
        .ok_or_else(|| HookError::ProxyLost("not connected to the intproxy".into()))?;
    let result = f(conn);
    if let Err(HookError::ProxyLost(_) | HookError::Timeout) = &result {
        // The stream may be mid-frame: it cannot be trusted again.
        LAYER_FD.store(-1, Ordering::Relaxed);
        *guard = None;
    }
    result
}

impl Connection {
    fn send(&mut self, msg: &LayerMessage) -> Result<(), HookError> {
        let frame = encode_frame(msg)?;
        self.stream
            .write_all(&frame)
            .map_err(|e| HookError::ProxyLost(format!("intproxy connection lost: {e}")))
    }

    fn send_request(&mut self, request: LayerRequest) -> Result<RequestId, HookError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&LayerMessage::Request { id, request })?;
        Ok(id)
    }

    fn wait_for(&mut self, id: RequestId) -> Result<LayerResponse, HookError> {
        loop {
            if let Some((got, result)) = self.read_one()? {
                if got == id {
                    return result.map_err(HookError::Remote);
                }
            }
        }
    }

    /// The next message, reading from the socket only when the buffer holds
    /// no complete frame.
    fn read_message(&mut self) -> Result<ProxyMessage, HookError> {
        loop {
            if let Some((msg, used)) = decode_frame::<ProxyMessage>(&self.rbuf)? {
                self.rbuf.drain(..used);
                return Ok(msg);
            }
            let start = self.rbuf.len();
            self.rbuf.resize(start + READ_CHUNK, 0);
            match self.stream.read(&mut self.rbuf[start..]) {
                Ok(0) => {
                    self.rbuf.truncate(start);
                    return Err(HookError::ProxyLost(
                        "the intproxy closed the connection".into(),
                    ));
                }
                Ok(n) => self.rbuf.truncate(start + n),
                Err(e) => {
                    self.rbuf.truncate(start);
                    return Err(CodecError::Io(e).into());
                }
            }
        }
    }

    /// Reads one frame; returns answers that are not pipelined writes.
    #[allow(clippy::type_complexity)]
    fn read_one(
        &mut self,
    ) -> Result<Option<(RequestId, Result<LayerResponse, RemoteError>)>, HookError> {
        match self.read_message()? {
            ProxyMessage::Response { id, result } => match self.in_flight.remove(&id) {
                Some(handle) => {
                    if let Err(err) = result {
                        self.deferred.entry(handle).or_insert(err);
                    }
                    Ok(None)
                }
                None => Ok(Some((id, result))),
            },
            ProxyMessage::Refused { reason } => Err(HookError::ProxyLost(reason)),
            ProxyMessage::HelloAck { .. } => Ok(None),
        }
    }
}

/// Moves the connection to a high fd, close-on-exec, out of the way of the
/// program's own fd numbers.
fn relocate(stream: UnixStream) -> Result<UnixStream, HookError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on an fd we own; `limit` is a valid out pointer.
    unsafe {
        let soft = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 16) as i32
        } else {
            1024
        };
        let floor = (soft - 64).max(3);
        let fd = stream.into_raw_fd();
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor);
        if high < 0 {
            return Ok(UnixStream::from_raw_fd(fd));
        }
        crate::real!(close: unsafe extern "C" fn(i32) -> i32)(fd);
        Ok(UnixStream::from_raw_fd(high))
    }
}

// ---------------------------------------------------------------------------
// fork

/// `pthread_atfork` prepare: no other thread may hold the lock across fork.
pub(crate) fn fork_prepare() {
    std::mem::forget(CONN.lock());
}

pub(crate) fn fork_parent() {
    // SAFETY: locked by `fork_prepare` on this thread.
    unsafe { CONN.force_unlock() };
}

/// In the child: drop the inherited connection (the parent keeps using it)
/// and open our own, telling the intproxy who our parent is.
pub(crate) fn fork_child() {
    // SAFETY: locked by `fork_prepare` on the thread that forked, which is
    // the only thread in the child.
    unsafe { CONN.force_unlock() };
    let old = CONN.lock().take();
    LAYER_FD.store(-1, Ordering::Relaxed);
    let parent = old.as_ref().map(|c| c.layer_id);
    if let Some(old) = old {
        // Close without shutdown: the socket stays open in the parent.
        let fd = old.stream.into_raw_fd();
        // SAFETY: our own fd.
        unsafe { crate::real!(close: unsafe extern "C" fn(i32) -> i32)(fd) };
    }
    if let (Some(addr), Some(parent)) = (PROXY_ADDR.get().cloned(), parent) {
        let timeout = Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed));
        if connect(addr, Some(parent), timeout).is_err() {
            LAYER_ID.store(0, Ordering::Relaxed);
        }
    }
}
