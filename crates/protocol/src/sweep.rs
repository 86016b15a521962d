//! The version sweep's client half: for any API and version Cohort advertises,
//! a valid request with every field that version carries set (optional ones,
//! tagged ones, and an unknown tagged field a newer client might send), and a
//! strict check that the answer decodes at that version. The broker's tests send
//! these to a real server; an API is advertised only up to what this covers.

use crate::versions;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use std::collections::BTreeMap;
use uuid::Uuid;

pub use kafka_protocol::messages::ApiKey;

/// What the requests point at: a topic that exists (with its id) and a group
/// name prefix, so each request meets real state.
pub struct Target {
    pub topic: String,
    pub topic_id: [u8; 16],
    pub group: String,
    /// A valid record batch to produce.
    pub batch: Bytes,
    /// The broker's node id (for broker config resources).
    pub node_id: i32,
}

/// Every (API key, version) the broker advertises and accepts.
pub fn advertised() -> Vec<(ApiKey, i16)> {
    let mut out = Vec::new();
    for &(key, min, max) in versions::SUPPORTED {
        for v in versions::lowest_accepted(key).unwrap_or(min)..=max {
            out.push((key, v));
        }
    }
    out
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

fn topic(t: &Target) -> TopicName {
    TopicName(s(&t.topic))
}

fn flexible(key: ApiKey, v: i16) -> bool {
    key.request_header_version(v) >= 2
}

/// An unknown tagged field, as a newer client might send: a broker must skip it.
fn extra(key: ApiKey, v: i16) -> BTreeMap<i32, Bytes> {
    let mut m = BTreeMap::new();
    if flexible(key, v) {
        m.insert(9_999, Bytes::from_static(b"from-the-future"));
    }
    m
}

/// The framed request (size prefix, header, body).
pub fn request(key: ApiKey, v: i16, correlation_id: i32, t: &Target) -> Result<Bytes, String> {
    if versions::hand_request(key, v) {
        return Ok(frame(
            key,
            v,
            correlation_id,
            &crate::newer_client::request_body(key, v, t)?,
        ));
    }
    let mut body = BytesMut::new();
    build(key, v, t)?
        .encode(&mut body, versions::layout(key, v))
        .map_err(|e| format!("{key:?} v{v} body: {e}"))?;
    Ok(frame(key, v, correlation_id, &body))
}

/// Frames a request body behind the header `key` and `v` use (with the same
/// unknown tagged field the sweep always sends).
pub fn frame(key: ApiKey, v: i16, correlation_id: i32, body: &[u8]) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = v;
    header.correlation_id = correlation_id;
    header.client_id = Some(s("cohort-sweep"));
    header.unknown_tagged_fields = extra(key, v);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(v))
        .expect("a header encodes");
    buf.put_slice(body);
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

pub use crate::newer_client::{api_versions_v5, offset_commit_v10, offset_fetch_v10};

/// What a checked answer says: the error codes of the data it carries (the
/// topic and partition errors of Produce, Fetch, ListOffsets, Metadata and
/// OffsetCommit), and the topic ids Metadata gave.
#[derive(Debug, Default)]
pub struct Answer {
    pub data_errors: Vec<i16>,
    pub topic_ids: Vec<(String, [u8; 16])>,
    /// DescribeGroups: (group, error code, error message, state).
    pub groups: Vec<(String, i16, Option<String>, String)>,
    /// DescribeProducers: (partition, producer id, epoch, last sequence).
    pub producers: Vec<(i32, i64, i32, i32)>,
    /// DescribeLogDirs: (topic, partition, bytes).
    pub log_dir_sizes: Vec<(String, i32, i64)>,
    /// OffsetCommit and OffsetFetch v10: (group, topic id, partition,
    /// committed offset, error); OffsetCommit leaves group and offset empty.
    pub offsets: Vec<(String, [u8; 16], i32, i64, i16)>,
    /// Metadata (v2+): the cluster id, and the node id of the first broker.
    pub cluster_id: Option<String>,
    pub node_id: Option<i32>,
}

