//! Each of Kafka's produce checks, and the hostile batches that used to be
//! accepted: a codec flag on garbage, codec 7, counts that disagree with the
//! records, undecodable records, an empty batch, far-away timestamps.

use super::*;
use crate::build::{self, BatchBuilder};

const NOW: i64 = 1_800_000_000_000;

fn config() -> ValidationConfig {
    ValidationConfig {
        now_ms: NOW,
        max_message_bytes: 1_048_588,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        compacted: false,
        api_version: 9,
        topic_partition: "t-0".into(),
    }
}

fn good() -> Vec<u8> {
    BatchBuilder::new(NOW)
        .record(Some(b"k"), Some(b"v1"))
        .record(None, Some(b"v2"))
        .build()
}

fn refused(b: &[u8]) -> Rejection {
    validate_batch(b, &config()).expect_err("refused")
}

fn refused_with(b: &[u8], c: &ValidationConfig) -> Rejection {
    validate_batch(b, c).expect_err("refused")
}

#[test]
fn a_well_formed_batch_is_accepted_as_sent() {
    let b = good();
    let v = validate_batch(&b, &config()).unwrap();
    assert_eq!(
        (v.len, v.max_timestamp, v.needs_rewrite()),
        (b.len(), NOW, false)
    );
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = BatchBuilder::new(NOW)
            .compression(codec)
            .record(None, Some(b"x"))
            .build();
        validate_batch(&b, &config()).unwrap_or_else(|e| panic!("{codec:?}: {e:?}"));
    }
}

#[test]
fn empty_or_partial_records_are_not_a_batch() {
    let m = "Produce requests with version 9 must have at least one record batch per partition";
    for b in [&[][..], &good()[..10], &good()[..good().len() - 1]] {
        let r = refused(b);
        assert_eq!(
            (r.code, r.message.as_deref()),
            (ErrorCode::INVALID_RECORD, Some(m))
        );
    }
}

#[test]
fn a_length_below_the_minimum_or_a_magic_past_2_is_corrupt() {
    let mut b = good();
    b[8..12].copy_from_slice(&13i32.to_be_bytes());
    assert_eq!(refused(&b).code, ErrorCode::CORRUPT_MESSAGE);
    let mut b = good();
    b[16] = 3;
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::CORRUPT_MESSAGE);
    assert_eq!(
        r.message.as_deref(),
        Some("Invalid magic found in record: 3")
    );
    let mut b = good();
    b[16] = 1;
    assert_eq!(refused(&b).code, ErrorCode::INVALID_RECORD);
}

#[test]
fn two_batches_in_one_partition_are_refused_but_trailing_bytes_are_ignored() {
    let mut two = good();
    two.extend_from_slice(&good());
    assert!(refused(&two)
        .message
        .unwrap()
        .contains("exactly one record batch"));
    let mut trailing = good();
    trailing.extend_from_slice(&[0; 5]);
    assert_eq!(
        validate_batch(&trailing, &config()).unwrap().len,
        good().len()
    );
}

#[test]
fn zstd_needs_produce_v7() {
    let b = BatchBuilder::new(NOW)
        .compression(Compression::Zstd)
        .record(None, Some(b"x"))
        .build();
    let c = ValidationConfig {
        api_version: 6,
        ..config()
    };
    assert_eq!(
        refused_with(&b, &c).code,
        ErrorCode::UNSUPPORTED_COMPRESSION_TYPE
    );
}

#[test]
fn a_non_zero_base_offset_is_refused() {
    let mut b = good();
    cohort_log::batch::set_base_offset(&mut b, 5);
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::INVALID_RECORD);
    assert!(r.message.unwrap().contains("should be 0, but it is 5"));
}

#[test]
fn a_batch_past_max_message_bytes_is_too_large() {
    let c = ValidationConfig {
        max_message_bytes: 50,
        ..config()
    };
    assert_eq!(refused_with(&good(), &c).code, ErrorCode::MESSAGE_TOO_LARGE);
}

