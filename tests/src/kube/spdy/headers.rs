//! SPDY/3 header blocks: a count and length-prefixed name/value pairs (all
//! 32-bit big-endian), compressed with zlib. Each direction of a session is
//! one zlib stream that starts with the preset dictionary the SPDY/3 spec
//! defines and is flushed (`Z_SYNC_FLUSH`) after every block, so the two
//! ends must compress and decompress blocks in the order they are sent.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use super::SpdyError;

/// A header block: names (lower case on the wire) and values, in order.
pub type Headers = Vec<(String, String)>;

/// A decompressed block larger than this is refused (SPDY puts no limit on
/// it; the test server does).
const MAX_BLOCK: usize = 256 * 1024;

/// The words the SPDY/3 dictionary lists with a 32-bit length before each.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail: status codes, phrases, dates and common values,
/// without length prefixes.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib preset dictionary.
pub fn dictionary() -> Vec<u8> {
    let mut dict = Vec::with_capacity(1500);
    for word in DICTIONARY_WORDS {
        dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dict.extend_from_slice(word.as_bytes());
    }
    dict.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    dict
}

/// The sending side: one zlib stream for every block this end writes.
pub struct HeaderEncoder {
    zlib: Compress,
    started: bool,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        HeaderEncoder {
            zlib: Compress::new(Compression::default(), true),
            started: false,
        }
    }
}

impl HeaderEncoder {
    /// The compressed block for `headers` (names lower-cased).
    pub fn encode(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for part in [name.to_ascii_lowercase().as_bytes(), value.as_bytes()] {
                plain.extend_from_slice(&(part.len() as u32).to_be_bytes());
                plain.extend_from_slice(part);
            }
        }
        if !self.started {
            self.zlib
                .set_dictionary(&dictionary())
                .map_err(|e| SpdyError::Zlib(e.to_string()))?;
            self.started = true;
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut consumed = 0;
        loop {
            let before = self.zlib.total_in();
            self.zlib
                .compress_vec(&plain[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Zlib(e.to_string()))?;
            consumed += (self.zlib.total_in() - before) as usize;
            // A full output buffer may hold back the rest of the flush.
            if consumed == plain.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(1024);
        }
    }
}

/// The receiving side: one zlib stream for every block the peer writes.
pub struct HeaderDecoder {
    zlib: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        HeaderDecoder {
            zlib: Decompress::new(true),
        }
    }
}

impl HeaderDecoder {
    /// The headers of one compressed block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let plain = self.inflate(block)?;
        parse_block(&plain)
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 256);
        let mut consumed = 0;
        loop {
            let (in_before, out_before) = (self.zlib.total_in(), self.zlib.total_out());
            let result =
                self.zlib
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.zlib.total_in() - in_before) as usize;
            if let Err(e) = result {
                if e.needs_dictionary().is_none() {
                    return Err(SpdyError::Zlib(e.to_string()));
                }
                self.zlib
                    .set_dictionary(&dictionary())
                    .map_err(|e| SpdyError::Zlib(format!("the peer's dictionary: {e}")))?;
                continue;
            }
            if consumed == block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.len() > MAX_BLOCK {
                return Err(SpdyError::Protocol(format!(
                    "a header block inflates to more than {MAX_BLOCK} bytes"
                )));
            }
            let stalled = self.zlib.total_in() == in_before && self.zlib.total_out() == out_before;
            if stalled && out.len() < out.capacity() {
                return Err(SpdyError::Zlib("the header block is truncated".into()));
            }
            out.reserve(4096);
        }
    }
}

/// Reads the name/value pairs of a decompressed block.
fn parse_block(plain: &[u8]) -> Result<Headers, SpdyError> {
    let mut rest = plain;
    let count = take_u32(&mut rest, "count")?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(take_string(&mut rest, "name")?).into_owned();
        let value = String::from_utf8_lossy(take_string(&mut rest, "value")?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

fn take_u32(rest: &mut &[u8], what: &str) -> Result<u32, SpdyError> {
    let (word, tail) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| SpdyError::Protocol(format!("header block truncated in a {what}")))?;
    *rest = tail;
    Ok(u32::from_be_bytes(*word))
}

fn take_string<'a>(rest: &mut &'a [u8], what: &str) -> Result<&'a [u8], SpdyError> {
    let len = take_u32(rest, what)? as usize;
    if rest.len() < len {
        return Err(SpdyError::Protocol(format!(
            "header block truncated in a {what}"
        )));
    }
    let (value, tail) = rest.split_at(len);
    *rest = tail;
    Ok(value)
}

/// The value of header `name` (compared without regard to case).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Headers from borrowed pairs.
pub fn from_pairs(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use from_pairs as h;

    #[test]
    fn blocks_survive_a_shared_stream_in_order() {
        let (mut enc, mut dec) = (HeaderEncoder::default(), HeaderDecoder::default());
        let first = h(&[
            ("streamType", "error"),
            ("port", "8080"),
            ("requestID", "0"),
        ]);
        let second = h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]);
        let a = enc.encode(&first).expect("encode");
        let b = enc.encode(&second).expect("encode");
        assert_eq!(
            dec.decode(&a).expect("decode"),
            h(&[
                ("streamtype", "error"),
                ("port", "8080"),
                ("requestid", "0")
            ])
        );
        assert_eq!(dec.decode(&b).expect("decode"), second);
        // The second block leans on the first: it is shorter.
        assert!(b.len() < a.len(), "{} vs {}", b.len(), a.len());
        assert_eq!(header(&second, "StreamType"), Some("data"));
    }

    #[test]
    fn the_stream_names_the_spdy3_dictionary() {
        let block = HeaderEncoder::default()
            .encode(&h(&[("a", "b")]))
            .expect("encode");
        // zlib header with FDICT set, then the dictionary's Adler-32.
        assert_eq!(block[1] & 0x20, 0x20, "FDICT flag");
        let mut adler = flate2::Compress::new(Compression::default(), true);
        let expected = adler.set_dictionary(&dictionary()).expect("dictionary");
        assert_eq!(
            u32::from_be_bytes([block[2], block[3], block[4], block[5]]),
            expected
        );
    }

    #[test]
    fn a_block_from_another_dictionary_or_cut_short_is_an_error() {
        let mut other = Compress::new(Compression::default(), true);
        other
            .set_dictionary(b"not the spdy dictionary")
            .expect("dict");
        let mut out = Vec::with_capacity(256);
        other
            .compress_vec(&[0, 0, 0, 0], &mut out, FlushCompress::Sync)
            .expect("compress");
        assert!(matches!(
            HeaderDecoder::default().decode(&out),
            Err(SpdyError::Zlib(_))
        ));

        let block = HeaderEncoder::default()
            .encode(&h(&[("port", "80")]))
            .expect("encode");
        let mut dec = HeaderDecoder::default();
        assert!(dec.decode(&block[..block.len() / 2]).is_err());
        assert!(parse_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'x']).is_err());
    }
}
