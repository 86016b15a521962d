//! The topic table: names, ids, partition counts and per-topic configs, kept in
//! `meta/topics.json` (replaced atomically on every change) with one log
//! directory per partition under `partitions/`.

use crate::partition::Partition;
use cohort_log_local::{LocalLog, LocalLogConfig, OpenError, OpenHint};
use cohort_types::TopicId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    /// Hex of the 16 id bytes.
    pub id: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

pub struct Topic {
    pub name: String,
    pub id: TopicId,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
}

#[derive(Serialize, Deserialize, Default)]
pub(crate) struct TopicsFile {
    pub(crate) topics: Vec<TopicRecord>,
    /// Ids (hex) of topics deleted whose directories may still be on disk: a
    /// crash in the middle of a delete is finished at the next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) deleting: Vec<String>,
}

/// How the data directory was left: what opening each log needs to know.
pub struct Recovered<'a> {
    pub clean_shutdown: bool,
    pub checkpoints: &'a crate::checkpoints::Entries,
}

/// Writes a small file so that a crash leaves either the old or the new content.
pub fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

pub fn id_to_hex(id: &TopicId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn id_from_hex(s: &str) -> Option<TopicId> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(TopicId(out))
}

/// Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], and not "." or "..".
pub fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("Topic name \"{name}\" is illegal"));
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

pub struct TopicTable {
    data_dir: PathBuf,
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<TopicId, Arc<Topic>>,
    pub(crate) deleting: Vec<String>,
}

/// A partition's directory, relative to the data directory. Named by topic
/// id, not name, so a topic deleted and recreated under the same name never
/// meets the old one's files.
pub fn partition_dir_name(id: &TopicId, partition: i32) -> String {
    format!("partitions/{}-{partition}", id_to_hex(id))
}

/// Each partition directory says what it holds, so a lost topics.json can be
/// rebuilt from the partitions themselves (`cohort repair`).
pub const PARTITION_METADATA: &str = "partition.metadata";

pub fn partition_metadata(name: &str, id: &TopicId, partition: i32) -> String {
    format!(
        "version: 1\ntopic_id: {}\ntopic_name: {name}\npartition: {partition}\n",
        id_to_hex(id)
    )
}

/// (topic id, topic name, partition) from a partition.metadata file.
pub fn parse_partition_metadata(text: &str) -> Option<(TopicId, String, i32)> {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix(": ").map(str::to_string))
    };
    if field("version")? != "1" {
        return None;
    }
    Some((
        id_from_hex(&field("topic_id")?)?,
        field("topic_name")?,
        field("partition")?.parse().ok()?,
    ))
}

pub fn log_config(
    configs: &BTreeMap<String, String>,
    defaults: &crate::BrokerConfig,
) -> LocalLogConfig {
    let get = |k: &str| configs.get(k).and_then(|v| v.parse::<i64>().ok());
    LocalLogConfig {
        segment_bytes: get("segment.bytes")
            .map(|v| v.max(14) as u64)
            .unwrap_or(defaults.segment_bytes),
        segment_ms: get("segment.ms").unwrap_or(defaults.segment_ms),
        index_interval_bytes: get("index.interval.bytes")
            .map(|v| v.max(0) as usize)
            .unwrap_or(4096),
    }
}

