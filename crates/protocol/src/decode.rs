//! Wire request -> domain request.

use crate::{versions, RequestHeader};
use bytes::Bytes;
use cohort_types::api::*;
use cohort_types::TopicId;
use kafka_protocol::messages::{self as m, ApiKey};
use kafka_protocol::protocol::{Decodable, StrBytes};

#[derive(Debug)]
pub enum Decoded {
    /// ApiVersions is answered from this crate's own table; what the request
    /// asked decides how (see `ApiVersionsAsk`).
    ApiVersions(ApiVersionsAsk),
    Request(Request),
}

#[derive(Debug, PartialEq)]
pub enum ApiVersionsAsk {
    /// A version above ours: the KIP-511 downgrade answer.
    Unsupported,
    /// v3+ with a client software name or version Kafka refuses
    /// (INVALID_REQUEST), or v5+ with only one of cluster id and node id.
    Invalid,
    /// A request to answer; from v5 it may name the cluster and node the
    /// client expects to reach (REBOOTSTRAP_REQUIRED when they differ).
    Valid { expects: Option<(String, i32)> },
}

#[derive(Debug)]
pub enum DecodeError {
    /// The header itself could not be read: nothing can be answered.
    Malformed(String),
    /// A known API at a version we do not speak, or an API we do not serve. Kafka
    /// closes the connection for these (only ApiVersions gets an answer).
    Unsupported { api_key: i16, api_version: i16 },
    /// The header was fine but the body was not.
    BadBody {
        header: RequestHeader,
        reason: String,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(r) => write!(f, "malformed request header: {r}"),
            DecodeError::Unsupported {
                api_key,
                api_version,
            } => {
                write!(f, "unsupported api key {api_key} version {api_version}")
            }
            DecodeError::BadBody { header, reason } => write!(
                f,
                "malformed body for api key {} v{}: {reason}",
                header.api_key, header.api_version
            ),
        }
    }
}

/// Decodes one frame (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, Decoded), DecodeError> {
    if frame.len() < 4 {
        return Err(DecodeError::Malformed("frame shorter than a header".into()));
    }
    let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(api_key_raw).map_err(|_| DecodeError::Unsupported {
        api_key: api_key_raw,
        api_version,
    })?;

    if api_key == ApiKey::ApiVersions {
        return decode_api_versions(frame, api_version);
    }
    if !versions::accepts(api_key, api_version) {
        return Err(DecodeError::Unsupported {
            api_key: api_key_raw,
            api_version,
        });
    }
    let header_version = api_key.request_header_version(api_version);
    let wire_header = m::RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let header = to_header(&wire_header);
    if let Err(reason) = crate::guard::check(api_key_raw, api_version, &frame) {
        return Err(DecodeError::BadBody { header, reason });
    }
    let decoded = if versions::hand_request(api_key, api_version) {
        decode_newer(api_key, frame).map_err(anyhow_like::Error)
    } else {
        decode_body(api_key, api_version, &mut frame)
    };
    match decoded {
        Ok(request) => Ok((header, Decoded::Request(request))),
        Err(e) => Err(DecodeError::BadBody {
            header,
            reason: e.to_string(),
        }),
    }
}

/// The requests `newer` reads by hand (ApiVersions is answered separately).
fn decode_newer(api_key: ApiKey, body: Bytes) -> Result<Request, String> {
    use cohort_types::group::GroupRequest;
    let (request, ids) = match api_key {
        ApiKey::OffsetCommit => {
            let (r, ids) = crate::newer::read_body(body, crate::newer::offset_commit_request)?;
            (GroupRequest::OffsetCommit(r), ids)
        }
        ApiKey::OffsetFetch => {
            let (r, ids) = crate::newer::read_body(body, crate::newer::offset_fetch_request)?;
            (GroupRequest::OffsetFetch(r), ids)
        }
        other => return Err(format!("{other:?} has no hand layout")),
    };
    Ok(Request::GroupByTopicId { request, ids })
}

fn to_header(h: &m::RequestHeader) -> RequestHeader {
    RequestHeader {
        api_key: h.request_api_key,
        api_version: h.request_api_version,
        correlation_id: h.correlation_id,
        client_id: h.client_id.as_ref().map(|s| s.to_string()),
    }
}

