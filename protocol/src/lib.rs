//! Every message exchanged between the mirrord layer, the intproxy and the
//! agent, and the length-prefixed framing that carries them.
//!
//! # Hops
//!
//! ```text
//! layer (in the user's process) --LayerMessage-->  intproxy --ClientMessage--> agent
//! layer                         <--ProxyMessage--  intproxy <--AgentMessage--  agent
//! ```
//!
//! Each hop starts with a handshake: the connecting side sends its `Hello`
//! carrying [`PROTOCOL_VERSION`] and the other side answers with a `HelloAck`
//! or a `Refused` that names both versions (see [`Version::check_compatible`]).
//!
//! # Compatibility rules
//!
//! Frames are bincode, which is positional: any change to a message's shape
//! breaks the wire. So:
//! - adding a variant at the *end* of an enum is a **minor** bump (an older
//!   peer fails only when it receives the new variant);
//! - adding, removing or reordering fields, or reordering variants, is a
//!   **major** bump: peers of different majors refuse each other at the
//!   handshake instead of misreading frames.
//!
//! A test in `messages.rs` pins the encoding of a few messages so a change
//! that breaks the wire without a version bump fails CI.

pub mod chunk;
pub mod codec;
pub mod endpoint;
#[cfg(feature = "libc")]
pub mod limits;
pub mod messages;
#[cfg(feature = "tokio")]
pub mod splice;
#[cfg(feature = "libc")]
pub mod stat;
#[cfg(feature = "tokio")]
pub mod transport;

pub use codec::{
    decode_frame, encode_frame, read_frame, write_frame, AgentCodec, ClientCodec, CodecError,
    FrameCodec, ProxyCodec, MAX_FRAME_LEN,
};
pub use endpoint::{Endpoint, UNIX_PREFIX};
pub use messages::*;

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks.
/// 1.1: incoming traffic (`Subscribe`, `Unsubscribe`, `IncomingConn`, and
/// the layer's `Listen`, `Unlisten`, `IncomingPeer`).
/// 1.2: per-connection flow control (`ConnAck` both ways).
/// 1.3: `AgentMessage::Warning` (something the user should know that is
/// not an error: a steal that reaches only the target's IPv4 clients).
/// 1.4: side streams (`ClientMessage::OpenStream`, `AgentMessage::StreamOpened`):
/// an outgoing TCP connection on a connection of its own, unframed.
pub const PROTOCOL_VERSION: Version = Version { major: 1, minor: 4 };

/// How many bytes of `ConnData` one side may have sent on a stream
/// connection (TCP, or a stolen or mirrored one) and not yet seen
/// acknowledged by a `ConnAck`: the sender stops reading its local socket
/// at this mark, so a fast sender and a slow reader cost at most this much
/// memory per connection on each side, and one busy connection never
/// stalls the others sharing the hop. Datagram (UDP) connections are not
/// counted. Only used when both sides speak 1.2 or later
/// ([`Version::has_flow_control`]); an older peer neither sends nor
/// expects acks.
pub const CONN_WINDOW: u64 = 1 << 20;

/// A receiver acknowledges a connection's bytes once it has written this
/// many since its last `ConnAck`, not after every write: a request and
/// its answer then cost two messages on the hop, not four (an ack each
/// way). The sender never waits for an ack the receiver holds back: what
/// the receiver owes is below this, and the sender stops at
/// [`CONN_WINDOW`], four times as much.
pub const ACK_EVERY: u64 = CONN_WINDOW / 4;

/// The `ConnAck` a connection's receiver owes, batched by [`ACK_EVERY`].
#[derive(Debug, Default)]
pub struct Acks {
    owed: u64,
}

impl Acks {
    /// Counts `bytes` written to the connection's peer; the bytes to
    /// acknowledge now, if any.
    pub fn wrote(&mut self, bytes: u64) -> Option<u64> {
        self.owed += bytes;
        (self.owed >= ACK_EVERY).then(|| std::mem::take(&mut self.owed))
    }
}

