//! Metadata, topic administration, coordinators, cluster and config description.

use crate::topic_configs;
use crate::topics::valid_topic_name;
use crate::{Broker, BrokerConfig};
use cohort_types::api::*;
use cohort_types::{ErrorCode, TopicId};
use std::collections::BTreeMap;

impl Broker {
    /// What a topic without its own value gets: the broker's setting where
    /// Cohort has one, else Kafka's default.
    pub(crate) fn topic_defaults(&self, name: &str) -> Option<String> {
        self.broker_topic_default(name)
            .or_else(|| topic_configs::kafka_default(name).map(str::to_string))
    }

    /// The broker-level value behind a topic config: a dynamic broker config,
    /// else a Cohort flag.
    fn broker_topic_default(&self, name: &str) -> Option<String> {
        self.broker_topic_default_with_source(name).map(|(v, _)| v)
    }

    /// The same, with Kafka's source for it.
    fn broker_topic_default_with_source(&self, name: &str) -> Option<(String, i8)> {
        if let Some(found) =
            topic_configs::synonym(name).and_then(|b| self.dynamic.read().unwrap().get(b))
        {
            return Some(found);
        }
        let flag = self.static_topic_default(name)?;
        let kafka = topic_configs::kafka_default(name).unwrap_or_default();
        Some((
            flag.clone(),
            if flag == kafka {
                SOURCE_DEFAULT
            } else {
                SOURCE_STATIC_BROKER
            },
        ))
    }

    /// The value a Cohort flag gives a topic config's default.
    fn static_topic_default(&self, name: &str) -> Option<String> {
        let c = &self.config;
        Some(match name {
            "retention.ms" => c.retention_ms.to_string(),
            "retention.bytes" => c.retention_bytes.to_string(),
            "segment.bytes" => c.segment_bytes.to_string(),
            "segment.ms" => c.segment_ms.to_string(),
            "message.timestamp.before.max.ms" => c.message_timestamp_before_max_ms.to_string(),
            "message.timestamp.after.max.ms" => c.message_timestamp_after_max_ms.to_string(),
            _ => return None,
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
        self.topic_config_i64(topic, "max.message.bytes")
            .clamp(0, i32::MAX as i64) as usize
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

    /// DescribeConfigs' entries for a topic, as Kafka reports them: its own
    /// values as DYNAMIC_TOPIC_CONFIG; the rest as DEFAULT_CONFIG, or
    /// STATIC_BROKER_CONFIG where a broker flag moved them off Kafka's default.
    /// Synonyms list the topic's value, then the broker config it falls back to.
    pub(crate) fn topic_config_entries(
        &self,
        overrides: &BTreeMap<String, String>,
        keys: Option<&[String]>,
    ) -> Vec<ConfigEntry> {
        topic_configs::names()
            .filter(|n| keys.map_or(true, |k| k.iter().any(|k| k == n)))
            .map(|name| {
                let kafka = topic_configs::kafka_default(name).unwrap_or_default();
                let (broker_value, broker_source) = self
                    .broker_topic_default_with_source(name)
                    .unwrap_or((kafka.to_string(), SOURCE_DEFAULT));
                let mut synonyms = Vec::new();
                if let Some(v) = overrides.get(name) {
                    synonyms.push(ConfigSynonym {
                        name: name.into(),
                        value: Some(v.clone()),
                        source: SOURCE_DYNAMIC_TOPIC,
                    });
                }
                if let Some(broker_name) = topic_configs::synonym(name) {
                    synonyms.push(ConfigSynonym {
                        name: broker_name.into(),
                        value: Some(broker_value.clone()),
                        source: broker_source,
                    });
                }
                let (value, source) = match overrides.get(name) {
                    Some(v) => (v.clone(), SOURCE_DYNAMIC_TOPIC),
                    None => (broker_value, broker_source),
                };
                ConfigEntry {
                    name: name.into(),
                    value: Some(value),
                    read_only: false,
                    source,
                    sensitive: false,
                    config_type: topic_configs::config_type(name),
                    synonyms,
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
                    message: Some(
                        "The group coordinator's log is damaged; see the broker's log".into(),
                    ),
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
                        out.entries = self
                            .broker_entries(res.name.is_empty())
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
                if !r.include_synonyms {
                    for e in &mut out.entries {
                        e.synonyms.clear();
                    }
                }
                out
            })
            .collect()
    }
}

impl Broker {
    /// A BROKER resource's configs. The cluster default ("") lists the
    /// dynamic values set for the whole cluster, as Kafka does; this broker's
    /// id lists its flags, with every topic default a dynamic config changed
    /// shown at its dynamic value and source.
    fn broker_entries(&self, cluster_default: bool) -> Vec<ConfigEntry> {
        let dynamic = self.dynamic.read().unwrap().clone();
        let entry = |name: &str, value: String, source: i8| ConfigEntry {
            name: name.into(),
            value: Some(value.clone()),
            read_only: false,
            source,
            sensitive: false,
            config_type: crate::broker_configs::topic_config_of(name)
                .map_or(2, topic_configs::config_type),
            synonyms: vec![ConfigSynonym {
                name: name.into(),
                value: Some(value),
                source,
            }],
        };
        if cluster_default {
            return dynamic
                .level(true)
                .iter()
                .map(|(k, v)| {
                    entry(
                        k,
                        v.clone(),
                        crate::broker_configs::SOURCE_DYNAMIC_DEFAULT_BROKER,
                    )
                })
                .collect();
        }
        let mut out = broker_config_entries(&self.config);
        for e in &mut out {
            if let Some(topic_name) = crate::broker_configs::topic_config_of(&e.name) {
                if let Some((v, source)) = self.broker_topic_default_with_source(topic_name) {
                    *e = entry(&e.name, v, source);
                }
            }
        }
        for (k, v) in dynamic.level(false).iter().chain(dynamic.level(true)) {
            if !out.iter().any(|e| &e.name == k) {
                let (value, source) = dynamic.get(k).unwrap_or((v.clone(), SOURCE_DEFAULT));
                out.push(entry(k, value, source));
            }
        }
        out
    }
}

fn broker_config_entries(c: &BrokerConfig) -> Vec<ConfigEntry> {
    let entry = |name: &str, value: String, ty: i8| ConfigEntry {
        name: name.into(),
        value: Some(value.clone()),
        read_only: true,
        source: SOURCE_STATIC_BROKER,
        sensitive: false,
        config_type: ty,
        synonyms: vec![ConfigSynonym {
            name: name.into(),
            value: Some(value),
            source: SOURCE_STATIC_BROKER,
        }],
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