/// Decodes an answer (without its size prefix) at the version asked, and
/// insists on the correlation id and on every byte being consumed.
pub fn check_response(
    key: ApiKey,
    v: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> Result<Answer, String> {
    use kafka_protocol::protocol::Decodable;
    let h = ResponseHeader::decode(&mut frame, key.response_header_version(v))
        .map_err(|e| format!("{key:?} v{v} response header: {e}"))?;
    if h.correlation_id != correlation_id {
        return Err(format!(
            "{key:?} v{v}: correlation id {} for {correlation_id}",
            h.correlation_id
        ));
    }
    if versions::hand_response(key, v) {
        return crate::newer_client::check(key, frame)
            .map_err(|e| format!("{key:?} v{v} response: {e}"));
    }
    let r = ResponseKind::decode(key, &mut frame, versions::layout(key, v))
        .map_err(|e| format!("{key:?} v{v} response: {e}"))?;
    if !frame.is_empty() {
        return Err(format!(
            "{key:?} v{v}: {} bytes left after the response",
            frame.len()
        ));
    }
    let mut a = Answer::default();
    match r {
        ResponseKind::Produce(r) => {
            a.data_errors = r
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
                .collect()
        }
        ResponseKind::Fetch(r) => {
            a.data_errors.push(r.error_code);
            a.data_errors.extend(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::ListOffsets(r) => {
            a.data_errors = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect()
        }
        ResponseKind::OffsetCommit(r) => {
            a.data_errors = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect()
        }
        ResponseKind::ApiVersions(r) => a.data_errors.push(r.error_code),
        // By name (v8-9): the topic id is left zero.
        ResponseKind::OffsetFetch(r) => {
            for g in &r.groups {
                for t in &g.topics {
                    for p in &t.partitions {
                        a.offsets.push((
                            g.group_id.to_string(),
                            [0; 16],
                            p.partition_index,
                            p.committed_offset,
                            p.error_code,
                        ));
                    }
                }
            }
        }
        ResponseKind::Metadata(r) => {
            a.cluster_id = r.cluster_id.as_ref().map(|c| c.to_string());
            a.node_id = r.brokers.first().map(|b| b.node_id.0);
            for t in &r.topics {
                a.data_errors.push(t.error_code);
                a.data_errors
                    .extend(t.partitions.iter().map(|p| p.error_code));
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                a.topic_ids.push((name, *t.topic_id.as_bytes()));
            }
        }
        ResponseKind::DescribeProducers(r) => {
            // Partition 7 does not exist: UNKNOWN_TOPIC_OR_PARTITION is right.
            a.data_errors = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.partition_index != 7)
                        .map(|p| p.error_code)
                })
                .collect();
            for p in r.topics.iter().flat_map(|t| &t.partitions) {
                for x in &p.active_producers {
                    a.producers.push((
                        p.partition_index,
                        x.producer_id.0,
                        x.producer_epoch,
                        x.last_sequence,
                    ));
                }
            }
        }
        ResponseKind::DescribeLogDirs(r) => {
            a.data_errors.push(r.error_code);
            a.data_errors.extend(r.results.iter().map(|d| d.error_code));
            for t in r.results.iter().flat_map(|d| &d.topics) {
                for p in &t.partitions {
                    a.log_dir_sizes.push((
                        t.name.0.to_string(),
                        p.partition_index,
                        p.partition_size,
                    ));
                }
            }
            if !r
                .results
                .iter()
                .any(|d| d.topics.iter().any(|t| t.name.0.as_str() == "sweep"))
            {
                a.data_errors.push(-1);
            }
        }
        ResponseKind::DeleteRecords(r) => {
            a.data_errors = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect()
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            a.data_errors = r.responses.iter().map(|x| x.error_code).collect()
        }
        ResponseKind::AlterConfigs(r) => {
            a.data_errors = r.responses.iter().map(|x| x.error_code).collect()
        }
        ResponseKind::DescribeConfigs(r) => {
            a.data_errors = r.results.iter().map(|x| x.error_code).collect()
        }
        ResponseKind::DescribeGroups(r) => {
            a.groups = r
                .groups
                .iter()
                .map(|g| {
                    let message = g.error_message.as_ref().map(|m| m.to_string());
                    (
                        g.group_id.0.to_string(),
                        g.error_code,
                        message,
                        g.group_state.to_string(),
                    )
                })
                .collect()
        }
        _ => {}
    }
    Ok(a)
}

