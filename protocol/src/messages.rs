//! The message types of both hops (layer <-> intproxy, intproxy <-> agent).
//!
//! Paths and environment entries are raw bytes (`Vec<u8>`): Linux allows any
//! byte but `/` and NUL in a name, and the layer must not lose a file because
//! its name is not UTF-8.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::Version;

/// Matches a response to its request; unique per connection and sender.
pub type RequestId = u64;
/// An open remote file, valid on the agent connection that opened it.
pub type Handle = u64;

/// The handle of an `Opened` answer when the agent has already closed the
/// file: it was opened read-only and `data` holds all of it. There is
/// nothing more to read, and nothing to close.
pub const CLOSED_HANDLE: Handle = 0;
/// An outgoing connection made by the agent.
pub type ConnId = u64;
/// A layer instance (one per process image) as numbered by the intproxy.
pub type LayerId = u64;
/// A path or name as raw bytes.
pub type RawPath = Vec<u8>;
/// The bytes of a `ConnData`: on the wire exactly as a byte vector, and
/// in memory a slice of the buffer the frame was read into (see
/// [`crate::codec`]), so a relay passes them on without copying.
pub type Payload = bytes::Bytes;

/// The most bytes one `Read` may ask for; larger reads are split by the caller.
pub const MAX_READ_LEN: u32 = 1 << 20;

// ---------------------------------------------------------------------------
// layer <-> intproxy

/// Sent by the layer to the intproxy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LayerMessage {
    /// The first frame on a connection.
    Hello(LayerHello),
    Request {
        id: RequestId,
        request: LayerRequest,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LayerHello {
    pub version: Version,
    pub pid: u32,
    /// The executable's name, for logs and `mirrord status`.
    pub process_name: String,
    /// Set by a forked child: it shares the parent's open remote files, so
    /// the intproxy keeps them open until both have closed them.
    pub parent: Option<LayerId>,
}

/// What the layer asks of the intproxy.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LayerRequest {
    /// Forwarded to the agent as is.
    Remote(Request),
    /// Make a connection from the target and relay it to a local address
    /// that the layer then connects the program's own socket to.
    ConnectOutgoing {
        protocol: NetProtocol,
        remote: SocketAddr,
    },
    /// The program listens: subscribe to the target's port
    /// `subscription.port` and deliver its connections to `app` (the
    /// program's own listening socket, as the intproxy can reach it).
    /// Answered with `Remote(Done)`.
    Listen {
        subscription: Subscription,
        app: SocketAddr,
    },
    /// The program closed its listener of the target's port `port`.
    /// Answered with `Remote(Done)`.
    Unlisten { port: u16 },
    /// Who is behind an accepted connection whose peer is `peer` (a
    /// loopback address): `Peer(Some(..))` when the intproxy made it to
    /// deliver an incoming connection, `Peer(None)` for a local client.
    IncomingPeer { peer: SocketAddr },
}

/// Sent by the intproxy to a layer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ProxyMessage {
    HelloAck {
        version: Version,
        layer_id: LayerId,
    },
    /// The intproxy will not serve this layer; the connection closes next.
    Refused {
        reason: String,
    },
    Response {
        id: RequestId,
        result: Result<LayerResponse, RemoteError>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum LayerResponse {
    Remote(Response),
    /// The remote connection is up: connect the program's socket to `relay`.
    /// `local` is the agent socket's own address in the target.
    Outgoing {
        relay: SocketAddr,
        local: SocketAddr,
    },
    /// The answer to `IncomingPeer`.
    Peer(Option<IncomingPeer>),
}

/// `::ffff:a.b.c.d` as `a.b.c.d` (other addresses unchanged): how every
/// hop names an IPv4 peer seen by a dual-stack socket, so lookups by
/// address agree.
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
}

/// Where the intproxy can connect to a listener bound to `bound`: the
/// wildcard addresses become the loopback of their family.
pub fn reachable(bound: SocketAddr) -> SocketAddr {
    let bound = unmapped(bound);
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// An incoming connection as the target saw it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingPeer {
    /// The real client's address.
    pub remote: SocketAddr,
    /// The address the client connected to in the target (its original
    /// destination, before any redirect).
    pub local: SocketAddr,
}

