//! SPDY/3.1, the stream multiplexing kubectl's `port-forward` speaks to the
//! kubelet: [`frame`] reads and writes frames, [`headers`] the zlib-
//! compressed header blocks, [`flow`] the flow-control windows,
//! [`portforward`] serves the
//! `portforward.k8s.io` protocol over a session (a plain `Upgrade:
//! SPDY/3.1` connection, or the same bytes tunnelled in WebSocket binary
//! messages, as kubectl 1.31+ tries first).

pub mod flow;
pub mod frame;
pub mod headers;
pub mod portforward;

/// What can end a SPDY session.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
    #[error("SPDY header compression: {0}")]
    Zlib(String),
    #[error("SPDY connection: {0}")]
    Io(#[from] std::io::Error),
}
