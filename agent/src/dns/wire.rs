//! The DNS wire format, as much as a stub resolver needs: encode one
//! question, parse a response's header and answer section (A, AAAA, CNAME;
//! other records are skipped), with name compression.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_NXDOMAIN: u8 = 3;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("invalid name {0:?}")]
    BadName(String),
    #[error("truncated or malformed DNS message")]
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lowercase, without the trailing dot.
    pub name: String,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub is_response: bool,
    pub truncated: bool,
    pub rcode: u8,
    pub answers: Vec<Record>,
}

/// A standard query (RD set) for `name` of type `qtype`.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // 1 question
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// Checks a name the way the encoder will: labels of 1 to 63 bytes, at most
/// 253 characters, an optional trailing dot.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), WireError> {
    let bad = || WireError::BadName(name.to_string());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad());
    }
    for label in trimmed.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad());
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

pub fn parse(buf: &[u8]) -> Result<Message, WireError> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qd = r.u16()?;
    let an = r.u16()?;
    r.u16()?; // authority
    r.u16()?; // additional
    for _ in 0..qd {
        r.name()?;
        r.u16()?;
        r.u16()?;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let name = r.name()?;
        let rtype = r.u16()?;
        let class = r.u16()?;
        r.u32()?; // ttl
        let len = r.u16()? as usize;
        let start = r.pos;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= buf.len())
            .ok_or(WireError::Malformed)?;
        let data = match (rtype, class, len) {
            (TYPE_A, CLASS_IN, 4) => RData::A(Ipv4Addr::new(
                buf[start],
                buf[start + 1],
                buf[start + 2],
                buf[start + 3],
            )),
            (TYPE_AAAA, CLASS_IN, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&buf[start..end]);
                RData::Aaaa(Ipv6Addr::from(o))
            }
            (TYPE_CNAME, CLASS_IN, _) => RData::Cname(r.name()?),
            _ => RData::Other,
        };
        r.pos = end;
        answers.push(Record { name, data });
    }
    Ok(Message {
        id,
        is_response: flags & 0x8000 != 0,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0x000f) as u8,
        answers,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u16(&mut self) -> Result<u16, WireError> {
        let b = self
            .buf
            .get(self.pos..self.pos + 2)
            .ok_or(WireError::Malformed)?;
        self.pos += 2;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        Ok((u32::from(self.u16()?) << 16) | u32::from(self.u16()?))
    }

    /// Reads a possibly compressed name; pointers may only go backwards,
    /// which also bounds the number of jumps.
    fn name(&mut self) -> Result<String, WireError> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.pos;
        let mut resume = None;
        let mut limit = pos;
        loop {
            let len = *self.buf.get(pos).ok_or(WireError::Malformed)? as usize;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(WireError::Malformed)?;
                    labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                    pos += 1 + len;
                }
                0xc0 => {
                    let lo = *self.buf.get(pos + 1).ok_or(WireError::Malformed)? as usize;
                    let target = ((len & 0x3f) << 8) | lo;
                    if target >= limit {
                        return Err(WireError::Malformed);
                    }
                    resume.get_or_insert(pos + 2);
                    limit = target;
                    pos = target;
                }
                _ => return Err(WireError::Malformed),
            }
            if labels.len() > 127 {
                return Err(WireError::Malformed);
            }
        }
        self.pos = resume.unwrap_or(pos);
        Ok(labels.join("."))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a response to `query` with the given records (for tests of
    /// the resolver, too): `(owner, rdata)`, owners written uncompressed
    /// except the first, which points at the question.
    pub(crate) fn response(
        query: &[u8],
        rcode: u8,
        truncated: bool,
        records: &[(&str, RData)],
    ) -> Vec<u8> {
        let qend = 12 + query[12..].iter().position(|&b| b == 0).unwrap() + 1 + 4;
        let mut out = query[..qend].to_vec();
        let flags: u16 = 0x8180 | u16::from(rcode) | if truncated { 0x0200 } else { 0 };
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        out[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (i, (owner, data)) in records.iter().enumerate() {
            if i == 0 {
                out.extend_from_slice(&[0xc0, 12]);
            } else {
                encode_name(owner, &mut out).unwrap();
            }
            let (t, rd) = match data {
                RData::A(a) => (TYPE_A, a.octets().to_vec()),
                RData::Aaaa(a) => (TYPE_AAAA, a.octets().to_vec()),
                RData::Cname(c) => {
                    let mut v = Vec::new();
                    encode_name(c, &mut v).unwrap();
                    (TYPE_CNAME, v)
                }
                RData::Other => (16, b"\x03txt".to_vec()),
            };
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&60u32.to_be_bytes());
            out.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            out.extend_from_slice(&rd);
        }
        out
    }

    #[test]
    fn query_encoding() {
        let q = encode_query(0x1234, "a.Bc.", TYPE_AAAA).unwrap();
        assert_eq!(
            q,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x02Bc\x00\x00\x1c\x00\x01"
        );
        for bad in ["", ".", "a..b", &"x".repeat(64), &"a.".repeat(130)] {
            assert!(encode_query(1, bad, TYPE_A).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_a_response_with_compression() {
        let q = encode_query(7, "www.example.com", TYPE_A).unwrap();
        let r = response(
            &q,
            0,
            false,
            &[
                ("www.example.com", RData::Cname("web.example.com".into())),
                ("web.example.com", RData::A(Ipv4Addr::new(10, 0, 0, 1))),
                ("web.example.com", RData::Other),
            ],
        );
        let m = parse(&r).unwrap();
        assert_eq!(
            (m.id, m.is_response, m.truncated, m.rcode),
            (7, true, false, 0)
        );
        assert_eq!(
            m.answers[0],
            Record {
                name: "www.example.com".into(),
                data: RData::Cname("web.example.com".into())
            }
        );
        assert_eq!(m.answers[1].data, RData::A(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(m.answers[2].data, RData::Other);
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        let q = encode_query(7, "a.b", TYPE_A).unwrap();
        let r = response(&q, 0, false, &[("a.b", RData::A(Ipv4Addr::LOCALHOST))]);
        for cut in 0..r.len() {
            assert!(parse(&r[..cut]).is_err(), "cut {cut}");
        }
        // A pointer loop.
        let mut looped = r.clone();
        let at = q.len();
        looped[at] = 0xc0;
        looped[at + 1] = at as u8;
        assert_eq!(parse(&looped), Err(WireError::Malformed));
        let mut x: u32 = 1;
        for _ in 0..2000 {
            let mut g = r.clone();
            for b in g.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if x & 7 == 0 {
                    *b = x as u8;
                }
            }
            let _ = parse(&g);
        }
    }
}
