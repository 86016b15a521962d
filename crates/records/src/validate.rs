//! What Kafka's broker checks in a produced batch before appending it, in
//! Kafka's order, with Kafka's error codes and messages: the request-level
//! checks of `ProduceRequest.validateRecords`, the append checks of
//! `UnifiedLog.analyzeAndValidateRecords`, and `LogValidator`'s batch and
//! record checks. The first failing check decides the answer.
//!
//! One deliberate difference: Kafka accepts a batch whose records' offset
//! deltas are not 0, 1, 2, ... (uncompressed: stored as sent; compressed:
//! recompressed with new deltas). Cohort refuses it with INVALID_RECORD, so
//! no two records of a partition can ever claim the same offset.

use crate::codec::Compression;
use crate::parse::{for_each_record_in, ReadSource, RecordError, SliceSource};
use cohort_log::batch::{BatchHeader, HEADER_SIZE, LOG_OVERHEAD};
use cohort_types::ErrorCode;
use std::ops::ControlFlow;

/// The topic's settings that decide what is accepted.
#[derive(Clone, Debug)]
pub struct ValidationConfig {
    /// Broker time now, in ms.
    pub now_ms: i64,
    /// max.message.bytes: the largest batch, as sent.
    pub max_message_bytes: usize,
    /// message.timestamp.before.max.ms (Kafka 4 default: i64::MAX).
    pub timestamp_before_max_ms: i64,
    /// message.timestamp.after.max.ms (Kafka 4 default: one hour).
    pub timestamp_after_max_ms: i64,
    /// cleanup.policy includes compact: every record needs a key.
    pub compacted: bool,
    /// The Produce request's version (messages name it; zstd needs v7+).
    pub api_version: i16,
    /// "topic-partition", as Kafka names it in messages.
    pub topic_partition: String,
}

/// Why a batch is refused: the partition's error code, its message, and the
/// per-record errors (batch index, message) Produce v8+ carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: Option<String>,
    pub record_errors: Vec<(i32, Option<String>)>,
}

impl Rejection {
    fn new(code: ErrorCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: Some(message.into()),
            record_errors: Vec::new(),
        }
    }
}

/// An accepted batch, and what the broker must rewrite in it before storing
/// (Kafka rewrites these in place too; both are covered by the CRC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    pub header: BatchHeader,
    /// The batch's own bytes: a produce's records field may carry trailing
    /// bytes shorter than a batch header, which Kafka ignores.
    pub len: usize,
    /// The largest record timestamp: the batch's max timestamp, whatever the
    /// header claims.
    pub max_timestamp: i64,
    /// The LogAppendTime bit was set by the client on a CreateTime topic.
    pub clear_log_append_time: bool,
}

impl Validated {
    /// Whether the stored batch must differ from what the client sent.
    pub fn needs_rewrite(&self) -> bool {
        self.clear_log_append_time || self.max_timestamp != self.header.max_timestamp
    }

