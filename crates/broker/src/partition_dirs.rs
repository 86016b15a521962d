//! Partition directories: their names and `partition.metadata`, making the
//! logs of new partitions (durably, all or nothing) and removing them, and
//! opening an existing partition's log with what recovery needs to know.

use crate::partition::Partition;
use crate::topics::{id_from_hex, id_to_hex, Recovered};
use cohort_log_local::{LocalLog, LocalLogConfig, OpenError, OpenHint};
use cohort_types::TopicId;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Makes the logs of partitions `range` of a topic: directories, metadata
/// files and empty segments, each directory synced, before this returns (a
/// topic is recorded in topics.json only after). All or nothing: on any failure,
/// what was made is removed.
pub fn create_logs(
    config: &crate::BrokerConfig,
    name: &str,
    id: &TopicId,
    range: std::ops::Range<i32>,
    configs: &BTreeMap<String, String>,
) -> io::Result<Vec<Arc<Partition>>> {
    let mut made: Vec<Arc<Partition>> = Vec::new();
    // Directories this call created: the only ones it may remove.
    let mut ours: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for p in range.clone() {
            let dir = config.data_dir.join(partition_dir_name(id, p));
            std::fs::create_dir(&dir)?;
            ours.push(dir.clone());
            made.push(Arc::new(open_partition(
                config, name, id, p, configs, None,
            )?));
            // One directory at a time: a syncfs for many at once is faster
            // but stalls every other partition's fsync behind it (measured:
            // produce on another topic waited 1.3 to 13 s).
            std::fs::File::open(&dir)?.sync_all()?;
        }
        std::fs::File::open(config.data_dir.join("partitions"))?.sync_all()
    })();
    match result {
        Ok(()) => Ok(made),
        Err(e) => {
            remove_logs(&made);
            for dir in ours {
                cohort_log_local::files().forget_dir(&dir);
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e)
        }
    }
}

/// Removes partitions' files (a failed create, or a delete).
pub fn remove_logs(partitions: &[Arc<Partition>]) {
    for p in partitions {
        if let Err(e) = p.destroy() {
            tracing::warn!(topic = %p.topic, partition = p.index, "could not remove the partition's files: {e}");
        }
    }
}

/// Whether a directory holds any bytes of log data.
pub(crate) fn holds_data(dir: &Path) -> io::Result<bool> {
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
pub(crate) fn open_partition(
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
            new_log: false,
        },
        None => {
            std::fs::write(
                dir.join(PARTITION_METADATA),
                partition_metadata(name, id, p),
            )?;
            OpenHint {
                new_log: true,
                ..OpenHint::default()
            }
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