fn build(key: ApiKey, v: i16, t: &Target) -> Result<RequestKind, String> {
    let x = extra(key, v);
    let id = Uuid::from_bytes(t.topic_id);
    let group = format!("{}-{}-{v}", t.group, key as i16);
    Ok(match key {
        ApiKey::Produce => {
            let mut p = produce_request::PartitionProduceData::default();
            p.index = 0;
            p.records = Some(t.batch.clone());
            let mut tp = produce_request::TopicProduceData::default();
            if v >= 13 {
                tp.topic_id = id
            } else {
                tp.name = topic(t)
            }
            tp.partition_data = vec![p];
            let mut r = ProduceRequest::default();
            r.acks = -1;
            r.timeout_ms = 5_000;
            r.topic_data = vec![tp];
            r.unknown_tagged_fields = x;
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = 0;
            p.fetch_offset = 0;
            p.partition_max_bytes = 1 << 20;
            if v >= 5 {
                p.log_start_offset = -1
            }
            if v >= 9 {
                p.current_leader_epoch = 0
            }
            if v >= 12 {
                p.last_fetched_epoch = -1
            }
            if v >= 18 {
                p.high_watermark = -1
            }
            let mut ft = fetch_request::FetchTopic::default();
            if v >= 13 {
                ft.topic_id = id
            } else {
                ft.topic = topic(t)
            }
            ft.partitions = vec![p];
            let mut r = FetchRequest::default();
            if v <= 14 {
                r.replica_id = BrokerId(-1)
            }
            r.max_wait_ms = 0;
            r.min_bytes = 1;
            r.max_bytes = 1 << 20;
            r.isolation_level = 1;
            if v >= 7 {
                r.session_id = 0;
                r.session_epoch = -1
            }
            if v >= 11 {
                r.rack_id = s("rack-a")
            }
            if v >= 12 {
                r.cluster_id = Some(s("not-this-cluster"))
            }
            r.topics = vec![ft];
            r.unknown_tagged_fields = x;
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut p = list_offsets_request::ListOffsetsPartition::default();
            p.partition_index = 0;
            // The newest sentinel this version may use (KIP-734, 405, 1005, 1023).
            p.timestamp = match v {
                11.. => -6,
                9..=10 => -5,
                8 => -4,
                7 => -3,
                _ => -1,
            };
            if v >= 4 {
                p.current_leader_epoch = 0
            }
            let mut lt = list_offsets_request::ListOffsetsTopic::default();
            lt.name = topic(t);
            lt.partitions = vec![p];
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(-1);
            if v >= 2 {
                r.isolation_level = 1
            }
            if v >= 10 {
                r.timeout_ms = 5_000
            }
            r.topics = vec![lt];
            r.unknown_tagged_fields = x;
            RequestKind::ListOffsets(r)
        }
        ApiKey::Metadata => {
            let mut mt = metadata_request::MetadataRequestTopic::default();
            mt.name = Some(topic(t));
            let mut r = MetadataRequest::default();
            r.topics = Some(vec![mt]);
            if v >= 4 {
                r.allow_auto_topic_creation = false
            }
            if (8..=10).contains(&v) {
                r.include_cluster_authorized_operations = true
            }
            if v >= 8 {
                r.include_topic_authorized_operations = true
            }
            r.unknown_tagged_fields = x;
            RequestKind::Metadata(r)
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if v <= 3 {
                r.key = s(&group)
            } else {
                r.coordinator_keys = vec![s(&group), s("other")]
            }
            r.key_type = 0;
            r.unknown_tagged_fields = x;
            RequestKind::FindCoordinator(r)
        }
        ApiKey::ApiVersions => {
            let mut r = ApiVersionsRequest::default();
            if v >= 3 {
                r.client_software_name = s("cohort-sweep");
                r.client_software_version = s("1.0");
            }
            r.unknown_tagged_fields = x;
            RequestKind::ApiVersions(r)
        }
        ApiKey::CreateTopics => {
            let mut c = create_topics_request::CreatableTopicConfig::default();
            c.name = s("retention.ms");
            c.value = Some(s("3600000"));
            let mut ct = create_topics_request::CreatableTopic::default();
            ct.name = TopicName(s(&format!("{}-created-{v}", t.topic)));
            ct.num_partitions = 2;
            ct.replication_factor = 1;
            ct.configs = vec![c];
            let mut r = CreateTopicsRequest::default();
            r.topics = vec![ct];
            r.timeout_ms = 5_000;
            r.validate_only = v % 2 == 0;
            r.unknown_tagged_fields = x;
            RequestKind::CreateTopics(r)
        }
        ApiKey::DeleteTopics => {
            let mut r = DeleteTopicsRequest::default();
            let name = format!("{}-absent-{v}", t.topic);
            if v >= 6 {
                let mut d = delete_topics_request::DeleteTopicState::default();
                d.name = Some(TopicName(s(&name)));
                r.topics = vec![d];
            } else {
                r.topic_names = vec![TopicName(s(&name))];
            }
            r.timeout_ms = 5_000;
            r.unknown_tagged_fields = x;
            RequestKind::DeleteTopics(r)
        }
        ApiKey::InitProducerId => {
            let mut r = InitProducerIdRequest::default();
            r.transaction_timeout_ms = 60_000;
            if v >= 3 {
                r.producer_id = ProducerId(-1);
                r.producer_epoch = -1
            }
            r.unknown_tagged_fields = x;
            RequestKind::InitProducerId(r)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.partition = 0;
            p.current_leader_epoch = 0;
            p.leader_epoch = 0;
            let mut ot = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            ot.topic = topic(t);
            ot.partitions = vec![p];
            let mut r = OffsetForLeaderEpochRequest::default();
            if v >= 3 {
                r.replica_id = BrokerId(-1)
            }
            r.topics = vec![ot];
            r.unknown_tagged_fields = x;
            RequestKind::OffsetForLeaderEpoch(r)
        }
        ApiKey::DescribeConfigs => {
            let mut topic_res = describe_configs_request::DescribeConfigsResource::default();
            topic_res.resource_type = 2;
            topic_res.resource_name = s(&t.topic);
            let mut broker_res = describe_configs_request::DescribeConfigsResource::default();
            broker_res.resource_type = 4;
            broker_res.resource_name = s(&t.node_id.to_string());
            broker_res.configuration_keys = Some(vec![s("log.retention.ms")]);
            let mut r = DescribeConfigsRequest::default();
            r.resources = vec![topic_res, broker_res];
            r.include_synonyms = true;
            if v >= 3 {
                r.include_documentation = true
            }
            r.unknown_tagged_fields = x;
            RequestKind::DescribeConfigs(r)
        }
        ApiKey::DescribeProducers => {
            let mut tr = describe_producers_request::TopicRequest::default();
            tr.name = topic(t);
            tr.partition_indexes = vec![0, 1, 7];
            let mut r = DescribeProducersRequest::default();
            r.topics = vec![tr];
            r.unknown_tagged_fields = x;
            RequestKind::DescribeProducers(r)
        }
        ApiKey::DescribeLogDirs => {
            let mut r = DescribeLogDirsRequest::default();
            // Odd versions name the topic, even ones ask for everything.
            if v % 2 == 1 {
                let mut dt = describe_log_dirs_request::DescribableLogDirTopic::default();
                dt.topic = topic(t);
                dt.partitions = vec![0, 1];
                r.topics = Some(vec![dt]);
            } else {
                r.topics = None;
            }
            r.unknown_tagged_fields = x;
            RequestKind::DescribeLogDirs(r)
        }
        ApiKey::DeleteRecords => {
            let mut p = delete_records_request::DeleteRecordsPartition::default();
            p.partition_index = 1;
            p.offset = 0;
            let mut dt = delete_records_request::DeleteRecordsTopic::default();
            dt.name = topic(t);
            dt.partitions = vec![p];
            let mut r = DeleteRecordsRequest::default();
            r.topics = vec![dt];
            r.timeout_ms = 5_000;
            r.unknown_tagged_fields = x;
            RequestKind::DeleteRecords(r)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut set = incremental_alter_configs_request::AlterableConfig::default();
            set.name = s("retention.ms");
            set.config_operation = 0;
            set.value = Some(s("86400000"));
            let mut delete = incremental_alter_configs_request::AlterableConfig::default();
            delete.name = s("segment.ms");
            delete.config_operation = 1;
            delete.value = None;
            let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s(&t.topic);
            res.configs = vec![set, delete];
            let mut r = IncrementalAlterConfigsRequest::default();
            r.resources = vec![res];
            r.validate_only = true;
            r.unknown_tagged_fields = x;
            RequestKind::IncrementalAlterConfigs(r)
        }
        ApiKey::AlterConfigs => {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = s("retention.bytes");
            c.value = Some(s("1000000000"));
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = s(&t.topic);
            res.configs = vec![c];
            let mut r = AlterConfigsRequest::default();
            r.resources = vec![res];
            r.validate_only = true;
            r.unknown_tagged_fields = x;
            RequestKind::AlterConfigs(r)
        }
        ApiKey::CreatePartitions => {
            let mut ct = create_partitions_request::CreatePartitionsTopic::default();
            ct.name = topic(t);
            ct.count = 64;
            let mut r = CreatePartitionsRequest::default();
            r.topics = vec![ct];
            r.timeout_ms = 5_000;
            r.validate_only = true;
            r.unknown_tagged_fields = x;
            RequestKind::CreatePartitions(r)
        }
        ApiKey::DescribeCluster => {
            let mut r = DescribeClusterRequest::default();
            r.include_cluster_authorized_operations = true;
            if v >= 1 {
                r.endpoint_type = 1
            }
            if v >= 2 {
                r.include_fenced_brokers = true
            }
            r.unknown_tagged_fields = x;
            RequestKind::DescribeCluster(r)
        }
        _ => return crate::sweep_group::build(key, v, &group, t, x),
    })
}