// ---------------------------------------------------------------------------
// intproxy <-> agent

/// Sent by the agent's client (the intproxy) to the agent.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// The first frame on a connection.
    Hello(ClientHello),
    Request {
        id: RequestId,
        request: Request,
    },
    /// Bytes for an outgoing connection (one datagram for UDP).
    ConnData {
        conn: ConnId,
        data: Payload,
    },
    /// The local side will send no more (TCP half-close).
    ConnShutdown {
        conn: ConnId,
    },
    /// Forget the connection.
    ConnClose {
        conn: ConnId,
    },
    Ping,
    /// Since 1.2: `bytes` more bytes of the agent's `ConnData` on `conn`
    /// were written to the local side; the agent may send that much more
    /// (see [`crate::CONN_WINDOW`]).
    ConnAck {
        conn: ConnId,
        bytes: u64,
    },
    /// Since 1.4, the first frame of a connection of its own instead of
    /// `Hello` (sent only to an agent that speaks 1.4): connect to `remote`
    /// over TCP from the target. The agent answers `StreamOpened`, and
    /// from then on the connection carries that TCP connection's bytes,
    /// unframed, both ways: a half-close is passed on as a half-close, and
    /// the kernel's flow control replaces `ConnAck`. Lets both relays move
    /// the bytes with `splice(2)` (see `crate::splice`).
    OpenStream {
        /// The session secret when the agent was started with one.
        secret: Option<String>,
        remote: SocketAddr,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    pub version: Version,
    /// The session secret when the agent was started with one.
    pub secret: Option<String>,
}

/// Sent by the agent to its client.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum AgentMessage {
    HelloAck {
        version: Version,
        /// The target's PID, or `None` when targetless.
        target_pid: Option<u32>,
    },
    Refused {
        reason: String,
    },
    Response {
        id: RequestId,
        result: Result<Response, RemoteError>,
    },
    /// Bytes that arrived on an outgoing connection (one datagram for UDP).
    ConnData {
        conn: ConnId,
        data: Payload,
    },
    /// The remote peer closed its sending side.
    ConnEof {
        conn: ConnId,
    },
    /// The connection is gone; `error` says why when it failed.
    ConnClosed {
        conn: ConnId,
        error: Option<RemoteError>,
    },
    Pong,
    /// The agent is about to close the connection, and says why (the target
    /// exited, the agent is shutting down...), so the user sees the cause.
    Closing {
        reason: String,
    },
    /// A connection to a subscribed port arrived. From now on `conn` carries
    /// its bytes both ways with `ConnData`/`ConnShutdown`/`ConnClose` and
    /// `ConnData`/`ConnEof`/`ConnClosed`, exactly like an outgoing one;
    /// ids of both kinds come from one counter.
    IncomingConn {
        conn: ConnId,
        /// The subscribed port (the original destination port).
        port: u16,
        peer: IncomingPeer,
    },
    /// Since 1.2: `bytes` more bytes of the client's `ConnData` on `conn`
    /// were written to the peer; the client may send that much more.
    ConnAck {
        conn: ConnId,
        bytes: u64,
    },
    /// Since 1.3, sent only to clients that speak it: something the user
    /// should see that is not an error (the client logs it as a warning).
    Warning {
        message: String,
    },
    /// Since 1.4, the answer to `OpenStream` and the only frame on that
    /// connection: the connection's local address in the target, or why
    /// it could not be made (then the agent closes the stream).
    StreamOpened {
        result: Result<SocketAddr, RemoteError>,
    },
}

