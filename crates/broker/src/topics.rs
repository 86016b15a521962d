//! The topic table: names, ids, partition counts and per-topic configs, kept in
//! `meta/topics.json` (replaced atomically on every change) with one log
//! directory per partition under `partitions/`.

use crate::partition::Partition;
pub use crate::partition_dirs::{
    create_logs, parse_partition_metadata, partition_dir_name, partition_metadata, remove_logs,
    PARTITION_METADATA,
};
use crate::partition_dirs::{holds_data, open_partition};
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

/// The topic table as readers see it: a snapshot taken in one step, which never
/// waits for a change being made durable. Changes are made one at a time on a
/// copy, persisted to topics.json (an fsync that a busy disk can make take
/// seconds), and only then published. (With the table behind one lock, a
/// produce on another topic waited seconds behind a creation's fsync.)
pub struct Topics {
    current: std::sync::RwLock<Arc<TopicTable>>,
    changes: std::sync::Mutex<()>,
}

impl Topics {
    pub fn new(table: TopicTable) -> Topics {
        Topics {
            current: std::sync::RwLock::new(Arc::new(table)),
            changes: std::sync::Mutex::new(()),
        }
    }

    pub fn read(&self) -> Arc<TopicTable> {
        self.current.read().unwrap().clone()
    }

    /// Applies `change` to a copy of the table and publishes the copy if it
    /// succeeds.
    pub fn change<R, E>(
        &self,
        change: impl FnOnce(&mut TopicTable) -> Result<R, E>,
    ) -> Result<R, E> {
        let _one_at_a_time = self.changes.lock().unwrap();
        let mut copy = (*self.read()).clone();
        let r = change(&mut copy)?;
        *self.current.write().unwrap() = Arc::new(copy);
        Ok(r)
    }
}

