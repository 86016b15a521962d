//! Metadata, topic administration, coordinators, cluster and config description.

use crate::topics::valid_topic_name;
use crate::{Broker, BrokerConfig};
use cohort_types::api::*;
use cohort_types::{ErrorCode, TopicId};
use std::collections::BTreeMap;

/// Kafka's topic configs with their defaults and ConfigType numbers. Cohort
/// enforces retention.ms, retention.bytes, segment.bytes, segment.ms,
/// index.interval.bytes and max.message.bytes; the rest are accepted and
/// reported so tools that set them work, and have no effect on a single node
/// whose durability is governed by the broker's fsync policy.
const TOPIC_CONFIGS: &[(&str, &str, i8)] = &[
    ("cleanup.policy", "delete", 7),
    ("compression.type", "producer", 2),
    ("delete.retention.ms", "86400000", 5),
    ("file.delete.delay.ms", "60000", 5),
    ("flush.messages", "9223372036854775807", 5),
    ("flush.ms", "9223372036854775807", 5),
    ("index.interval.bytes", "4096", 3),
    ("max.compaction.lag.ms", "9223372036854775807", 5),
    ("max.message.bytes", "1048588", 3),
    ("message.timestamp.after.max.ms", "3600000", 5),
    ("message.timestamp.before.max.ms", "9223372036854775807", 5),
    ("message.timestamp.type", "CreateTime", 2),
    ("min.cleanable.dirty.ratio", "0.5", 6),
    ("min.compaction.lag.ms", "0", 5),
    ("min.insync.replicas", "1", 3),
    ("preallocate", "false", 1),
    ("retention.bytes", "-1", 5),
    ("retention.ms", "604800000", 5),
    ("segment.bytes", "1073741824", 3),
    ("segment.index.bytes", "10485760", 3),
    ("segment.jitter.ms", "0", 5),
    ("segment.ms", "604800000", 5),
    ("unclean.leader.election.enable", "false", 1),
];

/// Values Cohort cannot honour are refused rather than silently ignored.
pub(crate) fn check_topic_config(name: &str, value: &str) -> Result<(), String> {
    let Some(&(_, _, ty)) = TOPIC_CONFIGS.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let numeric = matches!(ty, 3 | 4 | 5);
    if numeric && value.parse::<i64>().is_err() {
        return Err(format!("Invalid value {value} for configuration {name}"));
    }
    match (name, value) {
        ("cleanup.policy", v) if v != "delete" => Err(format!(
            "cleanup.policy={v} is not supported: Cohort does not compact topics"
        )),
        ("message.timestamp.type", v) if v != "CreateTime" => Err(format!(
            "message.timestamp.type={v} is not supported: Cohort keeps CreateTime"
        )),
        _ => Ok(()),
    }
}

impl Broker {
    pub(crate) fn topic_defaults(&self, name: &str) -> Option<String> {
        let c = &self.config;
        Some(match name {
            "retention.ms" => c.retention_ms.to_string(),
            "retention.bytes" => c.retention_bytes.to_string(),
            "segment.bytes" => c.segment_bytes.to_string(),
            "segment.ms" => c.segment_ms.to_string(),
            "message.timestamp.before.max.ms" => c.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => c.message_timestamp_after_max_ms.to_string(),
            _ => TOPIC_CONFIGS
                .iter()
                .find(|(n, _, _)| *n == name)?
                .1
                .to_string(),
        })
    }

    /// A numeric topic config: the topic's own value, else the broker's default.
    pub(crate) fn topic_config_i64(&self, topic: &crate::topics::Topic, name: &str) -> i64 {
        topic
            .configs
            .get(name)
            .cloned()
            .or_else(|| self.topic_defaults(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MAX)
    }

    pub(crate) fn max_message_bytes(&self, topic: &crate::topics::Topic) -> usize {
        topic
            .configs
            .get("max.message.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1048588)
    }

    fn topic_metadata(&self, t: &crate::topics::Topic) -> TopicMetadata {
        TopicMetadata {
            error: ErrorCode::NONE,
            name: Some(t.name.clone()),
            id: t.id,
            partitions: t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    error: if p.is_failed() {
                        ErrorCode::KAFKA_STORAGE_ERROR
                    } else {
                        ErrorCode::NONE
                    },
                    partition: p.index,
                    leader: self.config.node_id,
                    leader_epoch: crate::partition::LEADER_EPOCH,
                })
                .collect(),
        }
    }

