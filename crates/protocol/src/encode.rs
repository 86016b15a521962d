//! Domain answer -> wire response, framed and ready to write.

use crate::{versions, RequestHeader};
use bytes::{BufMut, Bytes, BytesMut};
use cohort_types::api::*;
use cohort_types::{ErrorCode, TopicId};
use kafka_protocol::messages::{self as m, ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn osb(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(sb)
}

fn tn(s: &str) -> TopicName {
    TopicName(sb(s))
}

fn uuid(id: &TopicId) -> uuid::Uuid {
    uuid::Uuid::from_bytes(id.0)
}

/// Frames `body` behind a response header of the version `api_key`/`version` uses.
fn frame<T: Encodable>(
    header: &RequestHeader,
    body: &T,
    header_version: i16,
) -> Result<Bytes, String> {
    let mut wire_header = m::ResponseHeader::default();
    wire_header.correlation_id = header.correlation_id;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0); // size, patched below
    wire_header
        .encode(&mut buf, header_version)
        .map_err(|e| e.to_string())?;
    let key =
        ApiKey::try_from(header.api_key).map_err(|_| format!("api key {}", header.api_key))?;
    body.encode(&mut buf, crate::versions::layout(key, header.api_version))
        .map_err(|e| e.to_string())?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// How an ApiVersions request is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ApiVersionsAnswer {
    /// Every API and version Cohort serves.
    Full,
    /// KIP-511 downgrade: a v0 body with UNSUPPORTED_VERSION and ApiVersions'
    /// own range, so the client retries at a version both sides know.
    Downgrade,
    /// An error and no APIs (INVALID_REQUEST, REBOOTSTRAP_REQUIRED), as Kafka.
    Error(ErrorCode),
}

pub fn api_versions_response(header: &RequestHeader, answer: ApiVersionsAnswer) -> Bytes {
    let mut r = m::ApiVersionsResponse::default();
    let mut version = header.api_version;
    let range = |key: ApiKey, min: i16, max: i16| {
        let mut v = m::api_versions_response::ApiVersion::default();
        v.api_key = key as i16;
        v.min_version = min;
        v.max_version = max;
        v
    };
    match answer {
        ApiVersionsAnswer::Full => {
            r.api_keys = versions::SUPPORTED
                .iter()
                .map(|&(k, min, max)| range(k, min, max))
                .collect();
        }
        ApiVersionsAnswer::Downgrade => {
            r.error_code = ErrorCode::UNSUPPORTED_VERSION.0;
            let &(k, min, max) = versions::SUPPORTED
                .iter()
                .find(|(k, _, _)| *k == ApiKey::ApiVersions)
                .unwrap();
            r.api_keys = vec![range(k, min, max)];
            version = 0;
        }
        ApiVersionsAnswer::Error(code) => r.error_code = code.0,
    }
    let h = RequestHeader {
        api_version: version,
        ..header.clone()
    };
    // The ApiVersions response header is always v0, even for flexible versions, so
    // that a client can read it before it knows what we support.
    frame(&h, &r, 0).expect("ApiVersions response always encodes")
}

/// Fills an AlterConfigs-style answer (`$ty`, results in `$module`).
macro_rules! alter_configs_response {
    ($r:expr, $ty:ty, $module:path) => {{
        use $module as x;
        let mut out = <$ty>::default();
        out.responses = $r
            .iter()
            .map(|res| {
                let mut one = x::AlterConfigsResourceResponse::default();
                one.error_code = res.error.0;
                one.error_message = osb(&res.message);
                one.resource_type = res.resource_type;
                one.resource_name = sb(&res.name);
                one
            })
            .collect();
        out
    }};
}

