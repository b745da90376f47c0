//! One direction of a TCP stream put back in order from captured segments:
//! the SYN's sequence number starts it, later segments land at their
//! offset from it (32-bit wrap-around included), bytes already delivered
//! (duplicates, retransmissions, overlaps) are dropped, segments past a
//! gap are held until the gap fills, and a FIN ends the stream once every
//! byte before it is delivered.

use std::collections::BTreeMap;

/// Bytes held past a gap before the stream is given up: a gap that large
/// means the capture lost a packet, which never comes back.
pub const MAX_HELD: usize = 32 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("more than {MAX_HELD} bytes wait behind a missing segment (the capture dropped a packet)")]
pub struct Gap;

#[derive(Debug)]
pub struct Stream {
    /// The sequence number of the next byte to deliver.
    next: u32,
    /// Bytes delivered so far (the offset of `next`).
    delivered: u64,
    /// Segments past a gap, by offset.
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    /// The offset the FIN stands at, once seen.
    fin_at: Option<u64>,
}

impl Stream {
    /// A stream whose SYN carried sequence number `isn`.
    pub fn new(isn: u32) -> Self {
        Stream {
            next: isn.wrapping_add(1),
            delivered: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            fin_at: None,
        }
    }

    /// Takes a segment; returns the bytes it puts in order (often none).
    pub fn push(&mut self, seq: u32, payload: &[u8], fin: bool) -> Result<Vec<u8>, Gap> {
        let diff = i64::from(seq.wrapping_sub(self.next) as i32);
        let start = self.delivered as i64 + diff;
        let end = start + payload.len() as i64;
        if fin && end >= 0 {
            self.fin_at = Some(end as u64);
        }
        let mut out = Vec::new();
        if end <= self.delivered as i64 {
            return Ok(out); // all of it was delivered already
        }
        if start > self.delivered as i64 {
            let kept = self.held.entry(start as u64).or_default();
            if payload.len() > kept.len() {
                self.held_bytes += payload.len() - kept.len();
                *kept = payload.to_vec();
            }
            return if self.held_bytes > MAX_HELD {
                Err(Gap)
            } else {
                Ok(out)
            };
        }
        let skip = (self.delivered as i64 - start) as usize;
        self.deliver(&payload[skip..], &mut out);
        while let Some(entry) = self.held.first_entry() {
            let at = *entry.key();
            if at > self.delivered {
                break;
            }
            let bytes = entry.remove();
            self.held_bytes -= bytes.len();
            let skip = (self.delivered - at) as usize;
            if let Some(tail) = bytes.get(skip..) {
                self.deliver(tail, &mut out);
            }
        }
        Ok(out)
    }

    fn deliver(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(bytes);
        self.delivered += bytes.len() as u64;
        self.next = self.next.wrapping_add(bytes.len() as u32);
    }

    /// The FIN was seen and every byte before it delivered.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|at| self.delivered >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_segments_come_out_as_they_go_in() {
        let mut s = Stream::new(100);
        assert_eq!(s.push(101, b"hello ", false).unwrap(), b"hello ");
        assert_eq!(s.push(107, b"world", false).unwrap(), b"world");
        assert!(!s.finished());
        assert_eq!(s.push(112, b"", true).unwrap(), b"");
        assert!(s.finished());
    }

    #[test]
    fn out_of_order_segments_wait_for_the_gap() {
        let mut s = Stream::new(0);
        assert_eq!(s.push(7, b"cc", true).unwrap(), b"");
        assert_eq!(s.push(4, b"bbb", false).unwrap(), b"");
        assert!(!s.finished());
        assert_eq!(s.push(1, b"aaa", false).unwrap(), b"aaabbbcc");
        assert!(s.finished());
    }

    #[test]
    fn duplicates_are_dropped() {
        let mut s = Stream::new(0);
        assert_eq!(s.push(1, b"abc", false).unwrap(), b"abc");
        assert_eq!(s.push(1, b"abc", false).unwrap(), b"");
        assert_eq!(s.push(6, b"f", false).unwrap(), b"");
        assert_eq!(s.push(6, b"f", false).unwrap(), b"");
        assert_eq!(s.push(4, b"de", false).unwrap(), b"def");
    }

    #[test]
    fn an_overlapping_retransmission_adds_only_its_new_bytes() {
        let mut s = Stream::new(0);
        assert_eq!(s.push(1, b"abcd", false).unwrap(), b"abcd");
        assert_eq!(s.push(3, b"cdefg", false).unwrap(), b"efg");
        // A held segment overlapped by what fills the gap.
        assert_eq!(s.push(10, b"jkl", false).unwrap(), b"");
        assert_eq!(s.push(8, b"hijk", false).unwrap(), b"hijkl");
        assert_eq!(s.push(1, b"abcdefghijklm", false).unwrap(), b"m");
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut s = Stream::new(u32::MAX - 2);
        assert_eq!(s.push(u32::MAX - 1, b"ab", false).unwrap(), b"ab");
        assert_eq!(s.push(0, b"cd", true).unwrap(), b"cd");
        assert!(s.finished());
    }

    #[test]
    fn a_fin_before_the_last_bytes_waits_for_them() {
        let mut s = Stream::new(0);
        assert_eq!(s.push(4, b"", true).unwrap(), b"");
        assert!(!s.finished());
        assert_eq!(s.push(1, b"xyz", false).unwrap(), b"xyz");
        assert!(s.finished());
    }

    #[test]
    fn a_gap_that_never_fills_gives_up() {
        let mut s = Stream::new(0);
        let chunk = vec![0u8; 1 << 20];
        let mut result = Ok(Vec::new());
        for i in 0..=(MAX_HELD >> 20) as u32 {
            result = s.push(2 + i * (1 << 20), &chunk, false);
        }
        assert_eq!(result, Err(Gap));
    }
}
