//! The walker must cover exactly what the codec encodes, at every version we
//! accept, with every array non-empty; and must refuse impossible counts.

use super::check;
use crate::versions::SUPPORTED;
use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn encode<T: Encodable>(m: &T, v: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    m.encode(&mut b, v).unwrap();
    b.to_vec()
}

/// A request of `key` with one element in every array, encoded at `v`.
fn sample(key: ApiKey, v: i16) -> Option<Vec<u8>> {
    Some(match key {
        ApiKey::Produce => {
            let mut p = produce_request::PartitionProduceData::default();
            p.index = 1;
            p.records = Some(bytes::Bytes::from_static(b"records"));
            let mut t = produce_request::TopicProduceData::default();
            t.name = tn("topic");
            t.partition_data = vec![p.clone(), p];
            let mut r = ProduceRequest::default();
            r.transactional_id = Some(TransactionalId(sb("tx")));
            r.topic_data = vec![t];
            encode(&r, v)
        }
        ApiKey::Fetch => {
            let p = fetch_request::FetchPartition::default();
            let mut t = fetch_request::FetchTopic::default();
            t.topic = tn("topic");
            t.partitions = vec![p.clone(), p];
            let mut f = fetch_request::ForgottenTopic::default();
            f.topic = tn("gone");
            f.partitions = vec![1, 2];
            let mut r = FetchRequest::default();
            r.topics = vec![t];
            if v >= 7 {
                r.forgotten_topics_data = vec![f];
            }
            r.rack_id = sb("rack");
            encode(&r, v)
        }
        ApiKey::ListOffsets => {
            let p = list_offsets_request::ListOffsetsPartition::default();
            let mut t = list_offsets_request::ListOffsetsTopic::default();
            t.name = tn("topic");
            t.partitions = vec![p.clone(), p];
            let mut r = ListOffsetsRequest::default();
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::Metadata => {
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(tn("topic"));
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![t.clone(), t]);
            encode(&r, v)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if v >= 4 {
                r.coordinator_keys = vec![sb("a"), sb("bb")];
            } else {
                r.key = sb("group");
            }
            encode(&r, v)
        }
        ApiKey::CreateTopics => {
            let mut a = create_topics_request::CreatableReplicaAssignment::default();
            a.broker_ids = vec![BrokerId(0), BrokerId(1)];
            let mut c = create_topics_request::CreatableTopicConfig::default();
            c.name = sb("retention.ms");
            c.value = Some(sb("1"));
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = tn("topic");
            t.assignments = vec![a];
            t.configs = vec![c];
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            if v >= 6 {
                let mut t = delete_topics_request::DeleteTopicState::default();
                t.name = Some(tn("topic"));
                r.topics = vec![t];
            } else {
                r.topic_names = vec![tn("a"), tn("b")];
            }
            encode(&r, v)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transactional_id = Some(TransactionalId(sb("tx")));
            encode(&r, v)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            t.topic = tn("topic");
            t.partitions = vec![p.clone(), p];
            let mut r = OffsetForLeaderEpochRequest::default();
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::DescribeConfigs => {
            let mut res = describe_configs_request::DescribeConfigsResource::default();
            res.resource_name = sb("topic");
            res.configuration_keys = Some(vec![sb("a"), sb("b")]);
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![res];
            encode(&r, v)
        }
        ApiKey::CreatePartitions => {
            let mut a = create_partitions_request::CreatePartitionsAssignment::default();
            a.broker_ids = vec![BrokerId(0)];
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = tn("topic");
            t.assignments = Some(vec![a]);
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::DescribeCluster => encode(&DescribeClusterRequest::default(), v),
        ApiKey::JoinGroup => {
            let mut p = join_group_request::JoinGroupRequestProtocol::default();
            p.name = sb("range");
            p.metadata = bytes::Bytes::from_static(b"meta");
            let mut r = JoinGroupRequest::default();
            r.group_id = GroupId(sb("g"));
            r.member_id = sb("m");
            r.protocol_type = sb("consumer");
            if v >= 5 {
                r.group_instance_id = Some(sb("i"));
            }
            r.protocols = vec![p.clone(), {
                p.name = sb("roundrobin");
                p
            }];
            if v >= 8 {
                r.reason = Some(sb("why"));
            }
            encode(&r, v)
        }
        ApiKey::SyncGroup => {
            let mut a = sync_group_request::SyncGroupRequestAssignment::default();
            a.member_id = sb("m");
            a.assignment = bytes::Bytes::from_static(b"a");
            let mut r = SyncGroupRequest::default();
            r.group_id = GroupId(sb("g"));
            r.member_id = sb("m");
            if v >= 5 {
                r.protocol_type = Some(sb("consumer"));
                r.protocol_name = Some(sb("range"));
            }
            r.assignments = vec![a.clone(), a];
            encode(&r, v)
        }
        ApiKey::Heartbeat => {
            let mut r = HeartbeatRequest::default();
            r.group_id = GroupId(sb("g"));
            r.member_id = sb("m");
            encode(&r, v)
        }
        ApiKey::LeaveGroup => {
            let mut r = LeaveGroupRequest::default();
            r.group_id = GroupId(sb("g"));
            if v <= 2 {
                r.member_id = sb("m");
            } else {
                let mut mi = leave_group_request::MemberIdentity::default();
                mi.member_id = sb("m");
                r.members = vec![mi.clone(), mi];
            }
            encode(&r, v)
        }
        ApiKey::OffsetCommit => {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.committed_metadata = Some(sb("md"));
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.name = tn("topic");
            t.partitions = vec![p.clone(), p];
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(sb("g"));
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            if v <= 7 {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = tn("topic");
                t.partition_indexes = vec![0, 1];
                r.group_id = GroupId(sb("g"));
                r.topics = Some(vec![t]);
            } else {
                let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
                t.name = tn("topic");
                t.partition_indexes = vec![0, 1];
                let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                g.group_id = GroupId(sb("g"));
                g.topics = Some(vec![t]);
                r.groups = vec![g.clone(), g];
            }
            encode(&r, v)
        }
        ApiKey::ListGroups => {
            let mut r = ListGroupsRequest::default();
            if v >= 4 {
                r.states_filter = vec![sb("Stable")];
            }
            if v >= 5 {
                r.types_filter = vec![sb("classic")];
            }
            encode(&r, v)
        }
        ApiKey::DescribeGroups => {
            let mut r = DescribeGroupsRequest::default();
            r.groups = vec![GroupId(sb("a")), GroupId(sb("b"))];
            encode(&r, v)
        }
        ApiKey::DeleteGroups => {
            let mut r = DeleteGroupsRequest::default();
            r.groups_names = vec![GroupId(sb("a")), GroupId(sb("b"))];
            encode(&r, v)
        }
        ApiKey::OffsetDelete => {
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = tn("topic");
            t.partitions = vec![offset_delete_request::OffsetDeleteRequestPartition::default(); 2];
            let mut r = OffsetDeleteRequest::default();
            r.group_id = GroupId(sb("g"));
            r.topics = vec![t];
            encode(&r, v)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let mut tp = consumer_group_heartbeat_request::TopicPartitions::default();
            tp.partitions = vec![0, 1];
            let mut r = ConsumerGroupHeartbeatRequest::default();
            r.group_id = GroupId(sb("g"));
            r.member_id = sb("m");
            r.instance_id = Some(sb("i"));
            r.subscribed_topic_names = Some(vec![tn("a"), tn("b")]);
            if v >= 1 {
                r.subscribed_topic_regex = Some(sb("a.*"));
            }
            r.server_assignor = Some(sb("uniform"));
            r.topic_partitions = Some(vec![tp.clone(), tp]);
            encode(&r, v)
        }
        ApiKey::ConsumerGroupDescribe => {
            let mut r = ConsumerGroupDescribeRequest::default();
            r.group_ids = vec![GroupId(sb("a")), GroupId(sb("b"))];
            encode(&r, v)
        }
        ApiKey::DeleteRecords => {
            let mut t = delete_records_request::DeleteRecordsTopic::default();
            t.name = tn("topic");
            t.partitions = vec![delete_records_request::DeleteRecordsPartition::default(); 2];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![t.clone(), t];
            encode(&r, v)
        }
        ApiKey::AlterConfigs => {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = sb("retention.ms");
            c.value = Some(sb("1"));
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_name = sb("topic");
            res.configs = vec![
                c.clone(),
                alter_configs_request::AlterableConfig::default(),
                c,
            ];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![res.clone(), res];
            encode(&r, v)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = sb("retention.ms");
            c.value = Some(sb("1"));
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_name = sb("topic");
            res.configs = vec![
                c.clone(),
                incremental_alter_configs_request::AlterableConfig::default(),
                c,
            ];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![res.clone(), res];
            encode(&r, v)
        }
        ApiKey::DescribeLogDirs => {
            let mut t = describe_log_dirs_request::DescribableLogDirTopic::default();
            t.topic = tn("topic");
            t.partitions = vec![0, 1];
            let mut r = DescribeLogDirsRequest::default();
            r.topics = Some(vec![t.clone(), t]);
            encode(&r, v)
        }
        ApiKey::DescribeProducers => {
            let mut t = describe_producers_request::TopicRequest::default();
            t.name = tn("topic");
            t.partition_indexes = vec![0, 1];
            let mut r = DescribeProducersRequest::default();
            r.topics = vec![t.clone(), t];
            encode(&r, v)
        }
        _ => return None,
    })
}

#[test]
fn the_walk_covers_exactly_what_the_codec_encodes_at_every_accepted_version() {
    for &(key, min, max) in SUPPORTED {
        let lowest = crate::versions::lowest_accepted(key).unwrap_or(min);
        for v in lowest..=max {
            // A version that only changes meaning is encoded in its layout;
            // one the codec does not know, as the sweep lays it out by hand.
            let body = if crate::versions::hand_request(key, v) {
                if key == ApiKey::ApiVersions {
                    continue; // read before any walk (decode::decode_api_versions)
                }
                let t = crate::sweep::Target {
                    topic: "topic".into(),
                    topic_id: [7; 16],
                    group: "group".into(),
                    batch: bytes::Bytes::new(),
                    node_id: 0,
                };
                crate::newer_client::request_body(key, v, &t)
                    .unwrap()
                    .to_vec()
            } else {
                let Some(body) = sample(key, crate::versions::layout(key, v)) else {
                    continue;
                };
                body
            };
            let covered =
                check(key as i16, v, &body).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
            assert_eq!(covered, body.len(), "{key:?} v{v}");
        }
    }
}

#[test]
fn an_array_count_beyond_the_remaining_bytes_is_refused() {
    // Produce v3: null transactional id, acks, timeout, then a topic array that
    // claims i32::MAX entries.
    let mut body = vec![0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30];
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.extend_from_slice(b"tiny");
    assert!(check(0, 3, &body).is_err());
    // The fuzz finding: Fetch v4 with a partition array of 2^31-ish entries.
    let found = [
        0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xf4, 0, 0, 0, 1, 0, 0x10, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0,
        0, 0, 0, 0, 1, 0, 4, 0, 0, 0, 1, 0, 4, 0x73, 0x65, 0x65, 0x64, 0xff, 0, 0,
    ];
    assert!(check(1, 4, &found).is_err());
}

#[test]
fn a_string_longer_than_kafka_allows_is_refused_even_compact() {
    // A ConsumerGroupHeartbeat (flexible: compact strings, whose varint length
    // could claim far more than 32767 bytes) with a 40,000-byte member id.
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(sb("g"));
    r.member_id = sb(&"m".repeat(40_000));
    r.member_epoch = 0;
    let body = encode(&r, 1);
    let e = check(68, 1, &body).unwrap_err();
    assert!(e.contains("longer than 32767"), "{e}");
    r.member_id = sb(&"m".repeat(32_767));
    assert!(check(68, 1, &encode(&r, 1)).is_ok());
}

/// Found by the fuzz target: Fetch v17 with a partition's replica directory
/// id (tag 0, a uuid) declared as 0 bytes. The codec reads 16, from then on
/// reads other offsets than the walk did, and met a forgotten-topics count of
/// billions that the walk never saw.
#[test]
fn a_known_tagged_field_must_declare_the_size_of_its_type() {
    let hex = "000100110401000000000050756500100020e520202020202022202020200005020102030405060708090a0b0c0d0e0f10032020010101017e0101000000000000000000000000fb000000000000000000000700000000000000000000000000000000000000000000000020ecd0d0d0d0d0d0d0d0d0d0d0d0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000fdffffffffffffff0000210000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010120012001200120202020ecd0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d020200076070000eefffc00000000000000000000000000000000000000000000000000000000000020";
    let frame: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // Header v2: key, version, correlation id, an empty client id, no tags.
    assert_eq!(&frame[..4], &[0, 1, 0, 17]);
    let body = &frame[11..];
    let refused = check(1, 17, body).unwrap_err();
    assert!(refused.contains("tagged field 0"), "{refused}");
    assert!(crate::decode_request(bytes::Bytes::from(frame)).is_err());
}