#[test]
fn a_bad_crc_is_corrupt() {
    let mut b = good();
    let n = b.len();
    b[n - 1] ^= 1;
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::CORRUPT_MESSAGE);
    assert!(r
        .message
        .unwrap()
        .starts_with("Record is corrupt (stored crc = "));
}

#[test]
fn codec_5_6_and_7_are_unknown_server_errors_as_in_kafka() {
    for id in 5..8 {
        let mut b = good();
        build::set_attributes(&mut b, id);
        let r = refused(&b);
        assert_eq!(r.code, ErrorCode::UNKNOWN_SERVER_ERROR, "{id}");
        assert_eq!(
            r.message,
            Some(format!("Unknown compression type id: {id}"))
        );
    }
}

#[test]
fn a_codec_flag_on_an_uncompressed_payload_fails_to_decompress() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = good();
        build::set_attributes(&mut b, codec.id());
        let r = refused(&b);
        assert_eq!(r.code, ErrorCode::UNKNOWN_SERVER_ERROR, "{codec:?}: {r:?}");
    }
}

#[test]
fn a_compressed_payload_cut_short_is_refused() {
    let mut b = BatchBuilder::new(NOW)
        .compression(Compression::Gzip)
        .record(None, Some(&[1u8; 1000]))
        .record(None, Some(&[2u8; 1000]))
        .build();
    let payload = b[HEADER_SIZE..b.len() - 10].to_vec();
    build::set_payload(&mut b, &payload);
    assert_ne!(refused(&b).code, ErrorCode::NONE);
}

#[test]
fn counts_that_disagree_with_the_offset_range_or_the_records_are_invalid() {
    // lastOffsetDelta far past the records: the high watermark must not jump.
    let mut b = good();
    build::set_last_offset_delta(&mut b, i32::MAX - 1);
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::INVALID_RECORD);
    assert!(r
        .message
        .unwrap()
        .starts_with("Inconsistent batch offset range [0, 2147483646] and count of records 2"));
    // Count and delta agree with each other but not with the records.
    let mut b = good();
    build::set_last_offset_delta(&mut b, 2);
    build::set_count(&mut b, 3);
    assert_eq!(
        refused(&b).message.as_deref(),
        Some("Incorrect declared batch size, premature EOF reached")
    );
    let mut b = good();
    build::set_last_offset_delta(&mut b, 0);
    build::set_count(&mut b, 1);
    assert_eq!(
        refused(&b).message.as_deref(),
        Some("Incorrect declared batch size, records still remaining in file")
    );
    let mut b = good();
    build::set_last_offset_delta(&mut b, -1);
    assert!(refused(&b)
        .message
        .unwrap()
        .starts_with("Batch has an invalid offset range"));
}

#[test]
fn an_empty_batch_is_refused() {
    let mut b = BatchBuilder::new(NOW).build();
    build::set_last_offset_delta(&mut b, 0);
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::INVALID_RECORD);
    assert_eq!(
        r.message.as_deref(),
        Some("Invalid reported count for record batch: 0 in topic partition t-0")
    );
}

#[test]
fn undecodable_records_are_invalid() {
    let mut b = good();
    build::set_payload(&mut b, &[0x7f; 20]);
    assert_eq!(refused(&b).code, ErrorCode::INVALID_RECORD);
}

#[test]
fn control_batches_and_sequenceless_idempotent_batches_are_refused() {
    let b = BatchBuilder::new(NOW)
        .attributes(0x20)
        .record(None, Some(b"x"))
        .build();
    assert!(refused(&b)
        .message
        .unwrap()
        .starts_with("Clients are not allowed to write control records"));
    let b = BatchBuilder::new(NOW)
        .producer(7, 0, -1)
        .record(None, Some(b"x"))
        .build();
    assert!(refused(&b)
        .message
        .unwrap()
        .starts_with("Invalid sequence number -1"));
}