    fn missing_topic(error: ErrorCode, name: Option<String>, id: TopicId) -> TopicMetadata {
        TopicMetadata {
            error,
            name,
            id,
            partitions: vec![],
        }
    }

    pub(crate) fn metadata(&self, r: MetadataRequest) -> MetadataResponse {
        let topics = match r.topics {
            None => self
                .topics
                .read()
                .all()
                .iter()
                .map(|t| self.topic_metadata(t))
                .collect(),
            Some(refs) => refs
                .into_iter()
                .map(|tr| match tr {
                    TopicRef::Id(id) => match self.topics.read().get_by_id(&id) {
                        Some(t) => self.topic_metadata(&t),
                        None => Self::missing_topic(ErrorCode::UNKNOWN_TOPIC_ID, None, id),
                    },
                    TopicRef::Name(name) => {
                        if let Some(t) = self.topics.read().get(&name) {
                            return self.topic_metadata(&t);
                        }
                        if valid_topic_name(&name).is_err() {
                            return Self::missing_topic(
                                ErrorCode::INVALID_TOPIC_EXCEPTION,
                                Some(name),
                                TopicId::ZERO,
                            );
                        }
                        if !(r.allow_auto_topic_creation && self.config.auto_create_topics) {
                            return Self::missing_topic(
                                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                Some(name),
                                TopicId::ZERO,
                            );
                        }
                        match self.create_topic(
                            &name,
                            self.config.default_partitions,
                            BTreeMap::new(),
                        ) {
                            Ok(t) => self.topic_metadata(&t),
                            Err((code, _)) => Self::missing_topic(code, Some(name), TopicId::ZERO),
                        }
                    }
                })
                .collect(),
        };
        MetadataResponse {
            brokers: vec![self.me()],
            cluster_id: self.cluster_id.clone(),
            controller_id: self.config.node_id,
            topics,
        }
    }

