//! A minimal msgpack reader: enough to walk Fluent Bit record buffers without decoding them.
//!
//! Records are copied through byte for byte; only the body map is opened, to find the message
//! and to append fields. Every width a writer may use (fixmap/map16/map32, str8 for a short
//! string, …) is accepted: Fluent Bit's inputs write non-minimal headers. Writing uses `rmp`.

use rmp::Marker;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends inside a value.
    Truncated { at: usize },
    /// A byte that is not a msgpack marker (0xc1), or nesting deeper than we follow.
    Invalid { at: usize, what: &'static str },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Truncated { at } => write!(f, "msgpack buffer ends inside a value at byte {at}"),
            Error::Invalid { at, what } => write!(f, "invalid msgpack at byte {at}: {what}"),
        }
    }
}

const MAX_DEPTH: u32 = 256;

/// A cursor over a msgpack buffer.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Where the value at `path` (keys joined by `.`) is, inside the map that starts here: for
    /// `log.level`-style keys into nested records. The cursor does not move.
    pub fn find_path(&self, path: &str) -> Result<Option<usize>, Error> {
        let mut r = Reader { buf: self.buf, pos: self.pos };
        for seg in path.split('.') {
            let Some(n) = r.map_len()? else { return Ok(None) };
            let mut found = false;
            for _ in 0..n {
                let k = r.str_bytes()?;
                if k == Some(seg.as_bytes()) {
                    found = true;
                    break;
                }
                if k.is_none() {
                    r.skip()?;
                }
                r.skip()?;
            }
            if !found {
                return Ok(None);
            }
        }
        Ok(Some(r.pos))
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(Error::Truncated { at: self.pos })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<usize, Error> {
        let b = self.take(n)?;
        Ok(b.iter().fold(0usize, |acc, &x| (acc << 8) | x as usize))
    }

    pub fn marker(&mut self) -> Result<Marker, Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated { at: self.pos })?;
        self.pos += 1;
        Ok(Marker::from_u8(b))
    }

    pub fn peek_marker(&self) -> Result<Marker, Error> {
        self.buf.get(self.pos).map(|&b| Marker::from_u8(b)).ok_or(Error::Truncated { at: self.pos })
    }

    /// Reads an array header; `None` (cursor unchanged) if the next value is not an array.
    pub fn array_len(&mut self) -> Result<Option<usize>, Error> {
        let start = self.pos;
        Ok(match self.marker()? {
            Marker::FixArray(n) => Some(n as usize),
            Marker::Array16 => Some(self.be(2)?),
            Marker::Array32 => Some(self.be(4)?),
            _ => {
                self.pos = start;
                None
            }
        })
    }

    /// Reads a map header; `None` (cursor unchanged) if the next value is not a map.
    pub fn map_len(&mut self) -> Result<Option<usize>, Error> {
        let start = self.pos;
        Ok(match self.marker()? {
            Marker::FixMap(n) => Some(n as usize),
            Marker::Map16 => Some(self.be(2)?),
            Marker::Map32 => Some(self.be(4)?),
            _ => {
                self.pos = start;
                None
            }
        })
    }

    /// Reads a string's bytes; `None` (cursor unchanged) if the next value is not a string.
    pub fn str_bytes(&mut self) -> Result<Option<&'a [u8]>, Error> {
        let start = self.pos;
        let len = match self.marker()? {
            Marker::FixStr(n) => n as usize,
            Marker::Str8 => self.be(1)?,
            Marker::Str16 => self.be(2)?,
            Marker::Str32 => self.be(4)?,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        self.take(len).map(Some)
    }

    /// Reads a non-negative integer; `None` (cursor unchanged) if the next value is not one.
    pub fn uint(&mut self) -> Result<Option<u64>, Error> {
        let start = self.pos;
        let v = match self.marker()? {
            Marker::FixPos(n) => n as u64,
            Marker::U8 | Marker::I8 => self.be(1)? as u64,
            Marker::U16 | Marker::I16 => self.be(2)? as u64,
            Marker::U32 | Marker::I32 => self.be(4)? as u64,
            Marker::U64 | Marker::I64 => self.be(8)? as u64,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        // a signed value with its top bit set is negative: not ours
        let negative = matches!(Marker::from_u8(self.buf[start]), Marker::I8 | Marker::I16 | Marker::I32 | Marker::I64)
            && self.buf[start + 1] & 0x80 != 0;
        Ok((!negative).then_some(v))
    }

    /// Reads an ext value (type, data); `None` (cursor unchanged) if the next value is not one.
    pub fn ext(&mut self) -> Result<Option<(i8, &'a [u8])>, Error> {
        // `fixext 1..16` (every record's EventTime is a `fixext 8`): marker, type and data read
        // with one bounds check; anything else, or too short, by the general path below
        if let Some(&[m @ 0xd4..=0xd8, ty, ..]) = self.buf.get(self.pos..self.pos + 2) {
            let len = 1usize << (m - 0xd4);
            if let Some(d) = self.buf.get(self.pos + 2..self.pos + 2 + len) {
                self.pos += 2 + len;
                return Ok(Some((ty as i8, d)));
            }
        }
        let start = self.pos;
        let len = match self.marker()? {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => self.be(1)?,
            Marker::Ext16 => self.be(2)?,
            Marker::Ext32 => self.be(4)?,
            _ => {
                self.pos = start;
                return Ok(None);
            }
        };
        let ty = self.take(1)?[0] as i8;
        self.take(len).map(|d| Some((ty, d)))
    }

    /// Skips one value, however nested.
    pub fn skip(&mut self) -> Result<(), Error> {
        self.skip_depth(0)
    }

    fn skip_depth(&mut self, depth: u32) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Invalid { at: self.pos, what: "nesting deeper than 256 levels" });
        }
        let at = self.pos;
        let (bytes, items) = match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => (0, 0),
            Marker::U8 | Marker::I8 => (1, 0),
            Marker::U16 | Marker::I16 => (2, 0),
            Marker::U32 | Marker::I32 | Marker::F32 => (4, 0),
            Marker::U64 | Marker::I64 | Marker::F64 => (8, 0),
            Marker::FixStr(n) => (n as usize, 0),
            Marker::Str8 | Marker::Bin8 => (self.be(1)?, 0),
            Marker::Str16 | Marker::Bin16 => (self.be(2)?, 0),
            Marker::Str32 | Marker::Bin32 => (self.be(4)?, 0),
            Marker::FixArray(n) => (0, n as usize),
            Marker::Array16 => (0, self.be(2)?),
            Marker::Array32 => (0, self.be(4)?),
            Marker::FixMap(n) => (0, 2 * n as usize),
            Marker::Map16 => (0, 2 * self.be(2)?),
            Marker::Map32 => (0, 2 * self.be(4)?),
            Marker::FixExt1 => (2, 0),
            Marker::FixExt2 => (3, 0),
            Marker::FixExt4 => (5, 0),
            Marker::FixExt8 => (9, 0),
            Marker::FixExt16 => (17, 0),
            Marker::Ext8 => (self.be(1)? + 1, 0),
            Marker::Ext16 => (self.be(2)? + 1, 0),
            Marker::Ext32 => (self.be(4)? + 1, 0),
            Marker::Reserved => return Err(Error::Invalid { at, what: "reserved marker 0xc1" }),
        };
        self.take(bytes)?;
        for _ in 0..items {
            // every item takes at least one byte: a bogus huge count fails fast
            if self.at_end() {
                return Err(Error::Truncated { at: self.pos });
            }
            self.skip_depth(depth + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_every_kind_of_value() {
        let mut buf = Vec::new();
        rmp::encode::write_map_len(&mut buf, 2).unwrap();
        rmp::encode::write_str(&mut buf, "a").unwrap();
        rmp::encode::write_array_len(&mut buf, 3).unwrap();
        rmp::encode::write_f64(&mut buf, 2.5).unwrap();
        rmp::encode::write_nil(&mut buf).unwrap();
        rmp::encode::write_bin(&mut buf, &[1, 2, 3]).unwrap();
        rmp::encode::write_str(&mut buf, "b").unwrap();
        rmp::encode::write_ext_meta(&mut buf, 8, 0).unwrap();
        buf.extend_from_slice(&[0; 8]);
        let end = buf.len();
        buf.push(0xc3);
        let mut r = Reader::new(&buf);
        r.skip().unwrap();
        assert_eq!(r.pos, end);
        r.skip().unwrap();
        assert!(r.at_end());
    }

    #[test]
    fn reads_non_minimal_headers() {
        let buf = [0xdf, 0, 0, 0, 1, 0xd9, 3, b'l', b'o', b'g', 0xda, 0, 2, b'h', b'i'];
        let mut r = Reader::new(&buf);
        assert_eq!(r.map_len().unwrap(), Some(1));
        assert_eq!(r.str_bytes().unwrap(), Some(&b"log"[..]));
        assert_eq!(r.str_bytes().unwrap(), Some(&b"hi"[..]));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        for bad in [&[0xc1][..], &[0x92, 0x01], &[0xdd, 0xff, 0xff, 0xff, 0xff], &[0xd9, 10, b'a'], &[]] {
            assert!(Reader::new(bad).skip().is_err(), "{bad:?}");
        }
        let deep = vec![0x91u8; 10_000];
        assert!(matches!(Reader::new(&deep).skip(), Err(Error::Invalid { .. }) | Err(Error::Truncated { .. })));
    }
}
