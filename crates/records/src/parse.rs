//! Reading the records of a v2 batch, with the checks and messages of Kafka's
//! `DefaultRecord.readFrom` and `DefaultRecordBatch`'s iterators.
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint | key | valueLength varint | value
//! headerCount varint | (headerKeyLength varint | key | headerValueLength varint | value)*
//! ```
//! A negative key or value length is a null key or value. Records are read
//! from a `Source`: the batch's own bytes, or a decompressing stream, so a
//! compressed batch is checked without ever holding all of it decompressed.

use std::ops::ControlFlow;

/// Why the records of a batch could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The records do not decode (Kafka's InvalidRecordException: INVALID_RECORD).
    Invalid(String),
    /// The compressed payload does not decompress (Kafka fails the produce
    /// with UNKNOWN_SERVER_ERROR).
    Codec(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Invalid(m) | RecordError::Codec(m) => f.write_str(m),
        }
    }
}

/// Where a source ran out or failed.
#[derive(Debug)]
pub enum SourceError {
    Eof,
    Codec(String),
}

/// Bytes consumed one field at a time.
pub trait Source {
    fn byte(&mut self) -> Result<u8, SourceError>;
    /// Consumes `n` bytes, handing them to `keep` when it is given.
    fn take(&mut self, n: usize, keep: Option<&mut Vec<u8>>) -> Result<(), SourceError>;
    /// True when nothing is left.
    fn at_end(&mut self) -> Result<bool, SourceError>;
    /// Bytes left, when the source knows (an uncompressed payload does).
    fn remaining(&self) -> Option<usize>;
}

/// An uncompressed payload.
pub struct SliceSource<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, SourceError> {
        let b = *self.bytes.get(self.at).ok_or(SourceError::Eof)?;
        self.at += 1;
        Ok(b)
    }
    #[inline]
    fn take(&mut self, n: usize, keep: Option<&mut Vec<u8>>) -> Result<(), SourceError> {
        if self.bytes.len() - self.at < n {
            return Err(SourceError::Eof);
        }
        if let Some(k) = keep {
            k.extend_from_slice(&self.bytes[self.at..self.at + n]);
        }
        self.at += n;
        Ok(())
    }
    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.at >= self.bytes.len())
    }
    fn remaining(&self) -> Option<usize> {
        Some(self.bytes.len() - self.at)
    }
}

/// A decompressing stream.
pub struct ReadSource<R: std::io::BufRead> {
    pub inner: R,
}

/// Any failure of the decompressor, a stream cut short included, is a codec
/// error (Kafka: "Failed to decompress record stream", UNKNOWN_SERVER_ERROR);
/// only a clean end of the stream before all records were read is an invalid
/// batch.
fn codec_error(e: std::io::Error) -> SourceError {
    SourceError::Codec(e.to_string())
}

impl<R: std::io::BufRead> Source for ReadSource<R> {
    fn byte(&mut self) -> Result<u8, SourceError> {
        let buf = self.inner.fill_buf().map_err(codec_error)?;
        let b = *buf.first().ok_or(SourceError::Eof)?;
        self.inner.consume(1);
        Ok(b)
    }
    fn take(&mut self, mut n: usize, mut keep: Option<&mut Vec<u8>>) -> Result<(), SourceError> {
        while n > 0 {
            let buf = self.inner.fill_buf().map_err(codec_error)?;
            if buf.is_empty() {
                return Err(SourceError::Eof);
            }
            let step = n.min(buf.len());
            if let Some(k) = keep.as_deref_mut() {
                k.extend_from_slice(&buf[..step]);
            }
            self.inner.consume(step);
            n -= step;
        }
        Ok(())
    }
    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.inner.fill_buf().map_err(codec_error)?.is_empty())
    }
    fn remaining(&self) -> Option<usize> {
        None
    }
}

/// Counts what a record read takes from its source.
struct Counted<'s, S: Source> {
    src: &'s mut S,
    read: usize,
}

