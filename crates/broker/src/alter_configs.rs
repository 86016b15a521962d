//! IncrementalAlterConfigs and AlterConfigs for topics: the change is checked
//! as Kafka checks it, written to topics.json, and in effect from the next
//! request (segment settings from the next append, retention at its next pass).

use crate::topic_configs;
use crate::Broker;
use cohort_types::api::*;
use cohort_types::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

type Refusal = (ErrorCode, String);

/// The topic configs an open log's segments follow.
pub(crate) const SEGMENT_CONFIGS: [&str; 3] =
    ["segment.bytes", "segment.ms", "index.interval.bytes"];

impl Broker {
    pub(crate) fn alter_configs(&self, r: AlterConfigsRequest) -> Vec<AlterConfigsResult> {
        // Kafka refuses every copy of a resource named twice in one request.
        let mut seen = BTreeMap::new();
        for res in &r.resources {
            *seen
                .entry((res.resource_type, res.name.clone()))
                .or_insert(0) += 1;
        }
        r.resources
            .into_iter()
            .map(|res| {
                let outcome = if seen[&(res.resource_type, res.name.clone())] > 1 {
                    Err((
                        ErrorCode::INVALID_REQUEST,
                        "Error due to duplicate config keys".into(),
                    ))
                } else {
                    match res.resource_type {
                        RESOURCE_TOPIC => {
                            self.alter_topic_configs(&res, r.incremental, r.validate_only)
                        }
                        RESOURCE_BROKER => {
                            self.alter_broker_configs(&res, r.incremental, r.validate_only)
                        }
                        other => Err((
                            ErrorCode::INVALID_REQUEST,
                            format!("Unsupported resource type {other}"),
                        )),
                    }
                };
                let (error, message) = match outcome {
                    Ok(()) => (ErrorCode::NONE, None),
                    Err((code, m)) => (code, Some(m)),
                };
                AlterConfigsResult {
                    resource_type: res.resource_type,
                    name: res.name,
                    error,
                    message,
                }
            })
            .collect()
    }

    /// Dynamic broker configs: "" is the cluster-wide default, the node id
    /// this broker's own.
    fn alter_broker_configs(
        &self,
        res: &AlterConfigsResource,
        incremental: bool,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        let cluster_default = res.name.is_empty();
        if !cluster_default && res.name != self.config.node_id.to_string() {
            return Err((
                ErrorCode::INVALID_REQUEST,
                format!("Unexpected broker id, expected {}", self.config.node_id),
            ));
        }
        let mut dynamic = self.dynamic.write().unwrap();
        if let Some(next) = dynamic.altered(
            cluster_default,
            res,
            incremental,
            validate_only,
            &self.config.data_dir,
        )? {
            *dynamic = next;
            drop(dynamic);
            tracing::info!(resource = %res.name, "dynamic broker configs changed");
            for topic in self.topics.read().all() {
                self.apply_segment_config(&topic);
            }
        }
        Ok(())
    }

    /// Gives a topic's logs the segment settings in effect for it now.
    pub(crate) fn apply_segment_config(&self, topic: &crate::topics::Topic) {
        let segments = self.segment_config(&topic.configs);
        for p in &topic.partitions {
            p.set_segment_config(&segments);
        }
    }

    /// A topic's segment settings: its own, else the broker's (dynamic, then
    /// flags), read by the same rule the logs were opened with.
    pub(crate) fn segment_config(
        &self,
        configs: &BTreeMap<String, String>,
    ) -> cohort_log_local::LocalLogConfig {
        let mut effective = configs.clone();
        for name in SEGMENT_CONFIGS {
            if !effective.contains_key(name) {
                if let Some(v) = self.topic_defaults(name) {
                    effective.insert(name.to_string(), v);
                }
            }
        }
        crate::partition_dirs::log_config(&effective, &self.config)
    }

    fn alter_topic_configs(
        &self,
        res: &AlterConfigsResource,
        incremental: bool,
        validate_only: bool,
    ) -> Result<(), Refusal> {
        let missing = || {
            (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{}' does not exist.", res.name),
            )
        };
        // Read, change and write under the table's one-change-at-a-time rule,
        // so two alters (or an alter and a partition increase) never lose
        // each other's work.
        let changed = self.topics.change(|table| {
            let topic = table.get(&res.name).ok_or_else(missing)?;
            let configs = changed_configs(&topic.configs, &res.changes, incremental, |n| {
                self.topic_defaults(n)
            })?;
            for (k, v) in &configs {
                topic_configs::check(k, v).map_err(|m| (ErrorCode::INVALID_CONFIG, m))?;
            }
            if validate_only || configs == topic.configs {
                return Ok(None);
            }
            let new = Arc::new(crate::topics::Topic {
                name: topic.name.clone(),
                id: topic.id,
                configs,
                partitions: topic.partitions.clone(),
            });
            table.replace(&topic, new.clone()).map_err(|e| match e {
                crate::topics::InsertError::Io(e) => (
                    ErrorCode::KAFKA_STORAGE_ERROR,
                    format!("writing topics.json: {e}"),
                ),
                crate::topics::InsertError::Exists => missing(),
            })?;
            Ok::<_, Refusal>(Some(new))
        })?;
        if let Some(topic) = changed {
            self.apply_segment_config(&topic);
            tracing::info!(topic = %topic.name, configs = ?topic.configs, "topic configs changed");
        }
        Ok(())
    }
}