    pub(crate) fn topic_config_entries(
        &self,
        overrides: &BTreeMap<String, String>,
        keys: Option<&[String]>,
    ) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .filter(|(n, _, _)| keys.map_or(true, |k| k.iter().any(|k| k == n)))
            .map(|&(name, _, ty)| {
                let (value, source) = match overrides.get(name) {
                    Some(v) => (v.clone(), SOURCE_DYNAMIC_TOPIC),
                    None => {
                        let v = self.topic_defaults(name).unwrap_or_default();
                        let from_broker = matches!(
                            name,
                            "retention.ms" | "retention.bytes" | "segment.bytes" | "segment.ms"
                        );
                        (
                            v,
                            if from_broker {
                                SOURCE_STATIC_BROKER
                            } else {
                                SOURCE_DEFAULT
                            },
                        )
                    }
                };
                ConfigEntry {
                    name: name.into(),
                    value: Some(value),
                    read_only: false,
                    source,
                    sensitive: false,
                    config_type: ty,
                }
            })
            .collect()
    }

    pub(crate) fn init_producer_id(&self, r: InitProducerIdRequest) -> InitProducerIdResponse {
        let fail = |error| InitProducerIdResponse {
            error,
            producer_id: -1,
            producer_epoch: -1,
        };
        if r.transactional_id.is_some() {
            // Transactions need a transaction coordinator, which Cohort does not have.
            return fail(ErrorCode::INVALID_REQUEST);
        }
        // An idempotent producer (re)initialising always gets a fresh id, as in
        // Kafka: the old id's sequence state stays behind with the old batches.
        match self.producer_ids.next() {
            Ok(id) => InitProducerIdResponse {
                error: ErrorCode::NONE,
                producer_id: id,
                producer_epoch: 0,
            },
            Err(e) => {
                tracing::error!("allocating a producer id: {e}");
                fail(ErrorCode::KAFKA_STORAGE_ERROR)
            }
        }
    }

    pub(crate) fn find_coordinator(&self, r: FindCoordinatorRequest) -> Vec<CoordinatorResult> {
        r.keys
            .into_iter()
            .map(|key| match r.key_type {
                0 if self.groups.offline_reason().is_some() => CoordinatorResult {
                    key,
                    error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    message: Some("The group coordinator's log is damaged; see the broker's log".into()),
                    node: None,
                },
                0 => CoordinatorResult {
                    key,
                    error: ErrorCode::NONE,
                    message: None,
                    node: Some(self.me()),
                },
                _ => CoordinatorResult {
                    key,
                    error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    message: Some("Cohort coordinates consumer groups only".into()),
                    node: None,
                },
            })
            .collect()
    }

    pub(crate) fn describe_cluster(&self) -> ClusterDescription {
        ClusterDescription {
            cluster_id: self.cluster_id.clone(),
            controller_id: self.config.node_id,
            brokers: vec![self.me()],
        }
    }

    pub(crate) fn describe_configs(&self, r: DescribeConfigsRequest) -> Vec<DescribeConfigsResult> {
        r.resources
            .into_iter()
            .map(|res| {
                let mut out = DescribeConfigsResult {
                    resource_type: res.resource_type,
                    name: res.name.clone(),
                    error: ErrorCode::NONE,
                    message: None,
                    entries: vec![],
                };
                match res.resource_type {
                    RESOURCE_TOPIC => match self.topics.read().get(&res.name) {
                        Some(t) => {
                            out.entries = self.topic_config_entries(&t.configs, res.keys.as_deref())
                        }
                        None => {
                            out.error = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
                            out.message = Some(format!("Topic {} does not exist", res.name));
                        }
                    },
                    RESOURCE_BROKER
                        if res.name.is_empty() || res.name == self.config.node_id.to_string() =>
                    {
                        out.entries = broker_config_entries(&self.config)
                            .into_iter()
                            .filter(|e| res.keys.as_ref().map_or(true, |k| k.contains(&e.name)))
                            .collect();
                    }
                    RESOURCE_BROKER => {
                        out.error = ErrorCode::INVALID_REQUEST;
                        out.message = Some(format!(
                            "Unexpected broker id, expected {}",
                            self.config.node_id
                        ));
                    }
                    other => {
                        out.error = ErrorCode::INVALID_REQUEST;
                        out.message = Some(format!("Unsupported resource type {other}"));
                    }
                }
                out
            })
            .collect()
    }
}

fn broker_config_entries(c: &BrokerConfig) -> Vec<ConfigEntry> {
    let entry = |name: &str, value: String, ty: i8| ConfigEntry {
        name: name.into(),
        value: Some(value),
        read_only: true,
        source: SOURCE_STATIC_BROKER,
        sensitive: false,
        config_type: ty,
    };
    vec![
        entry("node.id", c.node_id.to_string(), 3),
        entry("broker.id", c.node_id.to_string(), 3),
        entry("listeners", format!("PLAINTEXT://{}", c.listen), 7),
        entry(
            "advertised.listeners",
            format!("PLAINTEXT://{}", c.advertise),
            7,
        ),
        entry("log.dirs", c.data_dir.display().to_string(), 2),
        entry("num.partitions", c.default_partitions.to_string(), 3),
        entry("default.replication.factor", "1".into(), 4),
        entry(
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            1,
        ),
        entry("log.retention.ms", c.retention_ms.to_string(), 5),
        entry("log.retention.bytes", c.retention_bytes.to_string(), 5),
        entry("log.segment.bytes", c.segment_bytes.to_string(), 3),
        entry("log.roll.ms", c.segment_ms.to_string(), 5),
        entry(
            "log.retention.check.interval.ms",
            c.retention_check_interval.as_millis().to_string(),
            5,
        ),
        entry("message.max.bytes", "1048588".into(), 3),
        entry(
            "socket.request.max.bytes",
            c.max_request_size.to_string(),
            3,
        ),
        entry("cohort.fsync.policy", c.fsync.to_string(), 2),
    ]
}