    /// Applies the rewrites to the batch's bytes, recomputing the CRC.
    pub fn rewrite(&self, batch: &mut [u8]) {
        if !self.needs_rewrite() {
            return;
        }
        let attributes = if self.clear_log_append_time {
            self.header.attributes & !TIMESTAMP_TYPE
        } else {
            self.header.attributes
        };
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        batch[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        crate::build::recrc(&mut batch[..self.len]);
    }
}

const TIMESTAMP_TYPE: i16 = 0x08;
const NO_TIMESTAMP: i64 = -1;
/// Bytes up to and including the magic byte.
const HEADER_SIZE_UP_TO_MAGIC: usize = 17;
/// The smallest batch length field Kafka's reader accepts.
const MIN_RECORD_OVERHEAD: i32 = 14;

/// Checks one partition's records field of a Produce request.
pub fn validate_batch(records: &[u8], c: &ValidationConfig) -> Result<Validated, Rejection> {
    let v = c.api_version;
    let tp = &c.topic_partition;
    let invalid = |m: String| Rejection::new(ErrorCode::INVALID_RECORD, m);

    // ProduceRequest.validateRecords: exactly one whole v2 batch.
    let first = next_batch_size(records)?;
    let Some(size) = first.filter(|&s| s <= records.len()) else {
        return Err(invalid(format!(
            "Produce requests with version {v} must have at least one record batch per partition"
        )));
    };
    let magic = records[16] as i8;
    if magic != 2 {
        return Err(invalid(format!(
            "Produce requests with version {v} are only allowed to contain record batches with magic version 2"
        )));
    }
    let attributes = if records.len() >= 23 {
        i16::from_be_bytes([records[21], records[22]])
    } else {
        0
    };
    if v <= 6 && attributes & 0x7 == 4 {
        return Err(Rejection::new(
            ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
            format!(
                "Produce requests with version {v} are not allowed to use ZStandard compression"
            ),
        ));
    }
    if let Some(next) = next_batch_size(&records[size..])? {
        if size + next <= records.len() {
            return Err(invalid(format!(
                "Produce requests with version {v} are only allowed to contain exactly one record batch per partition"
            )));
        }
    }
    let batch = &records[..size];

    // UnifiedLog.analyzeAndValidateRecords.
    let base_offset = i64::from_be_bytes(batch[0..8].try_into().unwrap());
    if base_offset != 0 {
        return Err(invalid(format!(
            "The baseOffset of the record batch in the append to {tp} should be 0, but it is {base_offset}"
        )));
    }
    if size > c.max_message_bytes {
        return Err(Rejection::new(
            ErrorCode::MESSAGE_TOO_LARGE,
            format!(
                "The record batch size in the append to {tp} is {size} bytes which exceeds the maximum configured value of {}.",
                c.max_message_bytes
            ),
        ));
    }
    let stored_crc = if size >= 21 {
        u32::from_be_bytes(batch[17..21].try_into().unwrap())
    } else {
        0
    };
    let h = match BatchHeader::validate(batch) {
        Ok(h) => h,
        Err(cohort_log::BatchError::BadCount) => BatchHeader::parse(batch).expect("parsed once"),
        Err(_) => {
            return Err(Rejection::new(
                ErrorCode::CORRUPT_MESSAGE,
                format!("Record is corrupt (stored crc = {stored_crc}) in topic partition {tp}."),
            ))
        }
    };
    let codec = Compression::from_attributes(h.attributes)
        .map_err(|m| Rejection::new(ErrorCode::UNKNOWN_SERVER_ERROR, m))?;

    // LogValidator.validateBatch.
    let last = h.last_offset_delta as i64;
    if last + 1 <= 0 {
        return Err(invalid(format!(
            "Batch has an invalid offset range: [0, {last}] in topic partition {tp}"
        )));
    }
    if h.records_count <= 0 {
        return Err(invalid(format!(
            "Invalid reported count for record batch: {} in topic partition {tp}",
            h.records_count
        )));
    }
    if h.records_count as i64 != last + 1 {
        return Err(invalid(format!(
            "Inconsistent batch offset range [0, {last}] and count of records {} in topic partition {tp}",
            h.records_count
        )));
    }
    if h.is_control() {
        return Err(invalid(format!(
            "Clients are not allowed to write control records in topic partition {tp}"
        )));
    }
    if h.producer_id > -1 && h.base_sequence < 0 {
        return Err(invalid(format!(
            "Invalid sequence number {} in record batch with producerId {} in topic partition {tp}",
            h.base_sequence, h.producer_id
        )));
    }

    // LogValidator's record checks: every record decodes, has a key on a
    // compacted topic, and has a timestamp in bounds.
    let log_append_time = h.attributes & TIMESTAMP_TYPE != 0;
    let mut errors: Vec<(i32, String, bool)> = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    let mut bad_delta: Option<(usize, i32)> = None;
    let mut visit = |i: usize, r: &crate::RecordView| {
        if r.offset_delta != i as i32 && bad_delta.is_none() {
            bad_delta = Some((i, r.offset_delta));
        }
        if c.compacted && !r.has_key {
            errors.push((
                i as i32,
                format!(
                    "Compacted topic cannot accept message without key in topic partition {tp}"
                ),
                false,
            ));
            return ControlFlow::Continue(());
        }
        let ts = if log_append_time {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        if log_append_time && ts == NO_TIMESTAMP {
            errors.push((
                i as i32,
                "Invalid timestamp type in message. Producer should not set timestamp type to LogAppendTime.".into(),
                true,
            ));
            return ControlFlow::Continue(());
        }
        if ts != NO_TIMESTAMP
            && ((c.now_ms as i128 - ts as i128) > c.timestamp_before_max_ms as i128
                || (ts as i128 - c.now_ms as i128) > c.timestamp_after_max_ms as i128)
        {
            errors.push((
                i as i32,
                format!(
                    "Timestamp {ts} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                    r.offset_delta,
                    c.now_ms.saturating_sub(c.timestamp_before_max_ms),
                    c.now_ms.saturating_add(c.timestamp_after_max_ms)
                ),
                true,
            ));
        }
        max_timestamp = max_timestamp.max(ts);
        ControlFlow::Continue(())
    };
    let payload = &batch[HEADER_SIZE..];
    let read = if codec == Compression::None {
        let mut src = SliceSource {
            bytes: payload,
            at: 0,
        };
        for_each_record_in(&mut src, h.records_count, false, &mut visit)
    } else {
        match crate::codec::reader(codec, payload) {
            Ok(inner) => {
                let mut src = ReadSource { inner };
                for_each_record_in(&mut src, h.records_count, false, &mut visit)
            }
            Err(e) => Err(RecordError::Codec(e)),
        }
    };
    match read {
        Ok(()) => {}
        Err(RecordError::Invalid(m)) => return Err(invalid(m)),
        Err(RecordError::Codec(m)) => {
            return Err(Rejection::new(
                ErrorCode::UNKNOWN_SERVER_ERROR,
                format!("Failed to decompress record stream ({codec:?}): {m}"),
            ))
        }
    }
    if let Some((i, delta)) = bad_delta {
        return Err(invalid(format!(
            "Record {i} of the batch has offset delta {delta}, not {i}: records must be numbered 0, 1, 2, ... in topic partition {tp}"
        )));
    }
    if !errors.is_empty() {
        let timestamp = errors.iter().any(|e| e.2);
        let (code, message) = if timestamp {
            (
                ErrorCode::INVALID_TIMESTAMP,
                "One or more records have been rejected due to invalid timestamp".to_string(),
            )
        } else {
            let shown: Vec<String> = errors
                .iter()
                .take(3)
                .map(|(i, m, _)| format!("RecordError(batchIndex={i}, message='{m}')"))
                .collect();
            (
                ErrorCode::INVALID_RECORD,
                format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                    errors.len(),
                    shown.join(", ")
                ),
            )
        };
        return Err(Rejection {
            code,
            message: Some(message),
            record_errors: errors.into_iter().map(|(i, m, _)| (i, Some(m))).collect(),
        });
    }
    Ok(Validated {
        header: h,
        len: size,
        max_timestamp,
        clear_log_append_time: log_append_time,
    })
}

/// The size of the batch at the start of `b`, as Kafka's batch reader sees it:
/// None when fewer bytes than a header up to its magic byte remain; an error
/// for a length or magic no batch can have.
fn next_batch_size(b: &[u8]) -> Result<Option<usize>, Rejection> {
    if b.len() < HEADER_SIZE_UP_TO_MAGIC {
        return Ok(None);
    }
    let length = i32::from_be_bytes(b[8..12].try_into().unwrap());
    if length < MIN_RECORD_OVERHEAD {
        return Err(Rejection::new(
            ErrorCode::CORRUPT_MESSAGE,
            format!("Record size {length} is less than the minimum record overhead ({MIN_RECORD_OVERHEAD})"),
        ));
    }
    let magic = b[16] as i8;
    if !(0..=2).contains(&magic) {
        return Err(Rejection::new(
            ErrorCode::CORRUPT_MESSAGE,
            format!("Invalid magic found in record: {magic}"),
        ));
    }
    Ok(Some(length as usize + LOG_OVERHEAD))
}

#[cfg(test)]
mod tests;
