//! DescribeProducers and DescribeLogDirs: what the partitions hold, for admin
//! tools (kafka-transactions.sh describe-producers, kafka-log-dirs.sh).

use crate::Broker;
use cohort_types::api::*;
use cohort_types::ErrorCode;

impl Broker {
    pub(crate) fn describe_producers(
        &self,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Vec<ProducersTopicResult> {
        topics
            .into_iter()
            .map(|(name, parts)| {
                let topic = self.topics.read().get(&name);
                let partitions = parts
                    .into_iter()
                    .map(
                        |index| match topic.as_ref().and_then(|t| self.partition_of(t, index)) {
                            None => ProducersPartitionResult {
                                partition: index,
                                error: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                message: None,
                                producers: vec![],
                            },
                            Some(p) if p.is_failed() => ProducersPartitionResult {
                                partition: index,
                                error: ErrorCode::KAFKA_STORAGE_ERROR,
                                message: p.damaged(),
                                producers: vec![],
                            },
                            Some(p) => ProducersPartitionResult {
                                partition: index,
                                error: ErrorCode::NONE,
                                message: None,
                                producers: p.active_producers(),
                            },
                        },
                    )
                    .collect();
                ProducersTopicResult { name, partitions }
            })
            .collect()
    }

    /// The data directory is the one log directory; unknown topics and
    /// partitions are left out, as Kafka leaves them out.
    pub(crate) fn describe_log_dirs(
        &self,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> LogDirDescription {
        let table = self.topics.read();
        let mut topics = Vec::new();
        let all: Vec<(String, Vec<i32>)> = match wanted {
            Some(w) => w,
            None => table
                .all()
                .iter()
                .map(|t| (t.name.clone(), (0..t.partitions.len() as i32).collect()))
                .collect(),
        };
        for (name, parts) in all {
            let Some(t) = table.get(&name) else { continue };
            let sizes: Vec<(i32, i64)> = parts
                .into_iter()
                .filter_map(|i| self.partition_of(&t, i).map(|p| (i, p.size_bytes() as i64)))
                .collect();
            if !sizes.is_empty() {
                topics.push((name, sizes));
            }
        }
        topics.sort();
        let (total_bytes, usable_bytes) = disk_space(&self.config.data_dir).unwrap_or((-1, -1));
        LogDirDescription {
            path: self.config.data_dir.display().to_string(),
            error: ErrorCode::NONE,
            topics,
            total_bytes,
            usable_bytes,
        }
    }
}

/// (total, usable) bytes of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct statvfs fills.
    if unsafe { libc::statvfs(path.as_ptr(), &mut s) } != 0 {
        return None;
    }
    let frag = s.f_frsize as i64;
    Some((s.f_blocks as i64 * frag, s.f_bavail as i64 * frag))
}