// ---------------------------------------------------------------------------
// Requests served by the agent

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Open a file in the target's root. Up to `read_ahead` bytes from offset
    /// 0 come back with the answer, so a small file costs one round trip.
    Open {
        #[serde(with = "serde_bytes")]
        path: RawPath,
        flags: OpenFlags,
        mode: u32,
        read_ahead: u32,
    },
    /// Read up to `len` (at most [`MAX_READ_LEN`]) bytes at `offset`.
    Read {
        handle: Handle,
        offset: u64,
        len: u32,
    },
    /// Write at `offset`, or at the end of the file when `None`.
    Write {
        handle: Handle,
        offset: Option<u64>,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Truncate {
        handle: Handle,
        len: u64,
    },
    Sync {
        handle: Handle,
    },
    Close {
        handle: Handle,
    },
    /// `stat` (follow = true) or `lstat` (follow = false) of a path.
    Stat {
        #[serde(with = "serde_bytes")]
        path: RawPath,
        follow: bool,
    },
    FStat {
        handle: Handle,
    },
    /// `access(2)`: `mode` is `F_OK` or an or of `R_OK`, `W_OK`, `X_OK`.
    Access {
        #[serde(with = "serde_bytes")]
        path: RawPath,
        mode: i32,
    },
    ReadLink {
        #[serde(with = "serde_bytes")]
        path: RawPath,
    },
    /// Every entry of a directory (without `.` and `..`).
    ReadDir {
        #[serde(with = "serde_bytes")]
        path: RawPath,
    },
    Mkdir {
        #[serde(with = "serde_bytes")]
        path: RawPath,
        mode: u32,
    },
    Unlink {
        #[serde(with = "serde_bytes")]
        path: RawPath,
    },
    Rmdir {
        #[serde(with = "serde_bytes")]
        path: RawPath,
    },
    Rename {
        #[serde(with = "serde_bytes")]
        from: RawPath,
        #[serde(with = "serde_bytes")]
        to: RawPath,
    },
    /// The target's environment.
    GetEnv,
    /// Resolve a name the way the target would (its hosts file, then DNS
    /// with its resolv.conf, from its network namespace).
    Resolve {
        host: String,
        family: AddrFamily,
    },
    /// Connect from the target's network namespace.
    Connect {
        protocol: NetProtocol,
        remote: SocketAddr,
    },
    /// Deliver the target's incoming connections on a port (answered with
    /// `Done`; `EADDRINUSE` when another client steals it and
    /// `take_over` is false; `ENOTSUP` for a mode this agent lacks).
    Subscribe(Subscription),
    /// Stop delivering a port's connections (answered with `Done`).
    Unsubscribe {
        port: u16,
    },
}

/// A subscription to the target's incoming connections on one port.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub port: u16,
    pub mode: IncomingMode,
    /// Steal the port even if another client steals it now.
    pub take_over: bool,
    /// Steal only the HTTP/1.1 requests that match; `None` steals every
    /// connection.
    pub http_filter: Option<HttpFilter>,
}