/// A topic's own values after the changes. AlterConfigs replaces them all;
/// IncrementalAlterConfigs sets, deletes, or appends to and subtracts from a
/// list (starting from the value in effect, the default included).
fn changed_configs(
    current: &BTreeMap<String, String>,
    changes: &[ConfigChange],
    incremental: bool,
    default: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, Refusal> {
    let names: BTreeSet<_> = changes.iter().map(|c| &c.name).collect();
    if names.len() < changes.len() {
        return Err((
            ErrorCode::INVALID_REQUEST,
            "Error due to duplicate config keys".into(),
        ));
    }
    let mut out = if incremental {
        current.clone()
    } else {
        BTreeMap::new()
    };
    for c in changes {
        let op_name = ["SET", "DELETE", "APPEND", "SUBTRACT"]
            .get(c.op as usize)
            .copied();
        if topic_configs::kafka_default(&c.name).is_none() {
            return Err((
                ErrorCode::INVALID_CONFIG,
                format!("Unknown topic config name: {}", c.name),
            ));
        }
        match (c.op, &c.value) {
            (CONFIG_DELETE, _) | (CONFIG_SET, None) if !incremental => {}
            (CONFIG_DELETE, _) => {
                out.remove(&c.name);
            }
            (CONFIG_SET, Some(v)) => {
                out.insert(c.name.clone(), v.clone());
            }
            (CONFIG_SET, None) => {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Null value not supported for : {}", c.name),
                ))
            }
            (CONFIG_APPEND | CONFIG_SUBTRACT, _) if !topic_configs::is_list(&c.name) => {
                return Err((
                    ErrorCode::INVALID_CONFIG,
                    format!(
                        "Can't {} to key {} because its type is not LIST.",
                        op_name.unwrap(),
                        c.name
                    ),
                ))
            }
            (CONFIG_APPEND | CONFIG_SUBTRACT, value) => {
                let now = out
                    .get(&c.name)
                    .cloned()
                    .or_else(|| default(&c.name))
                    .unwrap_or_default();
                let mut items: Vec<String> = now
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(String::from)
                    .collect();
                let given = value.as_deref().unwrap_or("");
                for item in given.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if c.op == CONFIG_APPEND && !items.iter().any(|i| i == item) {
                        items.push(item.to_string());
                    } else if c.op == CONFIG_SUBTRACT {
                        items.retain(|i| i != item);
                    }
                }
                out.insert(c.name.clone(), items.join(","));
            }
            (op, _) => {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Unknown alter config operation {op}"),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(name: &str, op: i8, value: Option<&str>) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            op,
            value: value.map(String::from),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_default(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn incremental_changes_keep_what_they_do_not_name() {
        let now = map(&[("retention.ms", "1000"), ("segment.ms", "5000")]);
        let got = changed_configs(
            &now,
            &[
                change("retention.ms", CONFIG_DELETE, None),
                change("max.message.bytes", CONFIG_SET, Some("2000")),
            ],
            true,
            no_default,
        )
        .unwrap();
        assert_eq!(
            got,
            map(&[("max.message.bytes", "2000"), ("segment.ms", "5000")])
        );
    }

    #[test]
    fn alter_configs_replaces_every_own_value() {
        let now = map(&[("retention.ms", "1000"), ("segment.ms", "5000")]);
        let got = changed_configs(
            &now,
            &[change("retention.bytes", CONFIG_SET, Some("10"))],
            false,
            no_default,
        )
        .unwrap();
        assert_eq!(got, map(&[("retention.bytes", "10")]));
    }

    #[test]
    fn lists_append_and_subtract_from_the_value_in_effect() {
        let default = |n: &str| (n == "cleanup.policy").then(|| "delete".to_string());
        let got = changed_configs(
            &BTreeMap::new(),
            &[change(
                "leader.replication.throttled.replicas",
                CONFIG_APPEND,
                Some("0:1,1:1"),
            )],
            true,
            default,
        )
        .unwrap();
        assert_eq!(got["leader.replication.throttled.replicas"], "0:1,1:1");
        let got = changed_configs(
            &got,
            &[change(
                "leader.replication.throttled.replicas",
                CONFIG_SUBTRACT,
                Some("0:1"),
            )],
            true,
            default,
        )
        .unwrap();
        assert_eq!(got["leader.replication.throttled.replicas"], "1:1");
        let got = changed_configs(
            &BTreeMap::new(),
            &[change("cleanup.policy", CONFIG_SUBTRACT, Some("delete"))],
            true,
            default,
        )
        .unwrap();
        assert_eq!(got["cleanup.policy"], "");
    }

    #[test]
    fn kafkas_refusals() {
        let refuse = |changes: &[ConfigChange]| {
            changed_configs(&BTreeMap::new(), changes, true, no_default).unwrap_err()
        };
        assert_eq!(
            refuse(&[change("retention.ms", CONFIG_APPEND, Some("1"))]),
            (
                ErrorCode::INVALID_CONFIG,
                "Can't APPEND to key retention.ms because its type is not LIST.".into()
            )
        );
        assert_eq!(
            refuse(&[change("foo.bar", CONFIG_SET, Some("1"))]).0,
            ErrorCode::INVALID_CONFIG
        );
        assert_eq!(
            refuse(&[
                change("retention.ms", CONFIG_SET, Some("1")),
                change("retention.ms", CONFIG_DELETE, None)
            ])
            .0,
            ErrorCode::INVALID_REQUEST
        );
        assert_eq!(
            refuse(&[change("retention.ms", 7, Some("1"))]).0,
            ErrorCode::INVALID_REQUEST
        );
        assert_eq!(
            refuse(&[change("retention.ms", CONFIG_SET, None)]).0,
            ErrorCode::INVALID_REQUEST
        );
    }
}
