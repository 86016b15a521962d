//! The domain form of each request the broker answers, and of its answer. The
//! `protocol` crate fills these from whichever wire version the client spoke and
//! renders the answers back at that version, so nothing here knows versions except
//! where an answer's meaning depends on one (named explicitly).

use crate::group::{GroupRequest, GroupResponse};
use crate::{ErrorCode, TopicId};
use bytes::Bytes;

/// A topic named either way a request may name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(TopicId),
}

#[derive(Clone, Debug)]
pub enum Request {
    Metadata(MetadataRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    InitProducerId(InitProducerIdRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    FindCoordinator(FindCoordinatorRequest),
    DescribeCluster,
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    DeleteRecords(DeleteRecordsRequest),
    /// (topic, partitions) to describe.
    DescribeProducers(Vec<(String, Vec<i32>)>),
    /// None: every topic.
    DescribeLogDirs(Option<Vec<(String, Vec<i32>)>>),
    Group(GroupRequest),
    /// OffsetCommit and OffsetFetch from v10 name topics by id. `ids` holds
    /// one topic id per partition the request names, in order (OffsetFetch:
    /// group by group); the names are empty until the broker resolves them.
    /// The coordinator keys offsets by name, as Kafka's does.
    GroupByTopicId {
        request: GroupRequest,
        ids: Vec<TopicId>,
    },
}

#[derive(Clone, Debug)]
pub enum Response {
    Metadata(MetadataResponse),
    CreateTopics(Vec<CreateTopicResult>),
    DeleteTopics(Vec<DeleteTopicResult>),
    CreatePartitions(Vec<CreatePartitionsResult>),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(Vec<ListOffsetsTopicResult>),
    InitProducerId(InitProducerIdResponse),
    OffsetForLeaderEpoch(Vec<OffsetForLeaderEpochTopicResult>),
    FindCoordinator(Vec<CoordinatorResult>),
    DescribeCluster(ClusterDescription),
    DescribeConfigs(Vec<DescribeConfigsResult>),
    /// IncrementalAlterConfigs and AlterConfigs answer alike.
    AlterConfigs(Vec<AlterConfigsResult>),
    DeleteRecords(Vec<DeleteRecordsTopicResult>),
    DescribeProducers(Vec<ProducersTopicResult>),
    DescribeLogDirs(LogDirDescription),
    Group(GroupResponse),
    /// The answer to `Request::GroupByTopicId`: the coordinator's answer, each
    /// topic name's id, and the ids no topic has (UNKNOWN_TOPIC_ID).
    GroupByTopicId {
        response: GroupResponse,
        ids: std::collections::HashMap<String, TopicId>,
        unknown: Vec<UnknownTopicId>,
    },
}

/// Partitions a request named by a topic id no topic has.
#[derive(Clone, Debug, PartialEq)]
pub struct UnknownTopicId {
    /// For OffsetFetch, the index of the group that asked; 0 otherwise.
    pub group: usize,
    pub topic_id: TopicId,
    pub partitions: Vec<i32>,
}

/// The broker's own address, as every answer that names brokers needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerAddress {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

// ---------------------------------------------------------------- Metadata

#[derive(Clone, Debug)]
pub struct MetadataRequest {
    /// None asks for every topic.
    pub topics: Option<Vec<TopicRef>>,
    pub allow_auto_topic_creation: bool,
}

#[derive(Clone, Debug)]
pub struct MetadataResponse {
    pub brokers: Vec<BrokerAddress>,
    pub cluster_id: String,
    pub controller_id: i32,
    pub topics: Vec<TopicMetadata>,
}

#[derive(Clone, Debug)]
pub struct TopicMetadata {
    pub error: ErrorCode,
    pub name: Option<String>,
    pub id: TopicId,
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug)]
pub struct PartitionMetadata {
    pub error: ErrorCode,
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
}

// ---------------------------------------------------------------- Topic admin

#[derive(Clone, Debug)]
pub struct CreateTopicsRequest {
    pub topics: Vec<NewTopic>,
    pub validate_only: bool,
}

#[derive(Clone, Debug)]
pub struct NewTopic {
    pub name: String,
    /// -1 means the broker default.
    pub num_partitions: i32,
    /// -1 means the broker default.
    pub replication_factor: i16,
    /// Explicit replica assignments, which a single node can honour only if every
    /// replica list is exactly this node.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug)]
pub struct CreateTopicResult {
    pub name: String,
    pub id: TopicId,
    pub error: ErrorCode,
    pub message: Option<String>,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<ConfigEntry>,
}

#[derive(Clone, Debug)]
pub struct DeleteTopicsRequest {
    pub topics: Vec<TopicRef>,
}

#[derive(Clone, Debug)]
pub struct DeleteTopicResult {
    pub name: Option<String>,
    pub id: TopicId,
    pub error: ErrorCode,
    pub message: Option<String>,
}

#[derive(Clone, Debug)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<(String, i32)>,
    pub validate_only: bool,
}

#[derive(Clone, Debug)]
pub struct CreatePartitionsResult {
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
}

// ---------------------------------------------------------------- Produce

#[derive(Clone, Debug)]
pub struct ProduceRequest {
    /// The request's version: some answers name it.
    pub api_version: i16,
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Clone, Debug)]
pub struct ProduceTopic {
    /// By name up to v12, by id from v13.
    pub topic: TopicRef,
    pub partitions: Vec<(i32, Option<Bytes>)>,
}