impl TopicTable {
    /// Loads every topic and opens (and recovers) every partition's log. A
    /// damaged log takes only its partition offline. Directories no topic
    /// owns are never deleted unless they hold no data: they are moved to
    /// `stray/`.
    pub fn open(config: &crate::BrokerConfig, recovered: &Recovered<'_>) -> io::Result<TopicTable> {
        std::fs::create_dir_all(config.data_dir.join("meta"))?;
        std::fs::create_dir_all(config.data_dir.join("partitions"))?;
        let path = config.data_dir.join("meta/topics.json");
        let file: TopicsFile = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dirs = std::fs::read_dir(config.data_dir.join("partitions"))?
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .count();
                if dirs > 0 {
                    return Err(io::Error::other(format!(
                        "{} is missing, but {} holds {dirs} partition directories: restore the file, \
                         or stop here and run `cohort repair --data-dir {}` to rebuild it from the \
                         partitions' own metadata",
                        path.display(),
                        config.data_dir.join("partitions").display(),
                        config.data_dir.display()
                    )));
                }
                TopicsFile::default()
            }
            Err(e) => return Err(e),
        };
        let mut table = TopicTable {
            data_dir: config.data_dir.clone(),
            by_name: HashMap::new(),
            by_id: HashMap::new(),
            deleting: file.deleting,
        };
        for rec in file.topics {
            let id = id_from_hex(&rec.id)
                .ok_or_else(|| io::Error::other(format!("{}: bad topic id {}", path.display(), rec.id)))?;
            let mut partitions = Vec::new();
            for p in 0..rec.partitions {
                partitions.push(Arc::new(open_partition(
                    config,
                    &rec.name,
                    &id,
                    p,
                    &rec.configs,
                    Some(recovered),
                )?));
            }
            let topic = Arc::new(Topic {
                name: rec.name.clone(),
                id,
                configs: rec.configs,
                partitions,
            });
            table.by_id.insert(id, topic.clone());
            table.by_name.insert(rec.name, topic);
        }
        table.set_aside_strays()?;
        Ok(table)
    }

    /// Partition directories no topic owns: a delete that did not finish
    /// (finished now), a create that did not finish (empty: removed), or
    /// anything else (moved to `stray/`, never deleted).
    fn set_aside_strays(&mut self) -> io::Result<()> {
        let mut stray = Vec::new();
        for entry in std::fs::read_dir(self.data_dir.join("partitions"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let parsed = name
                .rsplit_once('-')
                .and_then(|(id, p)| Some((id_from_hex(id)?, p.parse::<usize>().ok()?)));
            let owned = parsed.is_some_and(|(id, p)| {
                self.by_id.get(&id).is_some_and(|t| p < t.partitions.len())
            });
            if owned {
                continue;
            }
            let deleted = parsed.is_some_and(|(id, _)| self.deleting.contains(&id_to_hex(&id)));
            if deleted {
                tracing::info!("finishing the delete of partition directory {name}");
                std::fs::remove_dir_all(entry.path())?;
            } else if entry.path().is_dir() && !holds_data(&entry.path())? {
                tracing::debug!("removing empty partition directory {name} (a create that did not finish)");
                std::fs::remove_dir_all(entry.path())?;
            } else {
                stray.push(name);
            }
        }
        if !stray.is_empty() {
            let to = self.data_dir.join("stray");
            std::fs::create_dir_all(&to)?;
            for name in &stray {
                std::fs::rename(self.data_dir.join("partitions").join(name), to.join(name))?;
            }
            std::fs::File::open(&to)?.sync_all()?;
            std::fs::File::open(self.data_dir.join("partitions"))?.sync_all()?;
            tracing::warn!(
                "{} partition directories that no topic in meta/topics.json owns were moved to {} \
                 (kept, not deleted): {}{}",
                stray.len(),
                to.display(),
                stray.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if stray.len() > 5 { ", ..." } else { "" }
            );
        }
        if !self.deleting.is_empty() {
            self.deleting.clear();
            self.persist()?;
        }
        Ok(())
    }

    fn persist(&self) -> io::Result<()> {
        let mut topics: Vec<TopicRecord> = self
            .by_name
            .values()
            .map(|t| TopicRecord {
                name: t.name.clone(),
                id: id_to_hex(&t.id),
                partitions: t.partitions.len() as i32,
                configs: t.configs.clone(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        let json = serde_json::to_vec_pretty(&TopicsFile {
            topics,
            deleting: self.deleting.clone(),
        })
        .map_err(io::Error::other)?;
        write_atomically(&self.data_dir.join("meta/topics.json"), &json)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.by_name.get(name).cloned()
    }

    pub fn get_by_id(&self, id: &TopicId) -> Option<Arc<Topic>> {
        self.by_id.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.by_name.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn create(
        &mut self,
        config: &crate::BrokerConfig,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        id: TopicId,
    ) -> io::Result<Arc<Topic>> {
        let mut parts = Vec::new();
        for p in 0..partitions {
            parts.push(Arc::new(open_partition(config, name, &id, p, &configs, None)?));
        }
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id,
            configs,
            partitions: parts,
        });
        self.by_name.insert(name.to_string(), topic.clone());
        self.by_id.insert(id, topic.clone());
        if let Err(e) = self.persist() {
            self.by_name.remove(name);
            self.by_id.remove(&id);
            return Err(e);
        }
        Ok(topic)
    }

    /// Forgets the topic (durably, noting that its files are being
    /// removed), then removes its files.
    pub fn delete(&mut self, name: &str) -> io::Result<Option<Arc<Topic>>> {
        let Some(topic) = self.by_name.remove(name) else {
            return Ok(None);
        };
        self.by_id.remove(&topic.id);
        self.deleting.push(id_to_hex(&topic.id));
        self.persist()?;
        for p in &topic.partitions {
            p.destroy()?;
        }
        self.deleting.retain(|d| *d != id_to_hex(&topic.id));
        self.persist()?;
        Ok(Some(topic))
    }

    pub fn add_partitions(
        &mut self,
        config: &crate::BrokerConfig,
        name: &str,
        count: i32,
    ) -> io::Result<Arc<Topic>> {
        let old = self
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::other("no such topic"))?;
        let mut partitions = old.partitions.clone();
        for p in partitions.len() as i32..count {
            partitions.push(Arc::new(open_partition(
                config,
                name,
                &old.id,
                p,
                &old.configs,
                None,
            )?));
        }
        let topic = Arc::new(Topic {
            name: old.name.clone(),
            id: old.id,
            configs: old.configs.clone(),
            partitions,
        });
        self.by_name.insert(name.to_string(), topic.clone());
        self.by_id.insert(topic.id, topic.clone());
        self.persist()?;
        Ok(topic)
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.by_name
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }
}

/// Whether a directory holds any bytes of log data.
fn holds_data(dir: &Path) -> io::Result<bool> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().ends_with(".log") && e.metadata()?.len() > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Opens a partition's log: an existing one (`recovered` given) is recovered
/// and taken offline if damaged; a new one is created with its metadata file.
fn open_partition(
    config: &crate::BrokerConfig,
    name: &str,
    id: &TopicId,
    p: i32,
    configs: &BTreeMap<String, String>,
    recovered: Option<&Recovered<'_>>,
) -> io::Result<Partition> {
    let dir_name = partition_dir_name(id, p);
    let dir = config.data_dir.join(&dir_name);
    let hint = match recovered {
        Some(r) => OpenHint {
            clean_shutdown: r.clean_shutdown,
            checkpoint: r.checkpoints.get(&dir_name).copied(),
            must_exist: true,
        },
        None => {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(PARTITION_METADATA), partition_metadata(name, id, p))?;
            OpenHint::default()
        }
    };
    match LocalLog::open_with(&dir, log_config(configs, config), hint) {
        Ok((log, recovery)) => {
            if let Some(reason) = &recovery.reason {
                tracing::warn!(
                    topic = name,
                    partition = p,
                    "recovered log after a crash: cut a torn tail of {} bytes and {} segments after it ({reason})",
                    recovery.truncated_bytes,
                    recovery.dropped_segments,
                );
            }
            Partition::new(name, p, dir_name, Box::new(log))
        }
        Err(OpenError::Damaged(d)) => {
            tracing::error!(
                topic = name,
                partition = p,
                "partition offline: its log is damaged: {d}; nothing was cut or deleted. \
                 Stop the broker and run `cohort repair --data-dir {}` to cut the log at the damage",
                config.data_dir.display()
            );
            Ok(Partition::offline(name, p, dir_name, d.to_string()))
        }
        Err(OpenError::Io(e)) => Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(valid_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "é", &"x".repeat(250)] {
            assert!(valid_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_round_trip_through_hex() {
        let id = TopicId([7; 16]);
        assert_eq!(id_from_hex(&id_to_hex(&id)), Some(id));
        assert_eq!(id_from_hex("zz"), None);
    }
}
