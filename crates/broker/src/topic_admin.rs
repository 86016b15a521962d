//! Topic administration: CreateTopics (and auto-creation), DeleteTopics and
//! CreatePartitions. Logs are made and removed outside the topic table's lock,
//! creations are all or nothing, and their size is bounded.

use crate::topic_configs;
use crate::topics::valid_topic_name;
use crate::Broker;
use cohort_types::api::*;
use cohort_types::{ErrorCode, TopicId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Kafka's cap on the partitions one CreateTopics request may create
/// (QuorumController's MAX_RECORDS_PER_USER_OP); Cohort applies it to
/// CreatePartitions too.
const MAX_PARTITIONS_PER_REQUEST: usize = 10_000;

impl Broker {
    /// Auto-creates a topic, or finds that a concurrent request just did.
    pub(crate) fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<crate::topics::Topic>, (ErrorCode, String)> {
        if let Some(t) = self.topics.read().get(name) {
            return Ok(t);
        }
        let created = self.make_topic(name, partitions, configs);
        match created {
            Err((ErrorCode::TOPIC_ALREADY_EXISTS, _)) => self.topics.read().get(name).ok_or((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                "created and deleted meanwhile".into(),
            )),
            other => {
                self.topics_changed();
                other
            }
        }
    }

    /// Whether `more` partitions fit within --max-partitions.
    fn check_partition_limit(&self, more: usize) -> Result<(), (ErrorCode, String)> {
        let have = self.topics.read().partition_count();
        if have + more > self.config.max_partitions {
            return Err((
                ErrorCode::POLICY_VIOLATION,
                format!(
                    "Creating {more} partitions would bring this broker to {} partitions, more than its limit of {} (--max-partitions).",
                    have + more,
                    self.config.max_partitions
                ),
            ));
        }
        Ok(())
    }

    /// Creates a topic: its logs first, outside the table's lock (produce and
    /// fetch on other topics go on), then its entry in topics.json. All or
    /// nothing.
    fn make_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<crate::topics::Topic>, (ErrorCode, String)> {
        self.check_partition_limit(partitions as usize)?;
        let id = TopicId(rand::random());
        let logs = crate::topics::create_logs(&self.config, name, &id, 0..partitions, &configs)
            .map_err(|e| {
                tracing::error!("creating topic {name}: {e}");
                (ErrorCode::KAFKA_STORAGE_ERROR, e.to_string())
            })?;
        let segments = self.segment_config(&configs);
        logs.iter().for_each(|p| p.set_segment_config(&segments));
        let topic = Arc::new(crate::topics::Topic {
            name: name.to_string(),
            id,
            configs,
            partitions: logs,
        });
        let inserted = self.topics.change(|t| t.insert(topic.clone()));
        match inserted {
            Ok(()) => Ok(topic),
            Err(e) => {
                crate::topics::remove_logs(&topic.partitions);
                Err(match e {
                    crate::topics::InsertError::Exists => (
                        ErrorCode::TOPIC_ALREADY_EXISTS,
                        format!("Topic '{name}' already exists."),
                    ),
                    crate::topics::InsertError::Io(e) => {
                        (ErrorCode::KAFKA_STORAGE_ERROR, e.to_string())
                    }
                })
            }
        }
    }

    pub(crate) fn create_topics(&self, r: CreateTopicsRequest) -> Vec<CreateTopicResult> {
        let results = self.create_topics_inner(r);
        self.topics_changed();
        results
    }

    fn create_topics_inner(&self, r: CreateTopicsRequest) -> Vec<CreateTopicResult> {
        // Kafka refuses a whole request creating more than 10,000 partitions.
        let total: i64 = r
            .topics
            .iter()
            .map(|t| match t.num_partitions {
                -1 if t.assignments.is_empty() => self.config.default_partitions as i64,
                -1 => t.assignments.len() as i64,
                n => n.max(0) as i64,
            })
            .sum();
        if total > MAX_PARTITIONS_PER_REQUEST as i64 {
            return r
                .topics
                .into_iter()
                .map(|t| CreateTopicResult {
                    name: t.name,
                    id: TopicId::ZERO,
                    error: ErrorCode::POLICY_VIOLATION,
                    message: Some("Excessively large number of partitions per request.".into()),
                    num_partitions: -1,
                    replication_factor: -1,
                    configs: vec![],
                })
                .collect();
        }
        r.topics
            .into_iter()
            .map(|t| {
                let mut result = CreateTopicResult {
                    name: t.name.clone(),
                    id: TopicId::ZERO,
                    error: ErrorCode::NONE,
                    message: None,
                    num_partitions: -1,
                    replication_factor: -1,
                    configs: vec![],
                };
                match self.validate_new_topic(&t) {
                    Err((code, msg)) => {
                        result.error = code;
                        result.message = Some(msg);
                    }
                    Ok((partitions, configs)) => {
                        let exists = self.topics.read().get(&t.name).is_some();
                        let outcome = if exists {
                            Err((
                                ErrorCode::TOPIC_ALREADY_EXISTS,
                                format!("Topic '{}' already exists.", t.name),
                            ))
                        } else if r.validate_only {
                            self.check_partition_limit(partitions as usize)
                                .map(|_| None)
                        } else {
                            self.make_topic(&t.name, partitions, configs.clone())
                                .map(Some)
                        };
                        match outcome {
                            Err((code, msg)) => {
                                result.error = code;
                                result.message = Some(msg);
                            }
                            Ok(created) => {
                                result.id = created.map(|c| c.id).unwrap_or(TopicId::ZERO);
                                result.num_partitions = partitions;
                                result.replication_factor = 1;
                                result.configs = self.topic_config_entries(&configs, None);
                            }
                        }
                    }
                }
                result
            })
            .collect()
    }

    fn validate_new_topic(
        &self,
        t: &NewTopic,
    ) -> Result<(i32, BTreeMap<String, String>), (ErrorCode, String)> {
        valid_topic_name(&t.name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION, m))?;
        let mut partitions = match t.num_partitions {
            -1 => self.config.default_partitions,
            n if n > 0 => n,
            n => {
                return Err((
                    ErrorCode::INVALID_PARTITIONS,
                    format!("Number of partitions was set to an invalid non-positive value: {n}."),
                ))
            }
        };
        match t.replication_factor {
            -1 | 1 => {}
            n if n <= 0 => {
                return Err((ErrorCode::INVALID_REPLICATION_FACTOR, format!("Replication factor must be larger than 0, or -1 to use the default value.")));
            }
            n => {
                return Err((
                    ErrorCode::INVALID_REPLICATION_FACTOR,
                    format!("Unable to replicate the partition {n} time(s): The target replication factor of {n} cannot be reached because only 1 broker(s) are registered."),
                ))
            }
        }
        if !t.assignments.is_empty() {
            if t.num_partitions != -1 || t.replication_factor != -1 {
                return Err((ErrorCode::INVALID_REQUEST, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into()));
            }
            for (i, (p, replicas)) in t.assignments.iter().enumerate() {
                if *p != i as i32 || replicas.as_slice() != [self.config.node_id] {
                    return Err((
                        ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                        format!("Invalid replica assignment for partition {p}: {replicas:?}"),
                    ));
                }
            }
            partitions = t.assignments.len() as i32;
        }
        let mut configs = BTreeMap::new();
        for (k, v) in &t.configs {
            let Some(v) = v else {
                return Err((
                    ErrorCode::INVALID_CONFIG,
                    format!("Null value not supported for topic configs: {k}"),
                ));
            };
            topic_configs::check(k, v).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
            configs.insert(k.clone(), v.clone());
        }
        Ok((partitions, configs))
    }

    pub(crate) fn delete_topics(&self, r: DeleteTopicsRequest) -> Vec<DeleteTopicResult> {
        let results = self.delete_topics_inner(r);
        self.topics_changed();
        results
    }

    fn delete_topics_inner(&self, r: DeleteTopicsRequest) -> Vec<DeleteTopicResult> {
        r.topics
            .into_iter()
            .map(|tr| {
                let table = self.topics.read();
                let found = match &tr {
                    TopicRef::Name(n) => table.get(n),
                    TopicRef::Id(id) => table.get_by_id(id),
                };
                let Some(topic) = found else {
                    return match tr {
                        TopicRef::Name(n) => DeleteTopicResult {
                            name: Some(n),
                            id: TopicId::ZERO,
                            error: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                            message: None,
                        },
                        TopicRef::Id(id) => DeleteTopicResult {
                            name: None,
                            id,
                            error: ErrorCode::UNKNOWN_TOPIC_ID,
                            message: None,
                        },
                    };
                };
                drop(table);
                match self.delete_topic(&topic.name) {
                    Ok(_) => DeleteTopicResult {
                        name: Some(topic.name.clone()),
                        id: topic.id,
                        error: ErrorCode::NONE,
                        message: None,
                    },
                    Err(e) => DeleteTopicResult {
                        name: Some(topic.name.clone()),
                        id: topic.id,
                        error: ErrorCode::KAFKA_STORAGE_ERROR,
                        message: Some(e.to_string()),
                    },
                }
            })
            .collect()
    }

    /// Forgets a topic, then removes its files outside the table's lock.
    fn delete_topic(&self, name: &str) -> std::io::Result<()> {
        let forgotten = self.topics.change(|t| t.forget(name))?;
        if let Some(topic) = forgotten {
            crate::topics::remove_logs(&topic.partitions);
            self.topics.change(|t| t.deleted(&topic.id))?;
        }
        Ok(())
    }

    pub(crate) fn create_partitions(
        &self,
        r: CreatePartitionsRequest,
    ) -> Vec<CreatePartitionsResult> {
        let results = self.create_partitions_inner(r);
        self.topics_changed();
        results
    }

    fn create_partitions_inner(&self, r: CreatePartitionsRequest) -> Vec<CreatePartitionsResult> {
        let adding: i64 = r
            .topics
            .iter()
            .map(|(name, count)| {
                let have = self
                    .topics
                    .read()
                    .get(name)
                    .map_or(0, |t| t.partitions.len());
                (*count as i64 - have as i64).max(0)
            })
            .sum();
        r.topics
            .into_iter()
            .map(|(name, count)| {
                let fail = |error, message: String| CreatePartitionsResult { name: name.clone(), error, message: Some(message) };
                if adding > MAX_PARTITIONS_PER_REQUEST as i64 {
                    return fail(ErrorCode::POLICY_VIOLATION, "Excessively large number of partitions per request.".into());
                }
                let Some(topic) = self.topics.read().get(&name) else {
                    return fail(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, format!("The topic '{name}' does not exist."));
                };
                let current = topic.partitions.len() as i32;
                if count < current {
                    return fail(ErrorCode::INVALID_PARTITIONS, format!("Topic currently has {current} partitions, which is higher than the requested {count}."));
                }
                if count == current {
                    return fail(ErrorCode::INVALID_PARTITIONS, format!("Topic already has {current} partitions."));
                }
                if let Err((code, msg)) = self.check_partition_limit((count - current) as usize) {
                    return fail(code, msg);
                }
                if !r.validate_only {
                    if let Err((code, msg)) = self.grow_topic(&topic, count) {
                        return fail(code, msg);
                    }
                }
                CreatePartitionsResult { name, error: ErrorCode::NONE, message: None }
            })
            .collect()
    }

    /// Adds partitions to a topic: their logs first, outside the table's lock,
    /// then topics.json. All or nothing.
    fn grow_topic(
        &self,
        topic: &Arc<crate::topics::Topic>,
        count: i32,
    ) -> Result<(), (ErrorCode, String)> {
        let current = topic.partitions.len() as i32;
        let logs = crate::topics::create_logs(
            &self.config,
            &topic.name,
            &topic.id,
            current..count,
            &topic.configs,
        )
        .map_err(|e| (ErrorCode::KAFKA_STORAGE_ERROR, e.to_string()))?;
        let segments = self.segment_config(&topic.configs);
        logs.iter().for_each(|p| p.set_segment_config(&segments));
        let mut partitions = topic.partitions.clone();
        partitions.extend(logs.iter().cloned());
        let grown = Arc::new(crate::topics::Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs: topic.configs.clone(),
            partitions,
        });
        let result = self.topics.change(|t| t.replace(topic, grown));
        result.map_err(|e| {
            crate::topics::remove_logs(&logs);
            match e {
                crate::topics::InsertError::Exists => (
                    ErrorCode::INVALID_PARTITIONS,
                    format!(
                        "Topic '{}' changed while its partitions were being created; try again.",
                        topic.name
                    ),
                ),
                crate::topics::InsertError::Io(e) => {
                    (ErrorCode::KAFKA_STORAGE_ERROR, e.to_string())
                }
            }
        })
    }
}