/// Encodes a domain answer at the request's version.
pub fn encode_response(header: &RequestHeader, response: &Response) -> Result<Bytes, String> {
    let key = ApiKey::try_from(header.api_key).map_err(|_| "unknown api key".to_string())?;
    let v = header.api_version;
    let hv = key.response_header_version(v);
    match response {
        // Layouts the codec does not know come first: it would write an older one.
        _ if versions::hand_response(key, v) => {
            let mut body = BytesMut::new();
            crate::newer::encode(response, key, &mut body)?;
            frame(header, &Raw(body.freeze()), hv)
        }
        Response::Metadata(r) => frame(header, &metadata(r, v), hv),
        Response::CreateTopics(r) => frame(header, &create_topics(r), hv),
        Response::DeleteTopics(r) => {
            let mut out = m::DeleteTopicsResponse::default();
            out.responses = r
                .iter()
                .map(|t| {
                    let mut d = m::delete_topics_response::DeletableTopicResult::default();
                    d.name = t.name.as_deref().map(tn);
                    d.topic_id = uuid(&t.id);
                    d.error_code = t.error.0;
                    d.error_message = osb(&t.message);
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::CreatePartitions(r) => {
            let mut out = m::CreatePartitionsResponse::default();
            out.results = r
                .iter()
                .map(|t| {
                    let mut d =
                        m::create_partitions_response::CreatePartitionsTopicResult::default();
                    d.name = tn(&t.name);
                    d.error_code = t.error.0;
                    d.error_message = osb(&t.message);
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::Produce(r) => frame(header, &produce(r, header.api_version), hv),
        Response::Fetch(r) => frame(header, &fetch(r), hv),
        Response::ListOffsets(r) => {
            let mut out = m::ListOffsetsResponse::default();
            out.topics = r
                .iter()
                .map(|t| {
                    let mut d = m::list_offsets_response::ListOffsetsTopicResponse::default();
                    d.name = tn(&t.name);
                    d.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut x =
                                m::list_offsets_response::ListOffsetsPartitionResponse::default();
                            x.partition_index = p.partition;
                            x.error_code = p.error.0;
                            x.timestamp = p.timestamp;
                            x.offset = p.offset;
                            // Only v4+ carries the epoch; setting it on an
                            // older version makes the answer unencodable.
                            if header.api_version >= 4 {
                                x.leader_epoch = p.leader_epoch;
                            }
                            x
                        })
                        .collect();
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::InitProducerId(r) => {
            let mut out = m::InitProducerIdResponse::default();
            out.error_code = r.error.0;
            out.producer_id = m::ProducerId(r.producer_id);
            out.producer_epoch = r.producer_epoch;
            frame(header, &out, hv)
        }
        Response::OffsetForLeaderEpoch(r) => {
            let mut out = m::OffsetForLeaderEpochResponse::default();
            out.topics = r
                .iter()
                .map(|t| {
                    let mut d =
                        m::offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
                    d.topic = tn(&t.name);
                    d.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut x =
                                m::offset_for_leader_epoch_response::EpochEndOffset::default();
                            x.partition = p.partition;
                            x.error_code = p.error.0;
                            x.leader_epoch = p.leader_epoch;
                            x.end_offset = p.end_offset;
                            x
                        })
                        .collect();
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::FindCoordinator(r) => frame(header, &find_coordinator(r, v), hv),
        Response::DescribeCluster(c) => {
            let mut out = m::DescribeClusterResponse::default();
            out.cluster_id = sb(&c.cluster_id);
            out.controller_id = BrokerId(c.controller_id);
            out.endpoint_type = 1;
            out.brokers = c
                .brokers
                .iter()
                .map(|b| {
                    let mut d = m::describe_cluster_response::DescribeClusterBroker::default();
                    d.broker_id = BrokerId(b.node_id);
                    d.host = sb(&b.host);
                    d.port = b.port;
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::DescribeConfigs(r) => frame(header, &describe_configs(r, v), hv),
        Response::DeleteRecords(r) => {
            let mut out = m::DeleteRecordsResponse::default();
            out.topics = r
                .iter()
                .map(|t| {
                    let mut d = m::delete_records_response::DeleteRecordsTopicResult::default();
                    d.name = tn(&t.name);
                    d.partitions = t
                        .partitions
                        .iter()
                        .map(|&(index, low, error)| {
                            let mut x =
                                m::delete_records_response::DeleteRecordsPartitionResult::default();
                            x.partition_index = index;
                            x.low_watermark = low;
                            x.error_code = error.0;
                            x
                        })
                        .collect();
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::DescribeProducers(r) => {
            use m::describe_producers_response as dp;
            let mut out = m::DescribeProducersResponse::default();
            out.topics = r
                .iter()
                .map(|t| {
                    let mut d = dp::TopicResponse::default();
                    d.name = tn(&t.name);
                    d.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut x = dp::PartitionResponse::default();
                            x.partition_index = p.partition;
                            x.error_code = p.error.0;
                            x.error_message = osb(&p.message);
                            x.active_producers = p
                                .producers
                                .iter()
                                .map(|&(id, epoch, seq, ts)| {
                                    let mut y = dp::ProducerState::default();
                                    y.producer_id = m::ProducerId(id);
                                    y.producer_epoch = epoch as i32;
                                    y.last_sequence = seq;
                                    y.last_timestamp = ts;
                                    y.coordinator_epoch = -1;
                                    y.current_txn_start_offset = -1;
                                    y
                                })
                                .collect();
                            x
                        })
                        .collect();
                    d
                })
                .collect();
            frame(header, &out, hv)
        }
        Response::DescribeLogDirs(r) => {
            use m::describe_log_dirs_response as dl;
            let mut out = m::DescribeLogDirsResponse::default();
            let mut dir = dl::DescribeLogDirsResult::default();
            dir.error_code = r.error.0;
            dir.log_dir = sb(&r.path);
            dir.topics = r
                .topics
                .iter()
                .map(|(name, parts)| {
                    let mut t = dl::DescribeLogDirsTopic::default();
                    t.name = tn(name);
                    t.partitions = parts
                        .iter()
                        .map(|&(index, size)| {
                            let mut p = dl::DescribeLogDirsPartition::default();
                            p.partition_index = index;
                            p.partition_size = size;
                            p.offset_lag = 0;
                            p.is_future_key = false;
                            p
                        })
                        .collect();
                    t
                })
                .collect();
            if v >= 4 {
                dir.total_bytes = r.total_bytes;
                dir.usable_bytes = r.usable_bytes;
            }
            out.results = vec![dir];
            frame(header, &out, hv)
        }
        // The two answers have the same fields in two generated types.
        Response::AlterConfigs(r) if key == ApiKey::IncrementalAlterConfigs => frame(
            header,
            &alter_configs_response!(
                r,
                m::IncrementalAlterConfigsResponse,
                m::incremental_alter_configs_response
            ),
            hv,
        ),
        Response::AlterConfigs(r) => frame(
            header,
            &alter_configs_response!(r, m::AlterConfigsResponse, m::alter_configs_response),
            hv,
        ),
        Response::GroupByTopicId { .. } => Err(format!("{key:?} v{v} does not name topics by id")),
        Response::Group(g) => {
            let mut body = BytesMut::new();
            crate::encode_group::encode(g, v, &mut body)?;
            frame(header, &Raw(body.freeze()), hv)
        }
    }
}

/// An already-encoded body.
struct Raw(Bytes);

impl Encodable for Raw {
    fn encode<B: kafka_protocol::protocol::buf::ByteBufMut>(
        &self,
        buf: &mut B,
        _version: i16,
    ) -> anyhow::Result<()> {
        buf.put_slice(&self.0);
        Ok(())
    }
    fn compute_size(&self, _version: i16) -> anyhow::Result<usize> {
        Ok(self.0.len())
    }
}

fn metadata(r: &MetadataResponse, v: i16) -> m::MetadataResponse {
    let mut out = m::MetadataResponse::default();
    out.brokers = r
        .brokers
        .iter()
        .map(|b| {
            let mut d = m::metadata_response::MetadataResponseBroker::default();
            d.node_id = BrokerId(b.node_id);
            d.host = sb(&b.host);
            d.port = b.port;
            d
        })
        .collect();
    out.cluster_id = Some(sb(&r.cluster_id));
    out.controller_id = BrokerId(r.controller_id);
    out.cluster_authorized_operations = i32::MIN;
    out.topics = r
        .topics
        .iter()
        .map(|t| {
            let mut d = m::metadata_response::MetadataResponseTopic::default();
            d.error_code = t.error.0;
            // Before v12 the name is not nullable: an unknown id is answered by name "".
            d.name = match (&t.name, v >= 12) {
                (Some(n), _) => Some(tn(n)),
                (None, true) => None,
                (None, false) => Some(tn("")),
            };
            d.topic_id = uuid(&t.id);
            d.topic_authorized_operations = i32::MIN;
            d.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut x = m::metadata_response::MetadataResponsePartition::default();
                    x.error_code = p.error.0;
                    x.partition_index = p.partition;
                    x.leader_id = BrokerId(p.leader);
                    x.leader_epoch = p.leader_epoch;
                    x.replica_nodes = vec![BrokerId(p.leader)];
                    x.isr_nodes = vec![BrokerId(p.leader)];
                    x
                })
                .collect();
            d
        })
        .collect();
    out
}

fn create_topics(r: &[CreateTopicResult]) -> m::CreateTopicsResponse {
    let mut out = m::CreateTopicsResponse::default();
    out.topics = r
        .iter()
        .map(|t| {
            let mut d = m::create_topics_response::CreatableTopicResult::default();
            d.name = tn(&t.name);
            d.topic_id = uuid(&t.id);
            d.error_code = t.error.0;
            d.error_message = osb(&t.message);
            d.num_partitions = t.num_partitions;
            d.replication_factor = t.replication_factor;
            d.configs = Some(
                t.configs
                    .iter()
                    .map(|c| {
                        let mut x = m::create_topics_response::CreatableTopicConfigs::default();
                        x.name = sb(&c.name);
                        x.value = osb(&c.value);
                        x.read_only = c.read_only;
                        x.config_source = c.source;
                        x.is_sensitive = c.sensitive;
                        x
                    })
                    .collect(),
            );
            d
        })
        .collect();
    out
}

/// Fields a version does not have are left at their defaults: the codec refuses
/// to encode a set field the version lacks.
fn produce(r: &ProduceResponse, v: i16) -> m::ProduceResponse {
    let mut out = m::ProduceResponse::default();
    out.responses = r
        .topics
        .iter()
        .map(|t| {
            let mut d = m::produce_response::TopicProduceResponse::default();
            if v >= 13 {
                d.topic_id = uuid(&t.id);
            } else {
                d.name = tn(&t.name);
            }
            d.partition_responses = t
                .partitions
                .iter()
                .map(|p| {
                    let mut x = m::produce_response::PartitionProduceResponse::default();
                    x.index = p.partition;
                    x.error_code = p.error.0;
                    x.base_offset = p.base_offset;
                    x.log_append_time_ms = p.log_append_time;
                    if v >= 5 {
                        x.log_start_offset = p.log_start_offset;
                    }
                    if v >= 8 {
                        x.error_message = osb(&p.message);
                        x.record_errors = p
                            .record_errors
                            .iter()
                            .map(|(i, m)| {
                                let mut e =
                                    m::produce_response::BatchIndexAndErrorMessage::default();
                                e.batch_index = *i;
                                e.batch_index_error_message = osb(m);
                                e
                            })
                            .collect();
                    }
                    x
                })
                .collect();
            d
        })
        .collect();
    out
}

fn fetch(r: &FetchResponse) -> m::FetchResponse {
    let mut out = m::FetchResponse::default();
    out.error_code = r.error.0;
    // Session id 0: no incremental fetch session was created; clients then send
    // full fetch requests, which is always allowed (KIP-227).
    out.session_id = 0;
    out.responses = r
        .topics
        .iter()
        .map(|t| {
            let mut d = m::fetch_response::FetchableTopicResponse::default();
            d.topic = tn(&t.name);
            d.topic_id = uuid(&t.id);
            d.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut x = m::fetch_response::PartitionData::default();
                    x.partition_index = p.partition;
                    x.error_code = p.error.0;
                    x.high_watermark = p.high_watermark;
                    x.last_stable_offset = p.last_stable_offset;
                    x.log_start_offset = p.log_start_offset;
                    x.aborted_transactions = Some(vec![]);
                    x.preferred_read_replica = BrokerId(-1);
                    x.records = Some(p.records.clone());
                    x
                })
                .collect();
            d
        })
        .collect();
    out
}

fn find_coordinator(r: &[CoordinatorResult], v: i16) -> m::FindCoordinatorResponse {
    let mut out = m::FindCoordinatorResponse::default();
    if v >= 4 {
        out.coordinators = r
            .iter()
            .map(|c| {
                let mut d = m::find_coordinator_response::Coordinator::default();
                d.key = sb(&c.key);
                d.error_code = c.error.0;
                d.error_message = osb(&c.message);
                match &c.node {
                    Some(n) => {
                        d.node_id = BrokerId(n.node_id);
                        d.host = sb(&n.host);
                        d.port = n.port;
                    }
                    None => {
                        d.node_id = BrokerId(-1);
                        d.port = -1;
                    }
                }
                d
            })
            .collect();
    } else if let Some(c) = r.first() {
        out.error_code = c.error.0;
        out.error_message = osb(&c.message);
        match &c.node {
            Some(n) => {
                out.node_id = BrokerId(n.node_id);
                out.host = sb(&n.host);
                out.port = n.port;
            }
            None => {
                out.node_id = BrokerId(-1);
                out.port = -1;
            }
        }
    }
    out
}

fn describe_configs(r: &[DescribeConfigsResult], v: i16) -> m::DescribeConfigsResponse {
    let mut out = m::DescribeConfigsResponse::default();
    out.results = r
        .iter()
        .map(|res| {
            let mut d = m::describe_configs_response::DescribeConfigsResult::default();
            d.error_code = res.error.0;
            d.error_message = osb(&res.message);
            d.resource_type = res.resource_type;
            d.resource_name = sb(&res.name);
            d.configs = res
                .entries
                .iter()
                .map(|e| {
                    let mut x =
                        m::describe_configs_response::DescribeConfigsResourceResult::default();
                    x.name = sb(&e.name);
                    x.value = osb(&e.value);
                    x.read_only = e.read_only;
                    x.config_source = e.source;
                    x.is_sensitive = e.sensitive;
                    if v >= 3 {
                        x.config_type = e.config_type;
                    }
                    {
                        x.synonyms = e
                            .synonyms
                            .iter()
                            .map(|y| {
                                let mut z =
                                    m::describe_configs_response::DescribeConfigsSynonym::default();
                                z.name = sb(&y.name);
                                z.value = osb(&y.value);
                                z.source = y.source;
                                z
                            })
                            .collect();
                    }
                    x
                })
                .collect();
            d
        })
        .collect();
    out
}
