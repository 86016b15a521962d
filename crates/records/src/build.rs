//! Building v2 batches: keys, values, headers, timestamps, producer fields and
//! compression. The coordinator log writes its records with it; tests build
//! good batches with it and then damage them on purpose.

use crate::codec::{compress, Compression};
use cohort_log::batch::{HEADER_SIZE, LOG_OVERHEAD};

const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp_delta: i64,
}

pub struct BatchBuilder {
    base_timestamp: i64,
    records: Vec<Rec>,
    compression: Compression,
    producer: (i64, i16, i32),
    attributes: i16,
}

use cohort_log::batch::put_varlong as varlong;

fn bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => varlong(out, -1),
        Some(b) => {
            varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

impl BatchBuilder {
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_timestamp,
            records: Vec::new(),
            compression: Compression::None,
            producer: (-1, -1, -1),
            attributes: 0,
        }
    }

    pub fn record(mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        self.records.push(Rec {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
            timestamp_delta: 0,
        });
        self
    }

    /// The last record added gets this timestamp (relative to the base).
    pub fn timestamp_delta(mut self, delta: i64) -> Self {
        if let Some(r) = self.records.last_mut() {
            r.timestamp_delta = delta;
        }
        self
    }

    pub fn header(mut self, key: &[u8], value: Option<&[u8]>) -> Self {
        if let Some(r) = self.records.last_mut() {
            r.headers.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        }
        self
    }

    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }

    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer = (id, epoch, base_sequence);
        self
    }

    /// Extra attribute bits (transactional 0x10, control 0x20, ...).
    pub fn attributes(mut self, bits: i16) -> Self {
        self.attributes = bits;
        self
    }

    /// The records' bytes, uncompressed.
    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Vec::new();
        for (i, rec) in self.records.iter().enumerate() {
            r.clear();
            r.push(0);
            varlong(&mut r, rec.timestamp_delta);
            varlong(&mut r, i as i64);
            bytes(&mut r, rec.key.as_deref());
            bytes(&mut r, rec.value.as_deref());
            varlong(&mut r, rec.headers.len() as i64);
            for (k, v) in &rec.headers {
                bytes(&mut r, Some(k));
                bytes(&mut r, v.as_deref());
            }
            varlong(&mut out, r.len() as i64);
            out.extend_from_slice(&r);
        }
        out
    }

    pub fn build(&self) -> Vec<u8> {
        let payload = compress(self.compression, &self.payload());
        let n = self.records.len() as i32;
        let max_ts = self.base_timestamp
            + self
                .records
                .iter()
                .map(|r| r.timestamp_delta)
                .max()
                .unwrap_or(0);
        let (pid, epoch, seq) = self.producer;
        let mut b = Vec::with_capacity(HEADER_SIZE + payload.len());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&((HEADER_SIZE - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&(self.attributes | self.compression.id()).to_be_bytes());
        b.extend_from_slice(&(n - 1).to_be_bytes());
        b.extend_from_slice(&self.base_timestamp.to_be_bytes());
        b.extend_from_slice(&max_ts.to_be_bytes());
        b.extend_from_slice(&pid.to_be_bytes());
        b.extend_from_slice(&epoch.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&n.to_be_bytes());
        b.extend_from_slice(&payload);
        recrc(&mut b);
        b
    }
}

/// Recomputes a batch's CRC after its bytes were changed.
pub fn recrc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
    b[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets a batch's record count (keeping the CRC right).
pub fn set_count(b: &mut [u8], count: i32) {
    b[57..61].copy_from_slice(&count.to_be_bytes());
    recrc(b);
}

/// Sets a batch's last offset delta (keeping the CRC right).
pub fn set_last_offset_delta(b: &mut [u8], delta: i32) {
    b[23..27].copy_from_slice(&delta.to_be_bytes());
    recrc(b);
}

/// Sets a batch's attributes (keeping the CRC right).
pub fn set_attributes(b: &mut [u8], attributes: i16) {
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    recrc(b);
}

/// Sets a batch's base and max timestamps (keeping the CRC right).
pub fn set_timestamps(b: &mut [u8], base: i64, max: i64) {
    b[27..35].copy_from_slice(&base.to_be_bytes());
    b[35..43].copy_from_slice(&max.to_be_bytes());
    recrc(b);
}

/// Replaces everything after the header with `payload` (keeping length and CRC right).
pub fn set_payload(b: &mut Vec<u8>, payload: &[u8]) {
    b.truncate(HEADER_SIZE);
    b.extend_from_slice(payload);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    recrc(b);
}
