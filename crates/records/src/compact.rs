//! Compaction's rewrite of one batch, as Kafka's log cleaner does it: some of
//! its records are dropped, the rest keep their offsets (offset deltas against
//! the same base offset) and timestamps, and the batch keeps its base offset,
//! last offset delta, producer fields and codec, so offsets are never
//! renumbered and the log stays continuous. A batch that first carries a
//! tombstone through a cleaning gets a delete horizon (KIP-534): attribute bit
//! 6 set and the base timestamp replaced by the horizon, every record's
//! timestamp delta rewritten so its timestamp stays the same.
//!
//! Worked example: a batch at base offset 10 with records (k1 @10, k2 @11,
//! k1 @12) whose k1 is newer at offset 20 keeps only k2 @11; the rewritten
//! batch still spans 10..=12 (last offset delta 2) with one record.

use crate::codec::{compress, reader, Compression};
use cohort_log::batch::{put_varlong, BatchHeader, HEADER_SIZE, LOG_OVERHEAD};
use std::io::Read;

/// Kafka's `DELETE_HORIZON_FLAG_MASK`: the base timestamp is the time after
/// which this batch's tombstones may be removed.
pub const DELETE_HORIZON_FLAG: i16 = 0x40;

/// One record of a batch, with what compaction needs to decide about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    /// Absolute (base timestamp + delta).
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    /// No value: a tombstone.
    pub tombstone: bool,
    attributes: u8,
    value: Option<Vec<u8>>,
    /// The record's headers, count first, exactly as they were.
    headers: Vec<u8>,
}

/// The batch's delete horizon, if it has one.
pub fn delete_horizon(h: &BatchHeader) -> Option<i64> {
    (h.attributes & DELETE_HORIZON_FLAG != 0).then_some(h.base_timestamp)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn varlong(&mut self) -> Result<i64, String> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.b.get(self.at).ok_or("a record ends inside a varint")?;
            self.at += 1;
            z |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err("a varint longer than ten bytes".into())
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>, String> {
        let len = self.varlong()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self
            .at
            .checked_add(len as usize)
            .filter(|&e| e <= self.b.len())
            .ok_or("a field runs past its record")?;
        let out = self.b[self.at..end].to_vec();
        self.at = end;
        Ok(Some(out))
    }
}

/// The records of a batch (decompressed).
pub fn records(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>), String> {
    let h = BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    let payload = &batch[HEADER_SIZE..h.size.min(batch.len())];
    let codec = Compression::from_attributes(h.attributes)?;
    let plain: Vec<u8> = if codec == Compression::None {
        payload.to_vec()
    } else {
        let mut out = Vec::new();
        reader(codec, payload)?
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        out
    };
    let base_ts = h.base_timestamp;
    let mut c = Cursor { b: &plain, at: 0 };
    let mut out = Vec::with_capacity(h.records_count.max(0) as usize);
    for _ in 0..h.records_count.max(0) {
        let size = c.varlong()?;
        let end =
            c.at.checked_add(size.max(0) as usize)
                .filter(|&e| e <= plain.len())
                .ok_or("a record runs past its batch")?;
        let mut r = Cursor {
            b: &plain[..end],
            at: c.at,
        };
        let attributes = *r.b.get(r.at).ok_or("an empty record")?;
        r.at += 1;
        let ts_delta = r.varlong()?;
        let offset_delta = r.varlong()? as i32;
        let key = r.bytes()?;
        let value = r.bytes()?;
        let headers = r.b[r.at..end].to_vec();
        out.push(Record {
            offset_delta,
            timestamp: base_ts + ts_delta,
            key,
            tombstone: value.is_none(),
            attributes,
            value,
            headers,
        });
        c.at = end;
    }
    Ok((h, out))
}

