//! Each hand layout against bytes Kafka 4.4's own message classes wrote
//! (`org.apache.kafka.common.message.*Data`, serialized with `MessageUtil`
//! at the version named), with the same field values.

use super::*;
use crate::sweep::ApiKey;

/// The topic id in every sample: 0x0102...10.
const ID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

fn hex(s: &str) -> Bytes {
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>(),
    )
}

const API_VERSIONS_REQUEST_V5: &str = "0c636f686f72742d7465737404312e30046162630000000100";
const OFFSET_COMMIT_REQUEST_V10: &str = "026700000005026d0269020102030405060708090a0b0c0d0e0f100200000002000000000000002a00000003056d657461000000";
const OFFSET_COMMIT_RESPONSE_V10: &str =
    "00000000020102030405060708090a0b0c0d0e0f1002000000020064000000";
const OFFSET_FETCH_REQUEST_V10: &str = "030267026d00000005020102030405060708090a0b0c0d0e0f100300000000000000020000026800ffffffff00000100";
const OFFSET_FETCH_RESPONSE_V10: &str = "00000000020267020102030405060708090a0b0c0d0e0f100300000000000000000000002a00000003056d65746100000000000002ffffffffffffffffffffffff010064000000000000";
const DESCRIBE_LOG_DIRS_RESPONSE_V5: &str = "000000000000020000032f6402027402000000000000000000000007000000000000000000000000000000000000640000000000000032000000";
const DELETE_GROUPS_RESPONSE_V3: &str = "000000000202670045000000";

#[test]
fn api_versions_v5_request() {
    let r = read_body(hex(API_VERSIONS_REQUEST_V5), api_versions_request).unwrap();
    assert_eq!(
        r,
        ApiVersionsV5 {
            client_software_name: "cohort-test".into(),
            client_software_version: "1.0".into(),
            cluster_id: Some("abc".into()),
            node_id: 1,
        }
    );
    // The sweep's own request reads back.
    let body = crate::newer_client::api_versions_v5("n", "1", None, -1);
    assert_eq!(read_body(body, api_versions_request).unwrap().node_id, -1);
}

#[test]
fn offset_commit_v10_request_names_topics_by_id() {
    let (r, ids) = read_body(hex(OFFSET_COMMIT_REQUEST_V10), offset_commit_request).unwrap();
    assert_eq!(
        (r.group_id.as_str(), r.generation_id, r.member_id.as_str()),
        ("g", 5, "m")
    );
    assert_eq!(r.group_instance_id.as_deref(), Some("i"));
    assert_eq!(ids, vec![TopicId(ID)]);
    let o = &r.offsets[0];
    assert_eq!(
        (o.partition.partition, o.offset, o.leader_epoch),
        (2, 42, 3)
    );
    assert_eq!(o.metadata.as_deref(), Some("meta"));
    assert!(o.partition.topic.is_empty() && r.group_id_not_found_supported);
}

#[test]
fn offset_commit_v10_answer() {
    let ids = HashMap::from([("t".to_string(), TopicId(ID))]);
    let mut buf = BytesMut::new();
    let results = vec![(TopicPartition::new("t", 2), ErrorCode::UNKNOWN_TOPIC_ID)];
    offset_commit_response(&results, &ids, &[], &mut buf).unwrap();
    assert_eq!(buf.freeze(), hex(OFFSET_COMMIT_RESPONSE_V10));
    // An id no topic has answers the same bytes.
    let unknown = [UnknownTopicId {
        group: 0,
        topic_id: TopicId(ID),
        partitions: vec![2],
    }];
    let mut buf = BytesMut::new();
    offset_commit_response(&[], &HashMap::new(), &unknown, &mut buf).unwrap();
    assert_eq!(buf.freeze(), hex(OFFSET_COMMIT_RESPONSE_V10));
    let a =
        crate::newer_client::check(ApiKey::OffsetCommit, hex(OFFSET_COMMIT_RESPONSE_V10)).unwrap();
    assert_eq!(a.offsets, vec![(String::new(), ID, 2, -1, 100)]);
}