fn decode_api_versions(
    mut frame: Bytes,
    api_version: i16,
) -> Result<(RequestHeader, Decoded), DecodeError> {
    let max = versions::SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == ApiKey::ApiVersions)
        .map(|&(_, _, max)| max)
        .unwrap_or(0);
    if api_version > max || api_version < 0 {
        // A newer client: its header and body may be shaped in ways we do not know.
        // KIP-511: read just the correlation id (header v1 prefix is stable) and
        // answer with a v0 body carrying UNSUPPORTED_VERSION and our range.
        if frame.len() < 8 {
            return Err(DecodeError::Malformed("short ApiVersions header".into()));
        }
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let header = RequestHeader {
            api_key: ApiKey::ApiVersions as i16,
            api_version,
            correlation_id,
            client_id: None,
        };
        return Ok((header, Decoded::ApiVersions(ApiVersionsAsk::Unsupported)));
    }
    let header_version = ApiKey::ApiVersions.request_header_version(api_version);
    let wire_header = m::RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let header = to_header(&wire_header);
    let bad_body = |reason: String| DecodeError::BadBody {
        header: header.clone(),
        reason,
    };
    let (name, version, cluster_id, node_id) =
        if versions::hand_request(ApiKey::ApiVersions, api_version) {
            let r = crate::newer::read_body(frame, crate::newer::api_versions_request)
                .map_err(bad_body)?;
            (
                r.client_software_name,
                r.client_software_version,
                r.cluster_id,
                r.node_id,
            )
        } else {
            let r = m::ApiVersionsRequest::decode(&mut frame, api_version)
                .map_err(|e| bad_body(e.to_string()))?;
            (
                s(&r.client_software_name),
                s(&r.client_software_version),
                None,
                -1,
            )
        };
    let ask = if api_version >= 5 && cluster_id.is_some() != (node_id != -1) {
        ApiVersionsAsk::Invalid
    } else if api_version >= 3 && !(valid_software(&name) && valid_software(&version)) {
        ApiVersionsAsk::Invalid
    } else {
        ApiVersionsAsk::Valid {
            expects: cluster_id.map(|c| (c, node_id)),
        }
    };
    Ok((header, Decoded::ApiVersions(ask)))
}

/// Kafka's rule for a client software name or version (KIP-511):
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software(x: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let b = x.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => {
            alnum(f) && alnum(l) && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'.')
        }
        _ => false,
    }
}

fn s(x: &StrBytes) -> String {
    x.as_str().to_string()
}

fn id(u: &uuid::Uuid) -> TopicId {
    TopicId(*u.as_bytes())
}

fn body<T: Decodable>(buf: &mut Bytes, version: i16) -> anyhow_like::Result<T> {
    // Bytes left after the body are ignored, as Kafka ignores them: librdkafka
    // 2.16 sends some Metadata v12 requests with three extra bytes.
    T::decode(buf, version).map_err(|e| anyhow_like::Error(e.to_string()))
}

/// A tiny error type so this crate does not need `anyhow` in its public surface.
mod anyhow_like {
    #[derive(Debug)]
    pub struct Error(pub String);
    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    pub type Result<T> = std::result::Result<T, Error>;
}

/// An AlterConfigs-style request as the domain's `AlterConfigsRequest`.
macro_rules! alter_configs_request {
    ($r:expr, $incremental:expr, $op:expr) => {
        Request::AlterConfigs(AlterConfigsRequest {
            incremental: $incremental,
            validate_only: $r.validate_only,
            resources: $r
                .resources
                .iter()
                .map(|res| AlterConfigsResource {
                    resource_type: res.resource_type,
                    name: s(&res.resource_name),
                    changes: res
                        .configs
                        .iter()
                        .map(|c| ConfigChange {
                            name: s(&c.name),
                            op: $op(c),
                            value: c.value.as_ref().map(s),
                        })
                        .collect(),
                })
                .collect(),
        })
    };
}