impl Subscription {
    /// `port` stolen (else mirrored), taken over from another session
    /// with `take_over`, and with `http_filter` = `(header, path)` only the
    /// matching HTTP requests.
    pub fn new(
        port: u16,
        steal: bool,
        take_over: bool,
        http_filter: Option<(Option<String>, Option<String>)>,
    ) -> Subscription {
        Subscription {
            port,
            mode: if steal {
                IncomingMode::Steal
            } else {
                IncomingMode::Mirror
            },
            take_over,
            http_filter: http_filter.map(|(header, path)| HttpFilter { header, path }),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncomingMode {
    /// The client gets a copy of each connection; the target answers.
    Mirror,
    /// The client gets the connections instead of the target.
    Steal,
}

/// Regular expressions (Rust `regex` syntax) a stolen request must match.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct HttpFilter {
    /// Searched for in each `Name: value` header line.
    pub header: Option<String>,
    /// Searched for in the request target (path and query).
    pub path: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Opened {
        handle: Handle,
        stat: FileStat,
        /// The first bytes of the file (see `Request::Open::read_ahead`).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        /// `data` reaches the end of the file.
        eof: bool,
    },
    Data {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        eof: bool,
    },
    Written {
        len: u64,
    },
    /// The request succeeded and has nothing to return.
    Done,
    Stat(FileStat),
    Path(#[serde(with = "serde_bytes")] RawPath),
    DirEntries(Vec<DirEntry>),
    Env(Vec<(Vec<u8>, Vec<u8>)>),
    Addresses {
        canonical: Option<String>,
        addrs: Vec<IpAddr>,
    },
    Connected {
        conn: ConnId,
        local: SocketAddr,
    },
}

/// The failure of a remote call: the errno the program sees, and a message
/// for logs.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub errno: i32,
    pub message: String,
}

impl RemoteError {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }

    /// Keeps the OS error number; anything else becomes `EIO`.
    pub fn from_io(err: &std::io::Error) -> Self {
        Self::new(err.raw_os_error().unwrap_or(EIO), err.to_string())
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for RemoteError {}

/// Linux `EIO`; spelled out so this crate needs no libc.
const EIO: i32 = 5;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub truncate: bool,
    pub exclusive: bool,
    pub directory: bool,
    pub nofollow: bool,
}

#[cfg(feature = "libc")]
impl OpenFlags {
    /// The flags for `open(2)` flags: `write` when the file is opened for
    /// writing in the target (else only read), `read_content` when its
    /// content is needed even if the program only writes.
    pub fn from_open(flags: i32, write: bool, read_content: bool) -> OpenFlags {
        let acc = flags & libc::O_ACCMODE;
        OpenFlags {
            read: acc != libc::O_WRONLY || read_content,
            write: write && acc != libc::O_RDONLY,
            append: write && flags & libc::O_APPEND != 0,
            create: write && flags & libc::O_CREAT != 0,
            truncate: write && flags & libc::O_TRUNC != 0,
            exclusive: write && flags & libc::O_EXCL != 0,
            directory: flags & libc::O_DIRECTORY != 0,
            nofollow: flags & libc::O_NOFOLLOW != 0,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// The fields of `struct stat` as the target sees them.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blksize: u64,
    pub blocks: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    #[serde(with = "serde_bytes")]
    pub name: RawPath,
    pub ino: u64,
    /// The `DT_*` type of the entry (`DT_UNKNOWN` = 0 when not known).
    pub kind: u8,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetProtocol {
    Tcp,
    Udp,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrFamily {
    Any,
    V4,
    V6,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_frame, encode_frame, PROTOCOL_VERSION};
    use proptest::prelude::*;

    fn raw() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..64)
    }

    fn addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        ]
    }

    fn stat() -> impl Strategy<Value = FileStat> {
        (any::<[u64; 8]>(), any::<(u32, u32, u32)>(), any::<i64>()).prop_map(|(n, m, t)| FileStat {
            dev: n[0],
            ino: n[1],
            mode: m.0,
            nlink: n[2],
            uid: m.1,
            gid: m.2,
            rdev: n[3],
            size: n[4],
            blksize: n[5],
            blocks: n[6],
            atime: Timestamp { secs: t, nanos: 1 },
            mtime: Timestamp::default(),
            ctime: Timestamp {
                secs: -t.saturating_abs(),
                nanos: 999_999_999,
            },
        })
    }

    fn flags() -> impl Strategy<Value = OpenFlags> {
        any::<[bool; 8]>().prop_map(|b| OpenFlags {
            read: b[0],
            write: b[1],
            append: b[2],
            create: b[3],
            truncate: b[4],
            exclusive: b[5],
            directory: b[6],
            nofollow: b[7],
        })
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (raw(), flags(), any::<u32>(), any::<u32>()).prop_map(|(path, flags, mode, r)| {
                Request::Open {
                    path,
                    flags,
                    mode,
                    read_ahead: r,
                }
            }),
            (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(handle, offset, len)| {
                Request::Read {
                    handle,
                    offset,
                    len,
                }
            }),
            (any::<u64>(), any::<Option<u64>>(), raw()).prop_map(|(handle, offset, data)| {
                Request::Write {
                    handle,
                    offset,
                    data,
                }
            }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(handle, len)| Request::Truncate { handle, len }),
            any::<u64>().prop_map(|handle| Request::Sync { handle }),
            any::<u64>().prop_map(|handle| Request::Close { handle }),
            (raw(), any::<bool>()).prop_map(|(path, follow)| Request::Stat { path, follow }),
            any::<u64>().prop_map(|handle| Request::FStat { handle }),
            (raw(), any::<i32>()).prop_map(|(path, mode)| Request::Access { path, mode }),
            raw().prop_map(|path| Request::ReadLink { path }),
            raw().prop_map(|path| Request::ReadDir { path }),
            (raw(), any::<u32>()).prop_map(|(path, mode)| Request::Mkdir { path, mode }),
            raw().prop_map(|path| Request::Unlink { path }),
            raw().prop_map(|path| Request::Rmdir { path }),
            (raw(), raw()).prop_map(|(from, to)| Request::Rename { from, to }),
            Just(Request::GetEnv),
            (
                ".{0,40}",
                prop_oneof![
                    Just(AddrFamily::Any),
                    Just(AddrFamily::V4),
                    Just(AddrFamily::V6)
                ]
            )
                .prop_map(|(host, family)| Request::Resolve { host, family }),
            (any::<bool>(), addr()).prop_map(|(tcp, remote)| Request::Connect {
                protocol: if tcp {
                    NetProtocol::Tcp
                } else {
                    NetProtocol::Udp
                },
                remote
            }),
            subscription().prop_map(Request::Subscribe),
            any::<u16>().prop_map(|port| Request::Unsubscribe { port }),
        ]
    }