impl<S: Source> Counted<'_, S> {
    fn byte(&mut self) -> Result<u8, SourceError> {
        let b = self.src.byte()?;
        self.read += 1;
        Ok(b)
    }
    /// A zig-zag varlong; more than ten bytes is malformed.
    fn varlong(&mut self) -> Result<i64, Malformed> {
        let mut raw: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            raw |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
            }
        }
        Err(Malformed::Structure)
    }
    /// A zig-zag varint; more than five bytes, or a value past 32 bits, is malformed.
    fn varint(&mut self) -> Result<i32, Malformed> {
        let mut raw: u32 = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            if shift == 28 && b & 0xf0 != 0 {
                return Err(Malformed::Structure);
            }
            raw |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32));
            }
        }
        Err(Malformed::Structure)
    }
    fn take(&mut self, n: usize, keep: Option<&mut Vec<u8>>) -> Result<(), SourceError> {
        self.src.take(n, keep)?;
        self.read += n;
        Ok(())
    }
}

enum Malformed {
    Source(SourceError),
    Structure,
    Message(String),
}

impl From<SourceError> for Malformed {
    fn from(e: SourceError) -> Self {
        Malformed::Source(e)
    }
}

/// One record, as far as the checks need it; key and value are filled only
/// when asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordView {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Vec<u8>>,
    pub has_key: bool,
    pub value: Option<Vec<u8>>,
    pub header_count: i32,
}

fn read_record<S: Source>(src: &mut S, keep: bool, out: &mut RecordView) -> Result<(), Malformed> {
    let mut c = Counted { src, read: 0 };
    let size = c.varint()?;
    let start = c.read;
    if let Some(rem) = c.src.remaining() {
        if size >= 0 && rem < size as usize {
            return Err(Malformed::Message(format!(
                "Invalid record size: expected {size} bytes in record payload, but instead the buffer has only {rem} remaining bytes."
            )));
        }
    }
    out.attributes = c.byte()? as i8;
    out.timestamp_delta = c.varlong()?;
    out.offset_delta = c.varint()?;
    let key_len = c.varint()?;
    out.has_key = key_len >= 0;
    out.key = None;
    if key_len > 0 || (key_len == 0 && keep) {
        let mut k = keep.then(Vec::new);
        c.take(key_len as usize, k.as_mut())?;
        out.key = k;
    }
    let value_len = c.varint()?;
    out.value = None;
    if value_len >= 0 {
        let mut v = keep.then(Vec::new);
        c.take(value_len as usize, v.as_mut())?;
        out.value = v;
    }
    let headers = c.varint()?;
    if headers < 0 {
        return Err(Malformed::Message(format!(
            "Found invalid number of record headers {headers}"
        )));
    }
    if let Some(rem) = c.src.remaining() {
        // Each header takes at least two bytes (two lengths).
        if headers as usize > rem {
            return Err(Malformed::Message(format!(
                "Found invalid number of record headers {headers} is larger than the remaining size of the buffer"
            )));
        }
    }
    out.header_count = headers;
    for _ in 0..headers {
        let klen = c.varint()?;
        if klen < 0 {
            return Err(Malformed::Message(format!(
                "Invalid negative header key size {klen}"
            )));
        }
        c.take(klen as usize, None)?;
        let vlen = c.varint()?;
        if vlen > 0 {
            c.take(vlen as usize, None)?;
        }
    }
    let read = c.read - start;
    if size < 0 || read != size as usize {
        return Err(Malformed::Message(format!(
            "Invalid record size: expected to read {size} bytes in record payload, but instead read {read}"
        )));
    }
    Ok(())
}

/// Reads `count` records from `src`, handing each to `visit` with its index;
/// `keep` fills keys and values. Fails as Kafka's record iterator does when the
/// records do not decode, or there are fewer or more of them than `count`.
pub fn for_each_record_in<S: Source>(
    src: &mut S,
    count: i32,
    keep: bool,
    visit: &mut dyn FnMut(usize, &RecordView) -> ControlFlow<()>,
) -> Result<(), RecordError> {
    let mut record = RecordView::default();
    for i in 0..count.max(0) as usize {
        match src.at_end() {
            Ok(true) => {
                return Err(RecordError::Invalid(
                    "Incorrect declared batch size, premature EOF reached".into(),
                ))
            }
            Ok(false) => {}
            Err(SourceError::Codec(e)) => return Err(RecordError::Codec(e)),
            Err(SourceError::Eof) => {}
        }
        match read_record(src, keep, &mut record) {
            Ok(()) => {}
            Err(Malformed::Message(m)) => return Err(RecordError::Invalid(m)),
            Err(Malformed::Source(SourceError::Codec(e))) => return Err(RecordError::Codec(e)),
            Err(Malformed::Source(SourceError::Eof)) | Err(Malformed::Structure) => {
                return Err(RecordError::Invalid(
                    "Found invalid record structure".into(),
                ))
            }
        }
        if visit(i, &record).is_break() {
            return Ok(());
        }
    }
    match src.at_end() {
        Ok(true) => Ok(()),
        Ok(false) | Err(SourceError::Eof) => Err(RecordError::Invalid(
            "Incorrect declared batch size, records still remaining in file".into(),
        )),
        Err(SourceError::Codec(e)) => Err(RecordError::Codec(e)),
    }
}