#[derive(Clone, Debug, Default)]
pub struct ProduceResponse {
    pub topics: Vec<ProduceTopicResult>,
}

#[derive(Clone, Debug)]
pub struct ProduceTopicResult {
    pub name: String,
    pub id: TopicId,
    pub partitions: Vec<ProducePartitionResult>,
}

#[derive(Clone, Debug)]
pub struct ProducePartitionResult {
    pub partition: i32,
    pub error: ErrorCode,
    pub base_offset: i64,
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub message: Option<String>,
    /// (batch index, message) of each record that was refused (v8+).
    pub record_errors: Vec<(i32, Option<String>)>,
}

// ---------------------------------------------------------------- Fetch

#[derive(Clone, Debug)]
pub struct FetchRequest {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub isolation_level: i8,
    pub topics: Vec<FetchTopic>,
}

#[derive(Clone, Debug)]
pub struct FetchTopic {
    pub topic: TopicRef,
    pub partitions: Vec<FetchPartition>,
}

#[derive(Clone, Debug)]
pub struct FetchPartition {
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Clone, Debug, Default)]
pub struct FetchResponse {
    pub error: ErrorCode,
    pub topics: Vec<FetchTopicResult>,
}

impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode::NONE
    }
}

#[derive(Clone, Debug)]
pub struct FetchTopicResult {
    pub name: String,
    pub id: TopicId,
    pub partitions: Vec<FetchPartitionResult>,
}

#[derive(Clone, Debug)]
pub struct FetchPartitionResult {
    pub partition: i32,
    pub error: ErrorCode,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whole record batches exactly as stored.
    pub records: Bytes,
}

// ---------------------------------------------------------------- ListOffsets

/// Kafka's special timestamps in ListOffsets.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;
pub const EARLIEST_PENDING_UPLOAD_TIMESTAMP: i64 = -6;

#[derive(Clone, Debug)]
pub struct ListOffsetsRequest {
    /// Which timestamp sentinels the client may use depends on it.
    pub api_version: i16,
    pub isolation_level: i8,
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
}

#[derive(Clone, Debug)]
pub struct ListOffsetsTopicResult {
    pub name: String,
    pub partitions: Vec<ListOffsetsPartitionResult>,
}

#[derive(Clone, Debug)]
pub struct ListOffsetsPartitionResult {
    pub partition: i32,
    pub error: ErrorCode,
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

// ---------------------------------------------------------------- Producers

#[derive(Clone, Debug)]
pub struct InitProducerIdRequest {
    pub transactional_id: Option<String>,
    pub transaction_timeout_ms: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Clone, Debug)]