    fn subscription() -> impl Strategy<Value = Subscription> {
        (
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of((
                proptest::option::of(".{0,20}"),
                proptest::option::of(".{0,20}"),
            )),
        )
            .prop_map(|(port, steal, take_over, filter)| {
                Subscription::new(port, steal, take_over, filter)
            })
    }

    fn peer() -> impl Strategy<Value = IncomingPeer> {
        (addr(), addr()).prop_map(|(remote, local)| IncomingPeer { remote, local })
    }

    fn error() -> impl Strategy<Value = RemoteError> {
        (any::<i32>(), ".{0,30}").prop_map(|(errno, message)| RemoteError { errno, message })
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            (any::<u64>(), stat(), raw(), any::<bool>()).prop_map(|(handle, stat, data, eof)| {
                Response::Opened {
                    handle,
                    stat,
                    data,
                    eof,
                }
            }),
            (raw(), any::<bool>()).prop_map(|(data, eof)| Response::Data { data, eof }),
            any::<u64>().prop_map(|len| Response::Written { len }),
            Just(Response::Done),
            stat().prop_map(Response::Stat),
            raw().prop_map(Response::Path),
            proptest::collection::vec(
                (raw(), any::<u64>(), any::<u8>()).prop_map(|(name, ino, kind)| DirEntry {
                    name,
                    ino,
                    kind
                }),
                0..5
            )
            .prop_map(Response::DirEntries),
            proptest::collection::vec((raw(), raw()), 0..5).prop_map(Response::Env),
            (
                proptest::option::of(".{0,20}"),
                proptest::collection::vec(addr().prop_map(|a| a.ip()), 0..4)
            )
                .prop_map(|(canonical, addrs)| Response::Addresses { canonical, addrs }),
            (any::<u64>(), addr()).prop_map(|(conn, local)| Response::Connected { conn, local }),
        ]
    }

    fn result() -> impl Strategy<Value = Result<Response, RemoteError>> {
        prop_oneof![response().prop_map(Ok), error().prop_map(Err)]
    }

    fn client_message() -> impl Strategy<Value = ClientMessage> {
        prop_oneof![
            proptest::option::of(".{0,20}").prop_map(|secret| ClientMessage::Hello(ClientHello {
                version: PROTOCOL_VERSION,
                secret
            })),
            (any::<u64>(), request())
                .prop_map(|(id, request)| ClientMessage::Request { id, request }),
            (any::<u64>(), raw()).prop_map(|(conn, data)| ClientMessage::ConnData {
                conn,
                data: data.into()
            }),
            any::<u64>().prop_map(|conn| ClientMessage::ConnShutdown { conn }),
            any::<u64>().prop_map(|conn| ClientMessage::ConnClose { conn }),
            Just(ClientMessage::Ping),
            (any::<u64>(), any::<u64>())
                .prop_map(|(conn, bytes)| ClientMessage::ConnAck { conn, bytes }),
            (proptest::option::of(".{0,20}"), addr())
                .prop_map(|(secret, remote)| ClientMessage::OpenStream { secret, remote }),
        ]
    }

    fn agent_message() -> impl Strategy<Value = AgentMessage> {
        prop_oneof![
            proptest::option::of(any::<u32>()).prop_map(|target_pid| AgentMessage::HelloAck {
                version: PROTOCOL_VERSION,
                target_pid
            }),
            ".{0,30}".prop_map(|reason| AgentMessage::Refused { reason }),
            (any::<u64>(), result()).prop_map(|(id, result)| AgentMessage::Response { id, result }),
            (any::<u64>(), raw()).prop_map(|(conn, data)| AgentMessage::ConnData {
                conn,
                data: data.into()
            }),
            any::<u64>().prop_map(|conn| AgentMessage::ConnEof { conn }),
            (any::<u64>(), proptest::option::of(error()))
                .prop_map(|(conn, error)| AgentMessage::ConnClosed { conn, error }),
            Just(AgentMessage::Pong),
            ".{0,30}".prop_map(|reason| AgentMessage::Closing { reason }),
            (any::<u64>(), any::<u16>(), peer())
                .prop_map(|(conn, port, peer)| AgentMessage::IncomingConn { conn, port, peer }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(conn, bytes)| AgentMessage::ConnAck { conn, bytes }),
            ".{0,30}".prop_map(|message| AgentMessage::Warning { message }),
            prop_oneof![addr().prop_map(Ok), error().prop_map(Err)]
                .prop_map(|result| AgentMessage::StreamOpened { result }),
        ]
    }

    fn layer_message() -> impl Strategy<Value = LayerMessage> {
        prop_oneof![
            (any::<u32>(), ".{0,20}", proptest::option::of(any::<u64>())).prop_map(
                |(pid, process_name, parent)| LayerMessage::Hello(LayerHello {
                    version: PROTOCOL_VERSION,
                    pid,
                    process_name,
                    parent
                })
            ),
            (any::<u64>(), request()).prop_map(|(id, r)| LayerMessage::Request {
                id,
                request: LayerRequest::Remote(r)
            }),
            (any::<u64>(), addr()).prop_map(|(id, remote)| LayerMessage::Request {
                id,
                request: LayerRequest::ConnectOutgoing {
                    protocol: NetProtocol::Tcp,
                    remote
                }
            }),
            (any::<u64>(), subscription(), addr()).prop_map(|(id, subscription, app)| {
                LayerMessage::Request {
                    id,
                    request: LayerRequest::Listen { subscription, app },
                }
            }),
            (any::<u64>(), any::<u16>()).prop_map(|(id, port)| LayerMessage::Request {
                id,
                request: LayerRequest::Unlisten { port }
            }),
            (any::<u64>(), addr()).prop_map(|(id, peer)| LayerMessage::Request {
                id,
                request: LayerRequest::IncomingPeer { peer }
            }),
        ]
    }

    fn proxy_message() -> impl Strategy<Value = ProxyMessage> {
        prop_oneof![
            any::<u64>().prop_map(|layer_id| ProxyMessage::HelloAck {
                version: PROTOCOL_VERSION,
                layer_id
            }),
            ".{0,30}".prop_map(|reason| ProxyMessage::Refused { reason }),
            (any::<u64>(), result()).prop_map(|(id, r)| ProxyMessage::Response {
                id,
                result: r.map(LayerResponse::Remote)
            }),
            (any::<u64>(), addr(), addr()).prop_map(|(id, relay, local)| ProxyMessage::Response {
                id,
                result: Ok(LayerResponse::Outgoing { relay, local })
            }),
            (any::<u64>(), proptest::option::of(peer())).prop_map(|(id, peer)| {
                ProxyMessage::Response {
                    id,
                    result: Ok(LayerResponse::Peer(peer)),
                }
            }),
        ]
    }

    fn round_trips<T>(msg: T)
    where
        T: Serialize
            + serde::de::DeserializeOwned
            + crate::codec::Frame
            + PartialEq
            + std::fmt::Debug,
    {
        let frame = encode_frame(&msg).expect("encodes");
        let (back, used) = decode_frame::<T>(&frame)
            .expect("decodes")
            .expect("complete");
        assert_eq!(used, frame.len());
        assert_eq!(back, msg);
        #[cfg(feature = "tokio")]
        {
            use tokio_util::codec::Decoder;
            let mut buf = bytes::BytesMut::from(&frame[..]);
            let back = crate::codec::FrameCodec::<T, T>::default().decode(&mut buf);
            assert_eq!(back.expect("decodes"), Some(msg));
            assert!(buf.is_empty());
        }
        // Every strict prefix is incomplete, never an error or a panic.
        for cut in 0..frame.len() {
            assert!(matches!(decode_frame::<T>(&frame[..cut]), Ok(None)));
        }
    }

    proptest! {
        #[test]
        fn client_messages_round_trip(msg in client_message()) { round_trips(msg) }
        #[test]
        fn agent_messages_round_trip(msg in agent_message()) { round_trips(msg) }
        #[test]
        fn layer_messages_round_trip(msg in layer_message()) { round_trips(msg) }
        #[test]
        fn proxy_messages_round_trip(msg in proxy_message()) { round_trips(msg) }
    }

    #[test]
    fn the_intproxy_reaches_wildcard_listeners_on_loopback() {
        let rows = [
            ("0.0.0.0:80", "127.0.0.1:80"),
            ("[::]:80", "[::1]:80"),
            ("[::ffff:0.0.0.0]:80", "127.0.0.1:80"),
            ("10.0.0.5:80", "10.0.0.5:80"),
        ];
        for (bound, expected) in rows {
            assert_eq!(
                crate::reachable(bound.parse().unwrap()),
                expected.parse::<SocketAddr>().unwrap(),
                "{bound}"
            );
        }
    }

    /// Pins the wire form: if this changes, bump `PROTOCOL_VERSION` (see the
    /// crate docs) and update the bytes here.
    #[test]
    fn wire_form_is_pinned() {
        let frame = encode_frame(&ClientMessage::Hello(ClientHello {
            version: PROTOCOL_VERSION,
            secret: None,
        }))
        .unwrap();
        assert_eq!(frame, [0, 0, 0, 4, 0, 1, 4, 0], "wire form changed");
        let frame = encode_frame(&ClientMessage::Request {
            id: 7,
            request: Request::Stat {
                path: b"/a".to_vec(),
                follow: true,
            },
        })
        .unwrap();
        assert_eq!(frame, [0, 0, 0, 7, 1, 7, 6, 2, b'/', b'a', 1]);
        let frame = encode_frame(&ClientMessage::Request {
            id: 8,
            request: Request::Subscribe(Subscription {
                port: 80,
                mode: IncomingMode::Steal,
                take_over: false,
                http_filter: Some(HttpFilter {
                    header: Some("a".into()),
                    path: None,
                }),
            }),
        })
        .unwrap();
        assert_eq!(frame, [0, 0, 0, 11, 1, 8, 18, 80, 1, 0, 1, 1, 1, b'a', 0]);
        let frame = encode_frame(&AgentMessage::IncomingConn {
            conn: 3,
            port: 80,
            peer: IncomingPeer {
                remote: "10.0.0.1:5000".parse().unwrap(),
                local: "10.0.0.2:80".parse().unwrap(),
            },
        })
        .unwrap();
        assert_eq!(
            frame,
            [0, 0, 0, 17, 8, 3, 80, 0, 10, 0, 0, 1, 251, 136, 19, 0, 10, 0, 0, 2, 80]
        );
    }
}
