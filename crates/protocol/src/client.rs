//! The client side of a few requests, for Cohort's own tools (the throughput
//! bench, the lab's probes): encode a request, decode its answer. Versions are
//! fixed to ones every Kafka 4.x broker, Cohort included, accepts.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 5;

fn frame<T: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &T) -> Bytes {
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("cohort-tool"));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("header encodes");
    body.encode(&mut buf, version).expect("request encodes");
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// Strips the response header; returns the correlation id and the body.
fn open(key: ApiKey, version: i16, mut frame: Bytes) -> Result<(i32, Bytes), String> {
    let h = ResponseHeader::decode(&mut frame, key.response_header_version(version))
        .map_err(|e| e.to_string())?;
    Ok((h.correlation_id, frame))
}

pub fn produce_request(
    correlation_id: i32,
    topic: &str,
    partition: i32,
    batch: Bytes,
    acks: i16,
) -> Bytes {
    let mut p = produce_request::PartitionProduceData::default();
    p.index = partition;
    p.records = Some(batch);
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![p];
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 30_000;
    r.topic_data = vec![t];
    frame(ApiKey::Produce, PRODUCE_VERSION, correlation_id, &r)
}

/// (correlation id, [(partition, error code, base offset)]).
pub fn produce_response(frame: Bytes) -> Result<(i32, Vec<(i32, i16, i64)>), String> {
    let (corr, mut body) = open(ApiKey::Produce, PRODUCE_VERSION, frame)?;
    let r = ProduceResponse::decode(&mut body, PRODUCE_VERSION).map_err(|e| e.to_string())?;
    let parts = r
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (p.index, p.error_code, p.base_offset))
        })
        .collect();
    Ok((corr, parts))
}

pub fn fetch_request(
    correlation_id: i32,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
    max_wait_ms: i32,
) -> Bytes {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = max_bytes;
    p.current_leader_epoch = -1;
    p.last_fetched_epoch = -1;
    p.log_start_offset = -1;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = max_bytes;
    r.session_epoch = -1;
    r.topics = vec![t];
    frame(ApiKey::Fetch, FETCH_VERSION, correlation_id, &r)
}

/// One partition's answer to a fetch.
pub struct Fetched {
    pub error: i16,
    pub high_watermark: i64,
    pub records: Bytes,
}

pub fn fetch_response(frame: Bytes) -> Result<(i32, Vec<Fetched>), String> {
    let (corr, mut body) = open(ApiKey::Fetch, FETCH_VERSION, frame)?;
    let r = FetchResponse::decode(&mut body, FETCH_VERSION).map_err(|e| e.to_string())?;
    let parts = r
        .responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| Fetched {
            error: p.error_code,
            high_watermark: p.high_watermark,
            records: p.records.unwrap_or_default(),
        })
        .collect();
    Ok((corr, parts))
}

pub fn create_topic_request(correlation_id: i32, topic: &str, partitions: i32) -> Bytes {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 30_000;
    frame(
        ApiKey::CreateTopics,
        CREATE_TOPICS_VERSION,
        correlation_id,
        &r,
    )
}

/// The error code for the one topic created (36 TOPIC_ALREADY_EXISTS included).
pub fn create_topic_response(frame: Bytes) -> Result<i16, String> {
    let (_, mut body) = open(ApiKey::CreateTopics, CREATE_TOPICS_VERSION, frame)?;
    let r = CreateTopicsResponse::decode(&mut body, CREATE_TOPICS_VERSION)
        .map_err(|e| e.to_string())?;
    r.topics
        .first()
        .map(|t| t.error_code)
        .ok_or_else(|| "no topic in answer".into())
}

const DELETE_TOPICS_VERSION: i16 = 6;

pub fn delete_topic_request(correlation_id: i32, topic: &str) -> Bytes {
    let mut t = delete_topics_request::DeleteTopicState::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
    let mut r = DeleteTopicsRequest::default();
    r.topics = vec![t];
    r.timeout_ms = 30_000;
    frame(
        ApiKey::DeleteTopics,
        DELETE_TOPICS_VERSION,
        correlation_id,
        &r,
    )
}

/// The error code for the one topic deleted.
pub fn delete_topic_response(frame: Bytes) -> Result<i16, String> {
    let (_, mut body) = open(ApiKey::DeleteTopics, DELETE_TOPICS_VERSION, frame)?;
    let r = DeleteTopicsResponse::decode(&mut body, DELETE_TOPICS_VERSION)
        .map_err(|e| e.to_string())?;
    r.responses
        .first()
        .map(|t| t.error_code)
        .ok_or_else(|| "no topic in answer".into())
}

const CONSUMER_GROUP_HEARTBEAT_VERSION: i16 = 1;

/// A ConsumerGroupHeartbeat (v1: the member id is the client's). `join` makes
/// it a full first heartbeat subscribing to `topics`; otherwise it carries the
/// epoch and, when the member's partitions changed, what it owns now.
pub struct Heartbeat<'a> {
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub member_epoch: i32,
    pub join_topics: Option<&'a [String]>,
    pub owned: Option<&'a [(cohort_types::TopicId, Vec<i32>)]>,
}

pub fn consumer_group_heartbeat_request(correlation_id: i32, h: &Heartbeat) -> Bytes {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(StrBytes::from_string(h.group_id.to_string()));
    r.member_id = StrBytes::from_string(h.member_id.to_string());
    r.member_epoch = h.member_epoch;
    r.rebalance_timeout_ms = -1;
    if let Some(topics) = h.join_topics {
        r.rebalance_timeout_ms = 60_000;
        r.subscribed_topic_names = Some(
            topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect(),
        );
        r.topic_partitions = Some(vec![]);
    }
    if let Some(owned) = h.owned {
        r.topic_partitions = Some(
            owned
                .iter()
                .map(|(t, ps)| {
                    let mut tp = consumer_group_heartbeat_request::TopicPartitions::default();
                    tp.topic_id = uuid::Uuid::from_bytes(t.0);
                    tp.partitions = ps.clone();
                    tp
                })
                .collect(),
        );
    }
    frame(
        ApiKey::ConsumerGroupHeartbeat,
        CONSUMER_GROUP_HEARTBEAT_VERSION,
        correlation_id,
        &r,
    )
}

pub struct HeartbeatAnswer {
    pub correlation_id: i32,
    pub error: i16,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// None: unchanged since the last answer.
    pub assignment: Option<Vec<(cohort_types::TopicId, Vec<i32>)>>,
}

pub fn consumer_group_heartbeat_response(frame: Bytes) -> Result<HeartbeatAnswer, String> {
    let v = CONSUMER_GROUP_HEARTBEAT_VERSION;
    let (correlation_id, mut body) = open(ApiKey::ConsumerGroupHeartbeat, v, frame)?;
    let r = ConsumerGroupHeartbeatResponse::decode(&mut body, v).map_err(|e| e.to_string())?;
    Ok(HeartbeatAnswer {
        correlation_id,
        error: r.error_code,
        member_epoch: r.member_epoch,
        heartbeat_interval_ms: r.heartbeat_interval_ms,
        assignment: r.assignment.map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| {
                    (
                        cohort_types::TopicId(*t.topic_id.as_bytes()),
                        t.partitions.clone(),
                    )
                })
                .collect()
        }),
    })
}