/// Reads the records of one whole batch (header included), decompressing as
/// its attributes say.
pub fn for_each_record(
    batch: &[u8],
    keep: bool,
    visit: &mut dyn FnMut(usize, &RecordView) -> ControlFlow<()>,
) -> Result<(), RecordError> {
    let h =
        cohort_log::BatchHeader::parse(batch).map_err(|e| RecordError::Invalid(e.to_string()))?;
    let end = h.size.min(batch.len());
    let payload = &batch[cohort_log::batch::HEADER_SIZE..end];
    let codec = crate::Compression::from_attributes(h.attributes).map_err(RecordError::Codec)?;
    if codec == crate::Compression::None {
        let mut src = SliceSource {
            bytes: payload,
            at: 0,
        };
        return for_each_record_in(&mut src, h.records_count, keep, visit);
    }
    let mut src = ReadSource {
        inner: crate::codec::reader(codec, payload).map_err(RecordError::Codec)?,
    };
    for_each_record_in(&mut src, h.records_count, keep, visit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BatchBuilder;

    fn records(batch: &[u8]) -> Result<Vec<RecordView>, RecordError> {
        let mut out = Vec::new();
        for_each_record(batch, true, &mut |_, r| {
            out.push(r.clone());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    #[test]
    fn keys_values_and_nulls_read_back() {
        let b = BatchBuilder::new(1000)
            .record(Some(b"k1"), Some(b"v1"))
            .record(None, Some(b""))
            .record(Some(b""), None)
            .build();
        let r = records(&b).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].key.as_deref(), r[0].value.as_deref()),
            (Some(&b"k1"[..]), Some(&b"v1"[..]))
        );
        assert_eq!(
            (r[1].has_key, r[1].value.as_deref()),
            (false, Some(&b""[..]))
        );
        assert_eq!(
            (r[2].has_key, r[2].key.as_deref(), r[2].value.is_none()),
            (true, Some(&b""[..]), true)
        );
        assert_eq!(
            r.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn a_count_larger_than_the_records_is_premature_eof_and_smaller_leaves_records() {
        let mut b = BatchBuilder::new(0)
            .record(None, Some(b"a"))
            .record(None, Some(b"b"))
            .build();
        crate::build::set_count(&mut b, 3);
        assert_eq!(
            records(&b),
            Err(RecordError::Invalid(
                "Incorrect declared batch size, premature EOF reached".into()
            ))
        );
        crate::build::set_count(&mut b, 1);
        assert_eq!(
            records(&b),
            Err(RecordError::Invalid(
                "Incorrect declared batch size, records still remaining in file".into()
            ))
        );
    }

    #[test]
    fn garbage_is_an_invalid_record_not_a_panic() {
        let good = BatchBuilder::new(0)
            .record(Some(b"key"), Some(b"value"))
            .build();
        // Every byte of the records replaced by every value: never a panic, and
        // an error whenever the record no longer reads as exactly one record.
        for at in cohort_log::batch::HEADER_SIZE..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                let _ = records(&b);
            }
        }
        let mut b = good.clone();
        b.truncate(b.len() - 3);
        let n = b.len() as i32 - 12;
        b[8..12].copy_from_slice(&n.to_be_bytes());
        assert!(records(&b).is_err());
    }

    #[test]
    fn compressed_batches_read_back_with_every_codec() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = BatchBuilder::new(5)
                .compression(codec)
                .record(Some(b"k"), Some(&[7u8; 3000]))
                .record(None, Some(b"x"))
                .build();
            let r = records(&b).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(r.len(), 2, "{codec:?}");
            assert_eq!(r[0].value.as_deref(), Some(&[7u8; 3000][..]));
        }
    }

    use crate::Compression;
}