#[test]
fn offset_deltas_must_number_the_records() {
    let mut b = good();
    // The second record's offset delta (after its length, attributes and
    // timestamp delta) becomes 0.
    let first_len = b[HEADER_SIZE] as usize / 2;
    let second = HEADER_SIZE + 1 + first_len;
    assert_eq!(b[second + 3], 2, "offset delta 1, zig-zag");
    b[second + 3] = 0;
    build::recrc(&mut b);
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::INVALID_RECORD);
    assert!(r.message.unwrap().contains("offset delta 0, not 1"));
}

#[test]
fn timestamps_beyond_the_bounds_are_invalid_timestamps_with_record_errors() {
    let far = 1i64 << 62;
    let b = BatchBuilder::new(far).record(None, Some(b"x")).build();
    let r = refused(&b);
    assert_eq!(r.code, ErrorCode::INVALID_TIMESTAMP);
    assert_eq!(r.record_errors.len(), 1);
    assert!(r.record_errors[0].1.as_ref().unwrap().starts_with(&format!(
        "Timestamp {far} of message with offset 0 is out of range"
    )));

    // Kafka 4's defaults accept any past timestamp, -5 included; a bound on
    // the past refuses it.
    let old = BatchBuilder::new(-5).record(None, Some(b"x")).build();
    validate_batch(&old, &config()).unwrap();
    let c = ValidationConfig {
        timestamp_before_max_ms: 86_400_000,
        ..config()
    };
    assert_eq!(refused_with(&old, &c).code, ErrorCode::INVALID_TIMESTAMP);

    // -1 means no timestamp and is never out of range.
    let none = BatchBuilder::new(-1).record(None, Some(b"x")).build();
    validate_batch(&none, &c).unwrap();
}

#[test]
fn the_max_timestamp_is_the_records_not_what_the_header_claims() {
    let mut b = BatchBuilder::new(NOW)
        .record(None, Some(b"a"))
        .record(None, Some(b"b"))
        .timestamp_delta(7)
        .build();
    build::set_timestamps(&mut b, NOW, 1 << 62);
    let v = validate_batch(&b, &config()).unwrap();
    assert_eq!(v.max_timestamp, NOW + 7);
    assert!(v.needs_rewrite());
    v.rewrite(&mut b);
    let h = BatchHeader::validate(&b).unwrap();
    assert_eq!(h.max_timestamp, NOW + 7);
}

#[test]
fn log_append_time_from_a_client_is_cleared_on_a_create_time_topic() {
    let mut b = good();
    build::set_attributes(&mut b, 0x08);
    let v = validate_batch(&b, &config()).unwrap();
    assert!(v.clear_log_append_time);
    v.rewrite(&mut b);
    assert_eq!(BatchHeader::validate(&b).unwrap().attributes, 0);
}

#[test]
fn a_compacted_topic_needs_keys() {
    let c = ValidationConfig {
        compacted: true,
        ..config()
    };
    let r = refused_with(&good(), &c);
    assert_eq!(r.code, ErrorCode::INVALID_RECORD);
    assert_eq!(
        r.record_errors,
        vec![(
            1,
            Some("Compacted topic cannot accept message without key in topic partition t-0".into())
        )]
    );
    assert!(r
        .message
        .unwrap()
        .starts_with("One or more records have been rejected due to 1 record errors in total"));
}

#[test]
fn no_byte_of_a_batch_can_panic_the_validator() {
    for codec in [Compression::None, Compression::Gzip, Compression::Lz4] {
        let good = BatchBuilder::new(NOW)
            .compression(codec)
            .record(Some(b"key"), Some(b"value"))
            .header(b"h", Some(b"v"))
            .record(None, None)
            .build();
        for at in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                if at >= 21 {
                    build::recrc(&mut b);
                }
                let _ = validate_batch(&b, &config());
            }
        }
    }
}
