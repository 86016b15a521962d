//! Reading and writing the compact (flexible-version) primitives by hand, for
//! the few layouts `kafka-protocol` 0.18 does not know (see `newer`). Every
//! length is checked against the bytes left before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub type Result<T> = std::result::Result<T, String>;

pub struct Reader<'a> {
    buf: &'a mut Bytes,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a mut Bytes) -> Reader<'a> {
        Reader { buf }
    }

    fn need(&self, n: usize, what: &str) -> Result<()> {
        if self.buf.remaining() < n {
            return Err(format!(
                "{what}: {n} bytes needed, {} left",
                self.buf.remaining()
            ));
        }
        Ok(())
    }

    pub fn i8(&mut self) -> Result<i8> {
        self.need(1, "int8")?;
        Ok(self.buf.get_i8())
    }
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.i8()? != 0)
    }
    pub fn i16(&mut self) -> Result<i16> {
        self.need(2, "int16")?;
        Ok(self.buf.get_i16())
    }
    pub fn i32(&mut self) -> Result<i32> {
        self.need(4, "int32")?;
        Ok(self.buf.get_i32())
    }
    pub fn i64(&mut self) -> Result<i64> {
        self.need(8, "int64")?;
        Ok(self.buf.get_i64())
    }
    pub fn uuid(&mut self) -> Result<[u8; 16]> {
        self.need(16, "uuid")?;
        let mut id = [0u8; 16];
        self.buf.copy_to_slice(&mut id);
        Ok(id)
    }

    fn uvarint(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            self.need(1, "varint")?;
            let b = self.buf.get_u8();
            value |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint longer than five bytes".into())
    }

    /// A compact length: None for null (0 on the wire).
    fn length(&mut self) -> Result<Option<usize>> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }

    pub fn nullable_string(&mut self) -> Result<Option<String>> {
        let Some(n) = self.length()? else {
            return Ok(None);
        };
        if n > i16::MAX as usize {
            return Err(format!("a string of {n} bytes: longer than {}", i16::MAX));
        }
        self.need(n, "string")?;
        let raw = self.buf.split_to(n);
        String::from_utf8(raw.to_vec())
            .map(Some)
            .map_err(|e| format!("string: {e}"))
    }

    pub fn string(&mut self) -> Result<String> {
        self.nullable_string()?
            .ok_or_else(|| "null where a string is required".to_string())
    }

    /// A compact array's element count (None for null), no larger than the
    /// bytes left: every element takes at least one.
    pub fn nullable_array(&mut self) -> Result<Option<usize>> {
        let n = self.length()?;
        if let Some(n) = n {
            if n > self.buf.remaining() {
                return Err(format!(
                    "array claims {n} elements with {} bytes left",
                    self.buf.remaining()
                ));
            }
        }
        Ok(n)
    }

    pub fn array(&mut self) -> Result<usize> {
        self.nullable_array()?
            .ok_or_else(|| "null where an array is required".to_string())
    }

    /// Skips a tagged-field section: every tag these layouts define is unknown
    /// to Cohort, and unknown tags are skipped, as the protocol requires.
    pub fn tags(&mut self) -> Result<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.need(size, "tagged field")?;
            self.buf.advance(size);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        !self.buf.has_remaining()
    }
}

pub struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    pub fn new(buf: &'a mut BytesMut) -> Writer<'a> {
        Writer { buf }
    }
    pub fn bool(&mut self, x: bool) {
        self.buf.put_u8(x as u8);
    }
    pub fn i16(&mut self, x: i16) {
        self.buf.put_i16(x);
    }
    pub fn i32(&mut self, x: i32) {
        self.buf.put_i32(x);
    }
    pub fn i64(&mut self, x: i64) {
        self.buf.put_i64(x);
    }
    pub fn uuid(&mut self, id: &[u8; 16]) {
        self.buf.put_slice(id);
    }
    fn uvarint(&mut self, mut x: u32) {
        while x >= 0x80 {
            self.buf.put_u8((x as u8) | 0x80);
            x >>= 7;
        }
        self.buf.put_u8(x as u8);
    }
    pub fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => {
                self.uvarint(s.len() as u32 + 1);
                self.buf.put_slice(s.as_bytes());
            }
        }
    }
    pub fn string(&mut self, s: &str) {
        self.nullable_string(Some(s));
    }
    /// A compact array's count; None writes null.
    pub fn array(&mut self, n: Option<usize>) {
        self.uvarint(n.map_or(0, |n| n as u32 + 1));
    }
    /// An empty tagged-field section (or, in the sweep, one unknown tag).
    pub fn tags(&mut self, unknown: Option<(u32, &[u8])>) {
        match unknown {
            None => self.uvarint(0),
            Some((tag, data)) => {
                self.uvarint(1);
                self.uvarint(tag);
                self.uvarint(data.len() as u32);
                self.buf.put_slice(data);
            }
        }
    }
}

/// Checked reading of a whole structure from bytes.
pub fn read<T>(mut data: Bytes, f: impl FnOnce(&mut Reader) -> Result<T>) -> Result<T> {
    let mut r = Reader::new(&mut data);
    let out = f(&mut r)?;
    if !r.is_empty() {
        return Err("bytes left after the message".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut buf = BytesMut::new();
        let mut w = Writer::new(&mut buf);
        w.string("é-topic");
        w.nullable_string(None);
        w.array(Some(300));
        w.array(None);
        w.i64(-7);
        w.uuid(&[9; 16]);
        w.tags(Some((9999, b"x")));
        let out = read(buf.freeze(), |r| {
            let s = r.string()?;
            let n = r.nullable_string()?;
            // 300 elements cannot fit in what is left: refused before allocating.
            assert!(r.array().is_err());
            Ok((s, n))
        });
        assert!(out.is_err(), "the refused count leaves bytes unread");
        let mut buf = BytesMut::new();
        let mut w = Writer::new(&mut buf);
        w.string("t");
        w.array(None);
        w.i64(-7);
        w.uuid(&[9; 16]);
        w.tags(Some((9999, b"x")));
        let (s, a, x, id) = read(buf.freeze(), |r| {
            let v = (r.string()?, r.nullable_array()?, r.i64()?, r.uuid()?);
            r.tags()?;
            Ok(v)
        })
        .unwrap();
        assert_eq!((s.as_str(), a, x, id), ("t", None, -7, [9; 16]));
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        for n in 0..6 {
            let data = Bytes::from(vec![0xffu8; n]);
            let _ = read(data, |r| {
                r.string()?;
                r.i32()
            });
        }
    }
}