/// The batch rebuilt with only `keep` (records of that batch, in order). A
/// horizon is set when `new_horizon` is given and the batch has none yet.
pub fn rebuild(
    batch: &[u8],
    keep: &[&Record],
    new_horizon: Option<i64>,
) -> Result<Vec<u8>, String> {
    let h = BatchHeader::parse(batch).map_err(|e| e.to_string())?;
    let codec = Compression::from_attributes(h.attributes)?;
    let (base_ts, attributes) = match (delete_horizon(&h), new_horizon) {
        (None, Some(horizon)) => (horizon, h.attributes | DELETE_HORIZON_FLAG),
        _ => (h.base_timestamp, h.attributes),
    };
    let mut plain = Vec::new();
    for r in keep {
        let mut body = vec![r.attributes];
        put_varlong(&mut body, r.timestamp - base_ts);
        put_varlong(&mut body, r.offset_delta as i64);
        for field in [&r.key, &r.value] {
            match field {
                None => put_varlong(&mut body, -1),
                Some(b) => {
                    put_varlong(&mut body, b.len() as i64);
                    body.extend_from_slice(b);
                }
            }
        }
        body.extend_from_slice(&r.headers);
        put_varlong(&mut plain, body.len() as i64);
        plain.extend_from_slice(&body);
    }
    // An empty batch is written uncompressed, as Kafka writes one (a reader
    // must not be asked to decompress nothing).
    let attributes = if keep.is_empty() {
        attributes & !0x7
    } else {
        attributes
    };
    let payload = if codec == Compression::None || keep.is_empty() {
        plain
    } else {
        compress(codec, &plain)
    };
    let mut out = batch[..HEADER_SIZE].to_vec();
    out.extend_from_slice(&payload);
    let len = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    out[27..35].copy_from_slice(&base_ts.to_be_bytes());
    out[57..61].copy_from_slice(&(keep.len() as i32).to_be_bytes());
    crate::build::recrc(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::BatchBuilder;

    fn batch(codec: Compression) -> Vec<u8> {
        BatchBuilder::new(1_000)
            .record(Some(b"k1"), Some(b"v1"))
            .record(Some(b"k2"), Some(b"v2"))
            .timestamp_delta(5)
            .header(b"h", Some(b"x"))
            .record(Some(b"k1"), None)
            .timestamp_delta(9)
            .compression(codec)
            .producer(7, 1, 40)
            .build()
    }

    #[test]
    fn kept_records_keep_offsets_timestamps_and_headers_and_the_batch_keeps_its_span() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = batch(codec);
            cohort_log::batch::set_base_offset(&mut b, 10);
            let (h, rs) = records(&b).unwrap();
            assert_eq!(rs.len(), 3);
            assert_eq!((rs[2].tombstone, rs[2].timestamp), (true, 1_009));
            let out = rebuild(&b, &[&rs[1]], None).unwrap();
            let (h2, kept) = records(&out).unwrap();
            assert_eq!(kept, vec![rs[1].clone()]);
            assert_eq!(
                (h2.base_offset, h2.last_offset_delta, h2.records_count),
                (10, 2, 1)
            );
            assert_eq!(
                (h2.producer_id, h2.producer_epoch, h2.base_sequence),
                (h.producer_id, h.producer_epoch, h.base_sequence)
            );
            assert_eq!(h2.compression(), h.compression());
            assert_eq!(h2.max_timestamp, h.max_timestamp);
            BatchHeader::validate(&out)
                .unwrap()
                .check_crc(&out)
                .unwrap();
            // The validator a produce goes through accepts it too (records decode).
            crate::for_each_record(&out, true, &mut |_, _| std::ops::ControlFlow::Continue(()))
                .unwrap();
        }
    }

    #[test]
    fn a_first_cleaned_tombstone_gets_a_delete_horizon_without_moving_timestamps() {
        let b = batch(Compression::None);
        let (_, rs) = records(&b).unwrap();
        let out = rebuild(&b, &[&rs[0], &rs[2]], Some(99_000)).unwrap();
        let (h, kept) = records(&out).unwrap();
        assert_eq!(delete_horizon(&h), Some(99_000));
        assert_eq!(
            kept.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            vec![1_000, 1_009]
        );
        // A second cleaning keeps the horizon it has.
        let again = rebuild(&out, &[&kept[1]], Some(200_000)).unwrap();
        assert_eq!(
            delete_horizon(&BatchHeader::parse(&again).unwrap()),
            Some(99_000)
        );
    }

    #[test]
    fn a_batch_that_keeps_nothing_is_an_empty_batch_over_the_same_offsets() {
        let b = batch(Compression::Zstd);
        let out = rebuild(&b, &[], None).unwrap();
        let h = BatchHeader::validate(&out).unwrap();
        h.check_crc(&out).unwrap();
        assert_eq!(
            (h.records_count, h.last_offset_delta, out.len()),
            (0, 2, HEADER_SIZE)
        );
        assert_eq!(h.compression(), 0);
    }
}
