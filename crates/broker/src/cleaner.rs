//! The log cleaner: compacts the partitions of topics whose cleanup.policy
//! includes `compact`, one pass every `--log-cleaner-backoff-ms`, on the
//! blocking pool. The work (reading segments, the offset map, writing cleaned
//! files) holds no lock; only each segment's swap takes the partition's lock,
//! for one rename. Per partition it remembers how far the log is clean (the
//! first dirty offset) and its earliest tombstone horizon, in
//! `meta/cleaner-offsets`:
//!
//! ```text
//! cohort-cleaner-offsets 1
//! <number of logs>
//! <log directory> <first dirty offset> <earliest tombstone horizon, or -1>
//! ```
//!
//! A lost file only means the next pass cleans from the start again.

use crate::partition::Partition;
use crate::topics::{write_atomically, Topic};
use crate::Broker;
use cohort_log_local::compact::{clean, CleanSettings};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const HEADER: &str = "cohort-cleaner-offsets 1";

/// (first dirty offset, earliest tombstone horizon) by log directory.
#[derive(Default)]
pub struct CleanerState {
    logs: Mutex<BTreeMap<String, (u64, Option<i64>)>>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta/cleaner-offsets")
}

impl CleanerState {
    pub fn load(data_dir: &Path) -> CleanerState {
        let mut logs = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(path(data_dir)) {
            let mut lines = text.lines();
            if lines.next() == Some(HEADER) {
                for line in lines.skip(1) {
                    let parts: Vec<&str> = line.split(' ').collect();
                    if let [dir, dirty, horizon] = parts[..] {
                        if let (Ok(d), Ok(h)) = (dirty.parse::<u64>(), horizon.parse::<i64>()) {
                            logs.insert(dir.to_string(), (d, (h >= 0).then_some(h)));
                        }
                    }
                }
            } else if !text.is_empty() {
                tracing::warn!(
                    "{}: not a cleaner-offsets file; compacted logs are cleaned from their start",
                    path(data_dir).display()
                );
            }
        }
        CleanerState {
            logs: Mutex::new(logs),
        }
    }

    fn save(&self, data_dir: &Path) -> io::Result<()> {
        let logs = self.logs.lock().unwrap();
        let mut text = format!("{HEADER}\n{}\n", logs.len());
        for (dir, (dirty, horizon)) in logs.iter() {
            text.push_str(&format!("{dir} {dirty} {}\n", horizon.unwrap_or(-1)));
        }
        write_atomically(&path(data_dir), text.as_bytes())
    }
}

impl Broker {
    /// Whether the topic's cleanup.policy in effect (its own, else the
    /// broker's, dynamic or not) names `policy` ("compact" or "delete").
    pub(crate) fn has_cleanup_policy(&self, t: &Topic, policy: &str) -> bool {
        t.configs
            .get("cleanup.policy")
            .cloned()
            .or_else(|| self.topic_defaults("cleanup.policy"))
            .is_some_and(|p| p.split(',').any(|x| x.trim() == policy))
    }

    /// One cleaning pass over every compacted partition that needs one.
    pub fn clean_logs(&self) {
        let mut changed = false;
        for t in self
            .topics
            .read()
            .all()
            .iter()
            .filter(|t| self.has_cleanup_policy(t, "compact"))
        {
            for p in &t.partitions {
                match self.clean_partition(t, p) {
                    Ok(c) => changed |= c,
                    Err(e) => {
                        tracing::warn!(topic = %t.name, partition = p.index, "log cleaning stopped: {e}")
                    }
                }
            }
        }
        if changed {
            // Forget the logs of deleted topics.
            let live: std::collections::BTreeSet<String> = self
                .topics
                .read()
                .all_partitions()
                .iter()
                .map(|p| p.dir_name.clone())
                .collect();
            self.cleaner
                .logs
                .lock()
                .unwrap()
                .retain(|dir, _| live.contains(dir));
            if let Err(e) = self.cleaner.save(&self.config.data_dir) {
                tracing::warn!("could not write the cleaner offsets: {e}");
            }
        }
    }

    /// Cleans one partition if its dirty ratio, an overdue segment or a passed
    /// tombstone horizon calls for it; `true` when it did.
    fn clean_partition(&self, t: &Topic, p: &Partition) -> io::Result<bool> {
        let now = crate::now_ms();
        let config = |name: &str| self.topic_defaults(name);
        let get = |name: &str| t.configs.get(name).cloned().or_else(|| config(name));
        let int = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let min_lag = int("min.compaction.lag.ms");
        let max_lag = int("max.compaction.lag.ms");
        let ratio: f64 = get("min.cleanable.dirty.ratio")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.5);
        // Only what every consumer may read, whole segments, old enough.
        let cleanable: Vec<_> = p
            .sealed_segments(p.high_watermark())
            .into_iter()
            .take_while(|s| s.max_timestamp <= now.saturating_sub(min_lag))
            .collect();
        if cleanable.is_empty() {
            return Ok(false);
        }
        let (dirty_from, horizon) = self
            .cleaner
            .logs
            .lock()
            .unwrap()
            .get(&p.dir_name)
            .copied()
            .unwrap_or((0, None));
        let first_dirty = dirty_from.max(p.log_start_offset());
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        for s in &cleanable {
            if s.next_offset <= first_dirty {
                clean_bytes += s.size;
            } else {
                dirty_bytes += s.size;
            }
        }
        let dirty_ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes).max(1) as f64;
        let overdue = cleanable
            .iter()
            .any(|s| s.next_offset > first_dirty && s.max_timestamp <= now.saturating_sub(max_lag));
        let tombstones_due = horizon.is_some_and(|h| now > h);
        if !(dirty_bytes > 0 && (dirty_ratio >= ratio || overdue)) && !tombstones_due {
            return Ok(false);
        }
        let settings = CleanSettings {
            now_ms: now,
            delete_retention_ms: int("delete.retention.ms"),
            max_map_bytes: self.config.log_cleaner_dedupe_buffer_size,
        };
        let started = std::time::Instant::now();
        let out = clean(&cleanable, first_dirty, settings)?;
        let mut installed = 0;
        for (base, size, file) in &out.files {
            let segment = cleanable
                .iter()
                .find(|s| s.base == *base)
                .map(|s| s.path.clone())
                .unwrap_or_default();
            if p.install_cleaned(&segment, *base, *size, file)? {
                installed += 1;
            }
        }
        self.cleaner.logs.lock().unwrap().insert(
            p.dir_name.clone(),
            (out.clean_up_to.max(first_dirty), out.next_horizon),
        );
        tracing::info!(
            topic = %t.name,
            partition = p.index,
            "log cleaned up to offset {}: {} segments rewritten, {} records removed, {} bytes read, {} written, in {:?}",
            out.clean_up_to,
            installed,
            out.records_removed,
            out.bytes_read,
            out.bytes_written,
            started.elapsed()
        );
        Ok(true)
    }
}