pub struct InitProducerIdResponse {
    pub error: ErrorCode,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

// ---------------------------------------------------------------- Leader epochs

#[derive(Clone, Debug)]
pub struct OffsetForLeaderEpochRequest {
    pub topics: Vec<(String, Vec<(i32, i32)>)>,
}

#[derive(Clone, Debug)]
pub struct OffsetForLeaderEpochTopicResult {
    pub name: String,
    pub partitions: Vec<EpochEndOffset>,
}

#[derive(Clone, Debug)]
pub struct EpochEndOffset {
    pub partition: i32,
    pub error: ErrorCode,
    pub leader_epoch: i32,
    pub end_offset: i64,
}

// ---------------------------------------------------------------- Coordinators

/// FindCoordinator's key type: 0 group, 1 transaction, 2 share.
#[derive(Clone, Debug)]
pub struct FindCoordinatorRequest {
    pub key_type: i8,
    pub keys: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct CoordinatorResult {
    pub key: String,
    pub error: ErrorCode,
    pub message: Option<String>,
    pub node: Option<BrokerAddress>,
}

// ---------------------------------------------------------------- Cluster and configs

#[derive(Clone, Debug)]
pub struct ClusterDescription {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerAddress>,
}

/// DescribeConfigs resource types, numbered as Kafka numbers them.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

#[derive(Clone, Debug)]
pub struct DescribeConfigsRequest {
    pub resources: Vec<ConfigResource>,
    pub include_synonyms: bool,
    pub include_documentation: bool,
}

#[derive(Clone, Debug)]
pub struct ConfigResource {
    pub resource_type: i8,
    pub name: String,
    /// None asks for every key.
    pub keys: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct DescribeConfigsResult {
    pub resource_type: i8,
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
    pub entries: Vec<ConfigEntry>,
}

/// DeleteRecords: move each partition's log start offset up to an offset
/// (-1: the high watermark).
#[derive(Clone, Debug)]
pub struct DeleteRecordsRequest {
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
}

#[derive(Clone, Debug)]
pub struct DeleteRecordsTopicResult {
    pub name: String,
    /// (partition, the new log start offset or -1, error).
    pub partitions: Vec<(i32, i64, ErrorCode)>,
}

#[derive(Clone, Debug)]
pub struct ProducersTopicResult {
    pub name: String,
    pub partitions: Vec<ProducersPartitionResult>,
}

#[derive(Clone, Debug)]
pub struct ProducersPartitionResult {
    pub partition: i32,
    pub error: ErrorCode,
    pub message: Option<String>,
    /// (producer id, epoch, last sequence, last timestamp).
    pub producers: Vec<(i64, i16, i32, i64)>,
}

/// The broker's one log directory (its data directory) and what it holds.
#[derive(Clone, Debug)]
pub struct LogDirDescription {
    pub path: String,
    pub error: ErrorCode,
    /// (topic, [(partition, bytes)]).
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
    pub total_bytes: i64,
    pub usable_bytes: i64,
}

/// IncrementalAlterConfigs (`incremental`) or the older AlterConfigs, which
/// replaces all of a resource's own values with the ones it names.
#[derive(Clone, Debug)]
pub struct AlterConfigsRequest {
    pub incremental: bool,
    pub validate_only: bool,
    pub resources: Vec<AlterConfigsResource>,
}

#[derive(Clone, Debug)]
pub struct AlterConfigsResource {
    pub resource_type: i8,
    pub name: String,
    pub changes: Vec<ConfigChange>,
}

#[derive(Clone, Debug)]
pub struct ConfigChange {
    pub name: String,
    /// Kafka's operation numbers: 0 set, 1 delete, 2 append, 3 subtract
    /// (AlterConfigs sets only). Anything else is refused.
    pub op: i8,
    pub value: Option<String>,
}

pub const CONFIG_SET: i8 = 0;
pub const CONFIG_DELETE: i8 = 1;
pub const CONFIG_APPEND: i8 = 2;
pub const CONFIG_SUBTRACT: i8 = 3;

#[derive(Clone, Debug)]
pub struct AlterConfigsResult {
    pub resource_type: i8,
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// Config sources, numbered as Kafka numbers them.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

#[derive(Clone, Debug)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub source: i8,
    pub sensitive: bool,
    /// Kafka's ConfigType numbering (1 boolean, 2 string, 3 int, 4 short, 5 long, ...).
    pub config_type: i8,
    /// Where the value could come from, highest precedence first.
    pub synonyms: Vec<ConfigSynonym>,
}

#[derive(Clone, Debug)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}