fn decode_body(key: ApiKey, v: i16, buf: &mut Bytes) -> anyhow_like::Result<Request> {
    Ok(match key {
        ApiKey::Metadata => {
            let r: m::MetadataRequest = body(buf, v)?;
            let topics = match r.topics {
                // v0 has no null: an empty list there means every topic.
                Some(t) if v == 0 && t.is_empty() => None,
                Some(t) => Some(
                    t.iter()
                        .map(|t| match &t.name {
                            Some(n) => TopicRef::Name(n.0.to_string()),
                            None => TopicRef::Id(id(&t.topic_id)),
                        })
                        .collect(),
                ),
                None => None,
            };
            // v0-3 have no flag: those versions always auto-create.
            let allow = if v < 4 {
                true
            } else {
                r.allow_auto_topic_creation
            };
            Request::Metadata(MetadataRequest {
                topics,
                allow_auto_topic_creation: allow,
            })
        }
        ApiKey::CreateTopics => {
            let r: m::CreateTopicsRequest = body(buf, v)?;
            Request::CreateTopics(CreateTopicsRequest {
                validate_only: r.validate_only,
                topics: r
                    .topics
                    .iter()
                    .map(|t| NewTopic {
                        name: t.name.0.to_string(),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        assignments: t
                            .assignments
                            .iter()
                            .map(|a| {
                                (
                                    a.partition_index,
                                    a.broker_ids.iter().map(|b| b.0).collect(),
                                )
                            })
                            .collect(),
                        configs: t
                            .configs
                            .iter()
                            .map(|c| (s(&c.name), c.value.as_ref().map(s)))
                            .collect(),
                    })
                    .collect(),
            })
        }
        ApiKey::DeleteTopics => {
            let r: m::DeleteTopicsRequest = body(buf, v)?;
            let topics = if v >= 6 {
                r.topics
                    .iter()
                    .map(|t| match &t.name {
                        Some(n) => TopicRef::Name(n.0.to_string()),
                        None => TopicRef::Id(id(&t.topic_id)),
                    })
                    .collect()
            } else {
                r.topic_names
                    .iter()
                    .map(|n| TopicRef::Name(n.0.to_string()))
                    .collect()
            };
            Request::DeleteTopics(DeleteTopicsRequest { topics })
        }
        ApiKey::CreatePartitions => {
            let r: m::CreatePartitionsRequest = body(buf, v)?;
            Request::CreatePartitions(CreatePartitionsRequest {
                validate_only: r.validate_only,
                topics: r
                    .topics
                    .iter()
                    .map(|t| (t.name.0.to_string(), t.count))
                    .collect(),
            })
        }
        ApiKey::Produce => {
            let r: m::ProduceRequest = body(buf, v)?;
            Request::Produce(ProduceRequest {
                api_version: v,
                transactional_id: r.transactional_id.as_ref().map(|t| t.0.to_string()),
                acks: r.acks,
                timeout_ms: r.timeout_ms,
                topics: r
                    .topic_data
                    .into_iter()
                    .map(|t| ProduceTopic {
                        topic: if v >= 13 {
                            TopicRef::Id(id(&t.topic_id))
                        } else {
                            TopicRef::Name(t.name.0.to_string())
                        },
                        partitions: t
                            .partition_data
                            .into_iter()
                            .map(|p| (p.index, p.records))
                            .collect(),
                    })
                    .collect(),
            })
        }
        ApiKey::Fetch => {
            let r: m::FetchRequest = body(buf, v)?;
            Request::Fetch(FetchRequest {
                max_wait_ms: r.max_wait_ms,
                min_bytes: r.min_bytes,
                // v0-2 had no response limit; every version we accept has one.
                max_bytes: r.max_bytes,
                isolation_level: r.isolation_level,
                topics: r
                    .topics
                    .iter()
                    .map(|t| FetchTopic {
                        topic: if v >= 13 {
                            TopicRef::Id(id(&t.topic_id))
                        } else {
                            TopicRef::Name(t.topic.0.to_string())
                        },
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| FetchPartition {
                                partition: p.partition,
                                current_leader_epoch: p.current_leader_epoch,
                                fetch_offset: p.fetch_offset,
                                partition_max_bytes: p.partition_max_bytes,
                            })
                            .collect(),
                    })
                    .collect(),
            })
        }
        ApiKey::ListOffsets => {
            let r: m::ListOffsetsRequest = body(buf, versions::layout(key, v))?;
            Request::ListOffsets(ListOffsetsRequest {
                api_version: v,
                isolation_level: r.isolation_level,
                topics: r
                    .topics
                    .iter()
                    .map(|t| {
                        let parts = t
                            .partitions
                            .iter()
                            .map(|p| (p.partition_index, p.timestamp));
                        (t.name.0.to_string(), parts.collect())
                    })
                    .collect(),
            })
        }
        ApiKey::InitProducerId => {
            let r: m::InitProducerIdRequest = body(buf, v)?;
            Request::InitProducerId(InitProducerIdRequest {
                transactional_id: r.transactional_id.as_ref().map(|t| t.0.to_string()),
                transaction_timeout_ms: r.transaction_timeout_ms,
                producer_id: r.producer_id.0,
                producer_epoch: r.producer_epoch,
            })
        }
        ApiKey::OffsetForLeaderEpoch => {
            let r: m::OffsetForLeaderEpochRequest = body(buf, v)?;
            Request::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest {
                topics: r
                    .topics
                    .iter()
                    .map(|t| {
                        let parts = t.partitions.iter().map(|p| (p.partition, p.leader_epoch));
                        (t.topic.0.to_string(), parts.collect())
                    })
                    .collect(),
            })
        }
        ApiKey::FindCoordinator => {
            let r: m::FindCoordinatorRequest = body(buf, v)?;
            let keys = if v >= 4 {
                r.coordinator_keys.iter().map(s).collect()
            } else {
                vec![s(&r.key)]
            };
            Request::FindCoordinator(FindCoordinatorRequest {
                key_type: r.key_type,
                keys,
            })
        }
        ApiKey::DescribeCluster => {
            let _: m::DescribeClusterRequest = body(buf, v)?;
            Request::DescribeCluster
        }
        ApiKey::DescribeConfigs => {
            let r: m::DescribeConfigsRequest = body(buf, v)?;
            Request::DescribeConfigs(DescribeConfigsRequest {
                include_synonyms: r.include_synonyms,
                include_documentation: r.include_documentation,
                resources: r
                    .resources
                    .iter()
                    .map(|res| ConfigResource {
                        resource_type: res.resource_type,
                        name: s(&res.resource_name),
                        keys: res
                            .configuration_keys
                            .as_ref()
                            .map(|k| k.iter().map(s).collect()),
                    })
                    .collect(),
            })
        }
        ApiKey::DeleteRecords => {
            let r: m::DeleteRecordsRequest = body(buf, v)?;
            Request::DeleteRecords(DeleteRecordsRequest {
                topics: r
                    .topics
                    .iter()
                    .map(|t| {
                        (
                            t.name.0.to_string(),
                            t.partitions
                                .iter()
                                .map(|p| (p.partition_index, p.offset))
                                .collect(),
                        )
                    })
                    .collect(),
            })
        }
        ApiKey::DescribeProducers => {
            let r: m::DescribeProducersRequest = body(buf, v)?;
            Request::DescribeProducers(
                r.topics
                    .iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect(),
            )
        }
        ApiKey::DescribeLogDirs => {
            let r: m::DescribeLogDirsRequest = body(buf, versions::layout(key, v))?;
            Request::DescribeLogDirs(r.topics.map(|ts| {
                ts.iter()
                    .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                    .collect()
            }))
        }
        // The same fields in two generated types; AlterConfigs only sets.
        ApiKey::IncrementalAlterConfigs => {
            let r: m::IncrementalAlterConfigsRequest = body(buf, v)?;
            alter_configs_request!(
                r,
                true,
                |c: &m::incremental_alter_configs_request::AlterableConfig| c.config_operation
            )
        }
        ApiKey::AlterConfigs => {
            let r: m::AlterConfigsRequest = body(buf, v)?;
            alter_configs_request!(r, false, |_: &m::alter_configs_request::AlterableConfig| {
                CONFIG_SET
            })
        }
        ApiKey::JoinGroup
        | ApiKey::SyncGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::ListGroups
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetDelete
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe => {
            Request::Group(crate::decode_group::decode(key, v, buf).map_err(anyhow_like::Error)?)
        }
        other => return Err(anyhow_like::Error(format!("{other:?} is not translated"))),
    })
}