#[derive(Clone)]
pub struct TopicTable {
    data_dir: PathBuf,
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<TopicId, Arc<Topic>>,
    pub(crate) deleting: Vec<String>,
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
                // Directories holding no data are creations a crash
                // interrupted before topics.json was first written.
                let mut dirs = 0;
                for e in std::fs::read_dir(config.data_dir.join("partitions"))? {
                    let e = e?;
                    if e.path().is_dir() && holds_data(&e.path())? {
                        dirs += 1;
                    }
                }
                if dirs > 0 {
                    return Err(io::Error::other(format!(
                        "{} is missing, but {} holds {dirs} partition directories with data: restore the file, \
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
            let id = id_from_hex(&rec.id).ok_or_else(|| {
                io::Error::other(format!("{}: bad topic id {}", path.display(), rec.id))
            })?;
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
            let owned = parsed
                .is_some_and(|(id, p)| self.by_id.get(&id).is_some_and(|t| p < t.partitions.len()));
            if owned {
                continue;
            }
            let deleted = parsed.is_some_and(|(id, _)| self.deleting.contains(&id_to_hex(&id)));
            if deleted {
                tracing::info!("finishing the delete of partition directory {name}");
                std::fs::remove_dir_all(entry.path())?;
            } else if entry.path().is_dir() && !holds_data(&entry.path())? {
                tracing::debug!(
                    "removing empty partition directory {name} (a create that did not finish)"
                );
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

    /// Every partition the table holds.
    pub fn partition_count(&self) -> usize {
        self.by_name.values().map(|t| t.partitions.len()).sum()
    }

    /// Adds a topic whose partitions `create_logs` made, unless the name was
    /// taken meanwhile (then the caller removes them).
    pub fn insert(&mut self, topic: Arc<Topic>) -> Result<(), InsertError> {
        if self.by_name.contains_key(&topic.name) {
            return Err(InsertError::Exists);
        }
        self.by_name.insert(topic.name.clone(), topic.clone());
        self.by_id.insert(topic.id, topic.clone());
        if let Err(e) = self.persist() {
            self.by_name.remove(&topic.name);
            self.by_id.remove(&topic.id);
            return Err(InsertError::Io(e));
        }
        Ok(())
    }

    /// Replaces a topic by a changed one (grown, its new partitions made by
    /// `create_logs`, or reconfigured), unless it changed meanwhile.
    pub fn replace(&mut self, old: &Arc<Topic>, grown: Arc<Topic>) -> Result<(), InsertError> {
        let current = self.by_name.get(&old.name);
        if !current.is_some_and(|c| Arc::ptr_eq(c, old)) {
            return Err(InsertError::Exists);
        }
        self.by_name.insert(grown.name.clone(), grown.clone());
        self.by_id.insert(grown.id, grown);
        if let Err(e) = self.persist() {
            self.by_name.insert(old.name.clone(), old.clone());
            self.by_id.insert(old.id, old.clone());
            return Err(InsertError::Io(e));
        }
        Ok(())
    }

    /// Forgets the topic, durably noting that its files are being removed;
    /// the caller removes them (outside the table's lock) with `remove_logs`
    /// and then calls `deleted`.
    pub fn forget(&mut self, name: &str) -> io::Result<Option<Arc<Topic>>> {
        let Some(topic) = self.by_name.remove(name) else {
            return Ok(None);
        };
        self.by_id.remove(&topic.id);
        self.deleting.push(id_to_hex(&topic.id));
        if let Err(e) = self.persist() {
            self.deleting.pop();
            self.by_id.insert(topic.id, topic.clone());
            self.by_name.insert(name.to_string(), topic);
            return Err(e);
        }
        Ok(Some(topic))
    }

    /// A forgotten topic's files are gone.
    pub fn deleted(&mut self, id: &TopicId) -> io::Result<()> {
        self.deleting.retain(|d| *d != id_to_hex(id));
        self.persist()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.by_name
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }
}

#[derive(Debug)]
pub enum InsertError {
    /// The name is taken (or the topic changed) since the logs were made.
    Exists,
    Io(io::Error),
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
    fn a_creation_that_fails_part_way_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::BrokerConfig::new(dir.path());
        let id = TopicId([9; 16]);
        for n in [10, 100] {
            std::fs::create_dir_all(dir.path().join("partitions")).unwrap();
            // Partition 5's directory is in the way: creating it fails.
            let blocker = dir.path().join(partition_dir_name(&id, 5));
            std::fs::create_dir_all(&blocker).unwrap();
            let Err(err) = create_logs(&config, "t", &id, 0..n, &BTreeMap::new()) else {
                panic!("created over an existing directory")
            };
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
            let left: Vec<_> = std::fs::read_dir(dir.path().join("partitions"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(left, vec![blocker.clone()], "only what it made is removed");
            std::fs::remove_dir(&blocker).unwrap();
        }
        let Ok(made) = create_logs(&config, "t", &id, 0..3, &BTreeMap::new()) else {
            panic!("create failed")
        };
        assert_eq!(made.len(), 3);
        let meta = std::fs::read_to_string(
            dir.path()
                .join(partition_dir_name(&id, 2))
                .join(PARTITION_METADATA),
        )
        .unwrap();
        assert_eq!(
            parse_partition_metadata(&meta),
            Some((id, "t".to_string(), 2))
        );
    }

    fn open_table(dir: &Path) -> io::Result<TopicTable> {
        let entries = crate::checkpoints::Entries::new();
        let config = crate::BrokerConfig::new(dir);
        TopicTable::open(
            &config,
            &Recovered {
                clean_shutdown: false,
                checkpoints: &entries,
            },
        )
    }

    fn partition_with(dir: &Path, name: &str, data: bool) {
        let p = dir.join("partitions").join(name);
        std::fs::create_dir_all(&p).unwrap();
        let bytes: &[u8] = if data { b"data" } else { b"" };
        std::fs::write(p.join("00000000000000000000.log"), bytes).unwrap();
    }

    #[test]
    fn directories_no_topic_owns_are_finished_removed_or_set_aside_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let deleted = TopicId([3; 16]);
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join("meta/topics.json"),
            format!(
                r#"{{"topics": [], "deleting": ["{}"]}}"#,
                id_to_hex(&deleted)
            ),
        )
        .unwrap();
        partition_with(dir.path(), &format!("{}-0", id_to_hex(&deleted)), true);
        partition_with(
            dir.path(),
            &format!("{}-0", id_to_hex(&TopicId([4; 16]))),
            false,
        );
        let unknown = format!("{}-0", id_to_hex(&TopicId([5; 16])));
        partition_with(dir.path(), &unknown, true);
        let table = open_table(dir.path()).unwrap();
        assert!(table.deleting.is_empty());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("partitions"))
            .unwrap()
            .collect();
        assert!(
            left.is_empty(),
            "the delete finished, the empty create went"
        );
        assert!(dir
            .path()
            .join("stray")
            .join(&unknown)
            .join("00000000000000000000.log")
            .exists());
        let file = std::fs::read_to_string(dir.path().join("meta/topics.json")).unwrap();
        assert!(!file.contains("deleting"), "{file}");
    }

    #[test]
    fn a_missing_topics_json_refuses_to_start_only_when_partitions_hold_data() {
        let dir = tempfile::tempdir().unwrap();
        partition_with(
            dir.path(),
            &format!("{}-0", id_to_hex(&TopicId([6; 16]))),
            false,
        );
        open_table(dir.path()).unwrap();
        partition_with(
            dir.path(),
            &format!("{}-0", id_to_hex(&TopicId([7; 16]))),
            true,
        );
        let e = open_table(dir.path()).err().expect("refused");
        assert!(e.to_string().contains("topics.json is missing"), "{e}");
        assert!(e.to_string().contains("cohort repair"), "{e}");
    }

    #[test]
    fn ids_round_trip_through_hex() {
        let id = TopicId([7; 16]);
        assert_eq!(id_from_hex(&id_to_hex(&id)), Some(id));
        assert_eq!(id_from_hex("zz"), None);
    }
}
