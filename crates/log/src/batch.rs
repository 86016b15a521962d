//! The v2 record batch header (Kafka's on-wire and on-disk format, magic 2).
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordsCount i32 | records...
//! ```
//! The CRC-32C covers everything from `attributes` to the end of the batch.

pub const HEADER_SIZE: usize = 61;
/// Bytes before `batchLength`'s count starts (baseOffset and batchLength itself).
pub const LOG_OVERHEAD: usize = 12;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    /// The whole batch's size in bytes, header included.
    pub size: usize,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a header, or than the length the header claims.
    Truncated,
    /// A length that cannot be a v2 batch.
    BadLength(i32),
    /// Not magic 2 (Kafka 4 accepts only v2 batches).
    BadMagic(i8),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    /// lastOffsetDelta disagrees with recordsCount.
    BadCount,
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

impl BatchHeader {
    /// Reads a header from the first bytes of `b` (needs `HEADER_SIZE` bytes);
    /// does not look at the records or the CRC.
    pub fn parse(b: &[u8]) -> Result<BatchHeader, BatchError> {
        if b.len() < HEADER_SIZE {
            return Err(BatchError::Truncated);
        }
        let batch_length = i32_at(b, 8);
        if batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            return Err(BatchError::BadLength(batch_length));
        }
        let magic = b[16] as i8;
        if magic != 2 {
            return Err(BatchError::BadMagic(magic));
        }
        Ok(BatchHeader {
            base_offset: i64_at(b, 0) as u64,
            size: batch_length as usize + LOG_OVERHEAD,
            partition_leader_epoch: i32_at(b, 12),
            magic,
            crc: u32::from_be_bytes(b[CRC_OFFSET..CRC_OFFSET + 4].try_into().unwrap()),
            attributes: i16_at(b, 21),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            records_count: i32_at(b, 57),
        })
    }

    /// Parses and fully checks one batch that must be exactly `b`.
    pub fn validate(b: &[u8]) -> Result<BatchHeader, BatchError> {
        let h = BatchHeader::parse(b)?;
        if h.size > b.len() {
            return Err(BatchError::Truncated);
        }
        h.check_crc(&b[..h.size])?;
        if h.records_count < 0 || h.last_offset_delta < 0 {
            return Err(BatchError::BadCount);
        }
        Ok(h)
    }

    pub fn check_crc(&self, whole: &[u8]) -> Result<(), BatchError> {
        let computed = crc32c::crc32c(&whole[ATTRIBUTES_OFFSET..self.size]);
        if computed != self.crc {
            return Err(BatchError::BadCrc {
                stored: self.crc,
                computed,
            });
        }
        Ok(())
    }

    pub fn last_offset(&self) -> u64 {
        self.base_offset + self.last_offset_delta as u64
    }
    pub fn next_offset(&self) -> u64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The last sequence number in this batch, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Rewrites a batch's base offset in place (not covered by the CRC).
pub fn set_base_offset(b: &mut [u8], offset: u64) {
    b[0..8].copy_from_slice(&(offset as i64).to_be_bytes());
}

/// Rewrites the partition leader epoch in place (not covered by the CRC).
pub fn set_leader_epoch(b: &mut [u8], epoch: i32) {
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Appends `v` as a zig-zag varint (the records' length and field encoding).
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        if z < 0x80 {
            out.push(z as u8);
            return;
        }
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
}

/// Builds a valid v2 batch of `count` small records for tests and tools. Each
/// record has an empty key and the given value; no compression.
pub fn build_batch(
    base_timestamp: i64,
    values: &[&[u8]],
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let varint = put_varlong;
    let mut records = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut r = Vec::new();
        r.push(0); // attributes
        varint(&mut r, 0); // timestamp delta
        varint(&mut r, i as i64); // offset delta
        varint(&mut r, -1); // null key
        varint(&mut r, v.len() as i64);
        r.extend_from_slice(v);
        varint(&mut r, 0); // no headers
        varint(&mut records, r.len() as i64);
        records.extend_from_slice(&r);
    }
    let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let mut b = Vec::with_capacity(HEADER_SIZE + records.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(values.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&epoch.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&(values.len() as i32).to_be_bytes());
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batches_validate_and_a_flipped_bit_does_not() {
        let mut b = build_batch(1000, &[b"a", b"bc"], Some((7, 0, 5)));
        let h = BatchHeader::validate(&b).unwrap();
        assert_eq!(
            (h.records_count, h.last_offset_delta, h.size),
            (2, 1, b.len())
        );
        assert_eq!(
            (h.producer_id, h.base_sequence, h.last_sequence()),
            (7, 5, 6)
        );
        set_base_offset(&mut b, 42);
        assert_eq!(BatchHeader::validate(&b).unwrap().base_offset, 42);
        let n = b.len();
        b[n - 2] ^= 1;
        assert!(matches!(
            BatchHeader::validate(&b),
            Err(BatchError::BadCrc { .. })
        ));
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut b = build_batch(0, &[b"a", b"b", b"c"], Some((1, 0, i32::MAX - 1)));
        let h = BatchHeader::validate(&mut b).unwrap();
        assert_eq!(h.last_sequence(), 0);
    }

    #[test]
    fn rejects_short_and_wrong_magic() {
        assert_eq!(BatchHeader::parse(&[0; 10]), Err(BatchError::Truncated));
        let mut b = build_batch(0, &[b"a"], None);
        b[16] = 1;
        assert_eq!(BatchHeader::parse(&b), Err(BatchError::BadMagic(1)));
    }
}