/// A protocol version: peers with the same `major` understand each other.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
}

impl Version {
    /// Checks that a peer speaking `peer` can talk to us; the error names
    /// both versions so either side can say which one to upgrade.
    pub fn check_compatible(self, peer: Version) -> Result<(), String> {
        if self.major == peer.major {
            Ok(())
        } else {
            Err(format!(
                "incompatible mirrord protocol: this side speaks {self}, the peer speaks {peer}; \
                 use the same major version of mirrord on both ends"
            ))
        }
    }

    /// Whether a peer speaking `self` sends and honours `ConnAck`.
    pub fn has_flow_control(self) -> bool {
        (self.major, self.minor) >= (1, 2)
    }

    /// Whether a peer speaking `self` understands `AgentMessage::Warning`.
    pub fn has_warnings(self) -> bool {
        (self.major, self.minor) >= (1, 3)
    }

    /// Whether an agent speaking `self` accepts `ClientMessage::OpenStream`.
    pub fn has_side_streams(self) -> bool {
        (self.major, self.minor) >= (1, 4)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender that stops at the window, and a receiver that writes
    /// everything it gets and acknowledges in batches: whenever the
    /// receiver has caught up, the sender has room again, whatever the
    /// chunk sizes.
    #[test]
    fn batched_acks_never_leave_a_caught_up_sender_waiting() {
        for chunk in [7, 100, 4096, 65_536, 300_000, CONN_WINDOW] {
            let (mut unacked, mut acks, mut in_flight) = (0u64, Acks::default(), 0u64);
            for _ in 0..20 {
                // The sender sends while it has room.
                while unacked < CONN_WINDOW {
                    unacked += chunk;
                    in_flight += chunk;
                }
                // The receiver writes all of it, acking as it goes.
                while in_flight > 0 {
                    let n = in_flight.min(chunk);
                    in_flight -= n;
                    if let Some(bytes) = acks.wrote(n) {
                        unacked -= bytes;
                    }
                }
                assert!(unacked < CONN_WINDOW, "chunk {chunk}: {unacked} unacked");
            }
        }
    }

    #[test]
    fn small_writes_are_acknowledged_together() {
        let mut acks = Acks::default();
        let mut written = 0;
        let acked = loop {
            written += 1000;
            if let Some(bytes) = acks.wrote(1000) {
                break bytes;
            }
        };
        assert_eq!(acked, written);
        assert!((ACK_EVERY..ACK_EVERY + 1000).contains(&acked));
        assert_eq!(acks.wrote(1000), None, "counting starts again");
    }

    #[test]
    fn flow_control_starts_with_1_2() {
        let v = |major, minor| Version { major, minor };
        assert!(!v(1, 1).has_flow_control());
        assert!(v(1, 2).has_flow_control());
        assert!(v(1, 9).has_flow_control());
        assert!(v(2, 0).has_flow_control());
        assert!(PROTOCOL_VERSION.has_flow_control());
    }

    #[test]
    fn warnings_start_with_1_3() {
        let v = |major, minor| Version { major, minor };
        assert!(!v(1, 2).has_warnings());
        assert!(v(1, 3).has_warnings());
        assert!(PROTOCOL_VERSION.has_warnings());
    }

    #[test]
    fn side_streams_start_with_1_4() {
        let v = |major, minor| Version { major, minor };
        assert!(!v(1, 3).has_side_streams());
        assert!(v(1, 4).has_side_streams());
        assert!(PROTOCOL_VERSION.has_side_streams());
    }

    #[test]
    fn same_major_is_compatible() {
        let a = Version { major: 1, minor: 0 };
        assert!(a.check_compatible(Version { major: 1, minor: 7 }).is_ok());
    }

    #[test]
    fn other_major_is_refused_naming_both() {
        let err = Version { major: 1, minor: 0 }
            .check_compatible(Version { major: 2, minor: 3 })
            .unwrap_err();
        assert!(err.contains("1.0") && err.contains("2.3"), "{err}");
    }
}