#[test]
fn offset_fetch_v10_request_names_topics_by_id() {
    let (r, ids) = read_body(hex(OFFSET_FETCH_REQUEST_V10), offset_fetch_request).unwrap();
    assert_eq!(
        r.groups,
        vec![
            (
                "g".to_string(),
                Some(vec![TopicPartition::new("", 0), TopicPartition::new("", 2)])
            ),
            ("h".to_string(), None)
        ]
    );
    assert_eq!(r.members, vec![Some(("m".to_string(), 5)), None]);
    assert!(r.require_stable);
    assert_eq!(ids, vec![TopicId(ID), TopicId(ID)]);
}

#[test]
fn offset_fetch_v10_answer() {
    let ids = HashMap::from([("t".to_string(), TopicId(ID))]);
    let groups = vec![GroupOffsets {
        group_id: "g".into(),
        error: ErrorCode::NONE,
        partitions: vec![
            FetchedOffset {
                partition: TopicPartition::new("t", 0),
                offset: 42,
                leader_epoch: 3,
                metadata: Some("meta".into()),
                error: ErrorCode::NONE,
            },
            // A deleted topic has no id: left out.
            FetchedOffset {
                partition: TopicPartition::new("gone", 0),
                offset: 1,
                leader_epoch: -1,
                metadata: None,
                error: ErrorCode::NONE,
            },
        ],
    }];
    let unknown = [UnknownTopicId {
        group: 0,
        topic_id: TopicId(ID),
        partitions: vec![2],
    }];
    let mut buf = BytesMut::new();
    offset_fetch_response(&groups, &ids, &unknown, &mut buf).unwrap();
    assert_eq!(buf.freeze(), hex(OFFSET_FETCH_RESPONSE_V10));
    let a =
        crate::newer_client::check(ApiKey::OffsetFetch, hex(OFFSET_FETCH_RESPONSE_V10)).unwrap();
    assert_eq!(
        a.offsets,
        vec![("g".into(), ID, 0, 42, 0), ("g".into(), ID, 2, -1, 100)]
    );
}

#[test]
fn describe_log_dirs_v5_answer() {
    let dirs = LogDirDescription {
        path: "/d".into(),
        error: ErrorCode::NONE,
        topics: vec![("t".into(), vec![(0, 7)])],
        total_bytes: 100,
        usable_bytes: 50,
    };
    let mut buf = BytesMut::new();
    describe_log_dirs_response(&dirs, &mut buf);
    assert_eq!(buf.freeze(), hex(DESCRIBE_LOG_DIRS_RESPONSE_V5));
}

#[test]
fn delete_groups_v3_answer() {
    let mut buf = BytesMut::new();
    delete_groups_response(&[("g".into(), ErrorCode::GROUP_ID_NOT_FOUND)], &mut buf);
    assert_eq!(buf.freeze(), hex(DELETE_GROUPS_RESPONSE_V3));
    let a =
        crate::newer_client::check(ApiKey::DeleteGroups, hex(DELETE_GROUPS_RESPONSE_V3)).unwrap();
    assert_eq!(a.groups, vec![("g".into(), 69, None, String::new())]);
}

#[test]
fn truncated_requests_are_errors_not_panics() {
    for sample in [
        OFFSET_COMMIT_REQUEST_V10,
        OFFSET_FETCH_REQUEST_V10,
        API_VERSIONS_REQUEST_V5,
    ] {
        let full = hex(sample);
        for n in 0..full.len() - 1 {
            let cut = full.slice(..n);
            let _ = read_body(cut.clone(), offset_commit_request);
            let _ = read_body(cut.clone(), offset_fetch_request);
            assert!(
                read_body(cut, api_versions_request).is_err() || sample != API_VERSIONS_REQUEST_V5
            );
        }
    }
}
