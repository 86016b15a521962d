//! Dynamic broker configs: the broker-level defaults of topic configs
//! (log.retention.ms, log.segment.bytes, message.max.bytes, log.cleanup.policy,
//! ...), changed with IncrementalAlterConfigs or AlterConfigs on a BROKER
//! resource as in Kafka: resource name "" for the cluster-wide default, the
//! node id for this broker (which wins). They override the command-line
//! flags, take effect at once for every topic without its own value, and are
//! kept in `meta/broker-configs.json`:
//!
//! ```text
//! {"version": 1, "broker": {"log.retention.ms": "3600000"}, "cluster_default": {}}
//! ```

use crate::topic_configs;
use crate::topics::write_atomically;
use cohort_types::api::*;
use cohort_types::ErrorCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Broker configs Cohort takes from its flags only (a restart changes them).
const STATIC: &[&str] = &[
    "node.id",
    "broker.id",
    "listeners",
    "advertised.listeners",
    "log.dirs",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "log.retention.check.interval.ms",
    "socket.request.max.bytes",
    "cohort.fsync.policy",
];

/// Kafka's sources for dynamic broker values.
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    version: u32,
    #[serde(default)]
    broker: BTreeMap<String, String>,
    #[serde(default)]
    cluster_default: BTreeMap<String, String>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta/broker-configs.json")
}

/// The topic config a dynamic broker config sets the default of.
pub fn topic_config_of(broker_name: &str) -> Option<&'static str> {
    topic_configs::names().find(|n| topic_configs::synonym(n) == Some(broker_name))
}

impl DynamicConfigs {
    pub fn load(data_dir: &Path) -> io::Result<DynamicConfigs> {
        match std::fs::read(path(data_dir)) {
            Ok(bytes) => {
                let d: DynamicConfigs = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path(data_dir).display()),
                    )
                })?;
                if d.version != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: unknown version {}",
                            path(data_dir).display(),
                            d.version
                        ),
                    ));
                }
                Ok(d)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DynamicConfigs {
                version: 1,
                ..Default::default()
            }),
            Err(e) => Err(e),
        }
    }

    fn save(&self, data_dir: &Path) -> io::Result<()> {
        write_atomically(
            &path(data_dir),
            &serde_json::to_vec_pretty(self).map_err(io::Error::other)?,
        )
    }

    /// A broker config's dynamic value and its source: this broker's own, else
    /// the cluster default.
    pub fn get(&self, broker_name: &str) -> Option<(String, i8)> {
        if let Some(v) = self.broker.get(broker_name) {
            return Some((v.clone(), SOURCE_DYNAMIC_BROKER));
        }
        self.cluster_default
            .get(broker_name)
            .map(|v| (v.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER))
    }

    /// Every dynamic value of one level (DescribeConfigs lists them).
    pub fn level(&self, cluster_default: bool) -> &BTreeMap<String, String> {
        if cluster_default {
            &self.cluster_default
        } else {
            &self.broker
        }
    }

    /// Applies one AlterConfigs or IncrementalAlterConfigs resource to a copy;
    /// the copy is checked and, unless only validating, saved and returned.
    pub fn altered(
        &self,
        cluster_default: bool,
        res: &AlterConfigsResource,
        incremental: bool,
        validate_only: bool,
        data_dir: &Path,
    ) -> Result<Option<DynamicConfigs>, (ErrorCode, String)> {
        let mut next = self.clone();
        let level = if cluster_default {
            &mut next.cluster_default
        } else {
            &mut next.broker
        };
        if !incremental {
            level.clear();
        }
        for c in &res.changes {
            // Kafka's answers: a config only a restart changes is refused; a
            // name it does not know is kept (a custom config, with no effect);
            // a bad value is INVALID_REQUEST, not the topic's INVALID_CONFIG.
            if STATIC.contains(&c.name.as_str()) {
                return Err((
                    ErrorCode::INVALID_REQUEST,
                    format!("Cannot update these configs dynamically: [{}]", c.name),
                ));
            }
            match (c.op, &c.value) {
                (CONFIG_DELETE, _) | (CONFIG_SET, None) => {
                    level.remove(&c.name);
                }
                (CONFIG_SET, Some(v)) => {
                    if let Some(topic_name) = topic_config_of(&c.name) {
                        topic_configs::check(topic_name, v).map_err(|m| {
                            let m = m.replace(
                                &format!("configuration {topic_name}"),
                                &format!("configuration {}", c.name),
                            );
                            (ErrorCode::INVALID_REQUEST, m)
                        })?;
                    }
                    level.insert(c.name.clone(), v.clone());
                }
                (CONFIG_APPEND | CONFIG_SUBTRACT, _) => {
                    return Err((
                        ErrorCode::INVALID_CONFIG,
                        format!("Cannot APPEND or SUBTRACT to broker config {}", c.name),
                    ))
                }
                (op, _) => {
                    return Err((
                        ErrorCode::INVALID_REQUEST,
                        format!("Unknown alter config operation {op}"),
                    ))
                }
            }
        }
        if validate_only {
            return Ok(None);
        }
        next.save(data_dir).map_err(|e| {
            (
                ErrorCode::KAFKA_STORAGE_ERROR,
                format!("writing broker configs: {e}"),
            )
        })?;
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, value: &str) -> ConfigChange {
        ConfigChange {
            name: name.into(),
            op: CONFIG_SET,
            value: Some(value.into()),
        }
    }

    fn resource(changes: Vec<ConfigChange>) -> AlterConfigsResource {
        AlterConfigsResource {
            resource_type: RESOURCE_BROKER,
            name: String::new(),
            changes,
        }
    }

    #[test]
    fn the_broker_level_wins_over_the_cluster_default_and_both_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        let d = DynamicConfigs::load(dir.path()).unwrap();
        let d = d
            .altered(
                true,
                &resource(vec![set("log.retention.ms", "1000")]),
                true,
                false,
                dir.path(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            d.get("log.retention.ms"),
            Some(("1000".into(), SOURCE_DYNAMIC_DEFAULT_BROKER))
        );
        let d = d
            .altered(
                false,
                &resource(vec![set("log.retention.ms", "2000")]),
                true,
                false,
                dir.path(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            d.get("log.retention.ms"),
            Some(("2000".into(), SOURCE_DYNAMIC_BROKER))
        );
        assert_eq!(DynamicConfigs::load(dir.path()).unwrap(), d);
    }

    #[test]
    fn values_are_checked_as_the_topic_config_they_stand_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        let d = DynamicConfigs::load(dir.path()).unwrap();
        // Kafka 4.4's answers to the same requests.
        let err = d
            .altered(
                false,
                &resource(vec![set("log.retention.ms", "abc")]),
                true,
                false,
                dir.path(),
            )
            .unwrap_err();
        assert_eq!(
            err,
            (
                ErrorCode::INVALID_REQUEST,
                "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
                    .into()
            )
        );
        let err = d
            .altered(
                false,
                &resource(vec![set("log.dirs", "/x")]),
                true,
                false,
                dir.path(),
            )
            .unwrap_err();
        assert_eq!(
            err,
            (
                ErrorCode::INVALID_REQUEST,
                "Cannot update these configs dynamically: [log.dirs]".into()
            )
        );
        let kept = d
            .altered(
                false,
                &resource(vec![set("foo.bar", "1")]),
                true,
                false,
                dir.path(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            kept.get("foo.bar"),
            Some(("1".into(), SOURCE_DYNAMIC_BROKER))
        );
        assert_eq!(topic_config_of("log.segment.bytes"), Some("segment.bytes"));
    }
}
