//! The captured connections: which TCP streams are being reassembled,
//! keyed by (client, server). A client's SYN to a subscribed port opens
//! one; its bytes come out in order; its FIN (once every byte before it
//! is in), an RST from either side, or a lost packet ends it. Connections
//! that started before the subscription (no SYN seen) are not mirrored.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::packet::Segment;
use super::reassembly::Stream;

/// A connection: (client, server).
pub type Key = (SocketAddr, SocketAddr);

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Opened(Key),
    Data(Key, Vec<u8>),
    Closed(Key),
}

#[derive(Default)]
pub struct Flows {
    streams: HashMap<Key, (u32, Stream)>,
}

impl Flows {
    /// Feeds one segment; `subscribed` says whether a server port is
    /// mirrored (asked for SYNs only).
    pub fn segment(
        &mut self,
        seg: &Segment<'_>,
        subscribed: impl Fn(u16) -> bool,
        events: &mut Vec<Event>,
    ) {
        let key = (seg.src, seg.dst);
        if seg.rst {
            for key in [key, (seg.dst, seg.src)] {
                if self.streams.remove(&key).is_some() {
                    events.push(Event::Closed(key));
                }
            }
            return;
        }
        if seg.syn && !seg.ack {
            match self.streams.get(&key) {
                Some((isn, _)) if *isn == seg.seq => return, // retransmitted SYN
                Some(_) => {
                    self.streams.remove(&key);
                    events.push(Event::Closed(key));
                }
                None => {}
            }
            if subscribed(seg.dst.port()) {
                self.streams.insert(key, (seg.seq, Stream::new(seg.seq)));
                events.push(Event::Opened(key));
            }
            return;
        }
        let Some((_, stream)) = self.streams.get_mut(&key) else {
            return;
        };
        match stream.push(seg.seq, seg.payload, seg.fin) {
            Ok(bytes) => {
                if !bytes.is_empty() {
                    events.push(Event::Data(key, bytes));
                }
                if stream.finished() {
                    self.streams.remove(&key);
                    events.push(Event::Closed(key));
                }
            }
            Err(gap) => {
                tracing::warn!(client = %key.0, server = %key.1, "mirror gives up a connection: {gap}");
                self.streams.remove(&key);
                events.push(Event::Closed(key));
            }
        }
    }

    /// Forgets every connection to `port` (it is no longer mirrored).
    pub fn forget_port(&mut self, port: u16, events: &mut Vec<Event>) {
        let gone: Vec<Key> = self
            .streams
            .keys()
            .filter(|k| k.1.port() == port)
            .copied()
            .collect();
        for key in gone {
            self.streams.remove(&key);
            events.push(Event::Closed(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::packet::{parse, tests::packet};

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;

    fn feed(flows: &mut Flows, p: Vec<u8>) -> Vec<Event> {
        let mut events = Vec::new();
        flows.segment(&parse(&p).unwrap(), |port| port == 8080, &mut events);
        events
    }

    fn key(client: u16, server: u16) -> Key {
        (
            SocketAddr::from(([10, 0, 0, 1], client)),
            SocketAddr::from(([127, 0, 0, 1], server)),
        )
    }

    #[test]
    fn syn_data_fin() {
        let mut f = Flows::default();
        let k = key(5000, 8080);
        assert_eq!(
            feed(&mut f, packet(5000, 8080, 9, SYN, b"", 5, 0)),
            [Event::Opened(k)]
        );
        assert_eq!(feed(&mut f, packet(5000, 8080, 9, SYN, b"", 5, 0)), []);
        assert_eq!(
            feed(&mut f, packet(5000, 8080, 10, ACK, b"GET", 0, 0)),
            [Event::Data(k, b"GET".to_vec())]
        );
        assert_eq!(
            feed(&mut f, packet(5000, 8080, 13, ACK | FIN, b" /", 0, 0)),
            [Event::Data(k, b" /".to_vec()), Event::Closed(k)]
        );
        // After the end, a retransmission is no connection.
        assert_eq!(feed(&mut f, packet(5000, 8080, 13, ACK, b" /", 0, 0)), []);
    }

    #[test]
    fn rst_from_either_side_ends_it() {
        let mut f = Flows::default();
        let k = key(5000, 8080);
        feed(&mut f, packet(5000, 8080, 0, SYN, b"", 0, 0));
        assert_eq!(
            feed(&mut f, packet(5000, 8080, 1, RST, b"", 0, 0)),
            [Event::Closed(k)]
        );
        feed(&mut f, packet(5000, 8080, 0, SYN, b"", 0, 0));
        // The server's RST travels (server → client): the packet helper
        // writes 10.0.0.1 as the source, so build the reversed key.
        let mut from_server = packet(8080, 5000, 77, RST | ACK, b"", 0, 0);
        from_server[12..16].copy_from_slice(&[127, 0, 0, 1]);
        from_server[16..20].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(feed(&mut f, from_server), [Event::Closed(k)]);
    }

    #[test]
    fn unsubscribed_ports_and_connections_without_syn_are_ignored() {
        let mut f = Flows::default();
        assert_eq!(feed(&mut f, packet(5000, 9999, 0, SYN, b"", 0, 0)), []);
        assert_eq!(
            feed(&mut f, packet(5001, 8080, 5, ACK, b"mid-stream", 0, 0)),
            []
        );
        let mut events = Vec::new();
        feed(&mut f, packet(5002, 8080, 0, SYN, b"", 0, 0));
        f.forget_port(8080, &mut events);
        assert_eq!(events, [Event::Closed(key(5002, 8080))]);
    }
}
