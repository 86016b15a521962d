//! One partition: its log, its producers' sequence state, and how far it is
//! durable (which, under the default fsync policy, is also how far consumers may
//! read: the high watermark).

use crate::producers::{ProducerStates, Verdict};
use bytes::Bytes;
use cohort_log::batch::set_leader_epoch;
use cohort_log::{BatchHeader, LogStore, Retention, Syncer};
use cohort_types::ErrorCode;
use std::io;
use std::sync::Mutex;
use tokio::sync::watch;

/// The only leader epoch a single node ever has for a partition.
pub const LEADER_EPOCH: i32 = 0;

pub struct Partition {
    pub topic: String,
    pub index: i32,
    /// The log's directory relative to the data directory: its name in the
    /// recovery-point checkpoint.
    pub dir_name: String,
    state: Mutex<State>,
    /// The high watermark: every offset below it is visible to consumers (and,
    /// when produce waits for fsync, durable).
    high_watermark: watch::Sender<u64>,
    /// Offsets below this are on disk.
    durable: watch::Sender<Durable>,
}

/// How far the log is durable, or that a sync failed and it cannot be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durable {
    UpTo(u64),
    Failed,
}

struct State {
    log: Box<dyn LogStore>,
    producers: ProducerStates,
    /// A sync failed: data written since may be lost, so the partition refuses
    /// further work rather than acknowledge what it cannot keep, until
    /// `recover_after_sync_failure` succeeds.
    failed: bool,
    /// How far the log was durable when a sync failed.
    durable_before_failure: u64,
    /// When an append last failed (a full disk): its error is logged once a
    /// minute, and every append tries again.
    write_failed_at: Option<std::time::Instant>,
    /// The log on disk is damaged (found at open or by a read): the partition
    /// is offline until an operator repairs it. Names the file and offset.
    damaged: Option<String>,
}

#[derive(Debug)]
pub struct Appended {
    pub base_offset: u64,
    /// The offset after this batch; acknowledge once durable past it.
    pub end_offset: u64,
    pub log_start_offset: u64,
    pub duplicate: bool,
}

impl Partition {
    /// Wraps an opened log, rebuilding producer state from its batch headers.
    pub fn new(
        topic: &str,
        index: i32,
        dir_name: String,
        log: Box<dyn LogStore>,
    ) -> io::Result<Partition> {
        let mut producers = ProducerStates::default();
        log.scan(&mut |h| producers.record(h))?;
        // Whatever survived recovery is on disk: the log was synced on open.
        let end = log.end_offset();
        Ok(Partition {
            topic: topic.to_string(),
            index,
            dir_name,
            state: Mutex::new(State {
                log,
                producers,
                failed: false,
                durable_before_failure: end,
                write_failed_at: None,
                damaged: None,
            }),
            high_watermark: watch::channel(end).0,
            durable: watch::channel(Durable::UpTo(end)).0,
        })
    }

    /// A partition whose log is damaged: it answers KAFKA_STORAGE_ERROR to
    /// everything until an operator repairs the log and restarts the broker.
    pub fn offline(topic: &str, index: i32, dir_name: String, why: String) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            dir_name,
            state: Mutex::new(State {
                log: Box::new(cohort_log::memory::MemoryLog::new()),
                producers: ProducerStates::default(),
                failed: true,
                durable_before_failure: 0,
                write_failed_at: None,
                damaged: Some(why),
            }),
            high_watermark: watch::channel(0).0,
            durable: watch::channel(Durable::Failed).0,
        }
    }

    /// Why the partition is offline, if its log is damaged.
    /// Applies a topic's changed segment settings from the next append.
    pub fn set_segment_config(&self, c: &cohort_log_local::LocalLogConfig) {
        self.state.lock().unwrap().log.set_segment_config(
            c.segment_bytes,
            c.segment_ms,
            c.index_interval_bytes,
        );
    }

    pub fn damaged(&self) -> Option<String> {
        self.state.lock().unwrap().damaged.clone()
    }

    /// (start offset, recovery point) for the checkpoint file; None when the
    /// partition cannot vouch for its log.
    pub fn checkpoint(&self) -> Option<cohort_log_local::Checkpoint> {
        let st = self.state.lock().unwrap();
        if st.damaged.is_some() {
            return None;
        }
        let Durable::UpTo(durable) = *self.durable.borrow() else {
            return None;
        };
        Some(cohort_log_local::Checkpoint {
            start_offset: st.log.start_offset(),
            recovery_point: durable,
        })
    }

    /// Validates the sequence and appends one checked batch.
    pub fn append(&self, batch: &mut [u8], header: &BatchHeader) -> Result<Appended, ErrorCode> {
        let mut st = self.state.lock().unwrap();
        if st.failed {
            return Err(ErrorCode::KAFKA_STORAGE_ERROR);
        }
        let log_start_offset = st.log.start_offset();
        match st.producers.check(header) {
            Verdict::Reject(code) => Err(code),
            Verdict::Duplicate(base_offset) => Ok(Appended {
                base_offset,
                // The original may still be waiting for its sync.
                end_offset: st.log.end_offset(),
                log_start_offset,
                duplicate: true,
            }),
            Verdict::Append => {
                set_leader_epoch(batch, LEADER_EPOCH);
                let base_offset = match st.log.append(batch) {
                    Ok(o) => o,
                    Err(e) => {
                        // The log took nothing (a partly written batch is cut
                        // back): the next append tries again, so the partition
                        // comes back by itself once the disk has room.
                        let now = std::time::Instant::now();
                        if st
                            .write_failed_at
                            .is_none_or(|t| now.duration_since(t).as_secs() >= 60)
                        {
                            tracing::error!(topic = %self.topic, partition = self.index, "append failed (retried with every produce; logged once a minute): {e}");
                            st.write_failed_at = Some(now);
                        }
                        return Err(ErrorCode::KAFKA_STORAGE_ERROR);
                    }
                };
                if st.write_failed_at.take().is_some() {
                    tracing::info!(topic = %self.topic, partition = self.index, "appends succeed again");
                }
                st.producers.record(&BatchHeader {
                    base_offset,
                    ..*header
                });
                Ok(Appended {
                    base_offset,
                    end_offset: st.log.end_offset(),
                    log_start_offset,
                    duplicate: false,
                })
            }
        }
    }

    /// What must run to make every append so far durable, and the offset it covers.
    pub fn take_syncer(&self) -> io::Result<(u64, Syncer)> {
        let mut st = self.state.lock().unwrap();
        let end = st.log.end_offset();
        Ok((end, st.log.syncer()?))
    }

    pub fn mark_durable(&self, end: u64) {
        self.durable.send_if_modified(|d| match d {
            Durable::UpTo(old) if *old < end => {
                *d = Durable::UpTo(end);
                true
            }
            _ => false,
        });
    }

    pub fn mark_failed(&self) {
        let mut st = self.state.lock().unwrap();
        if !st.failed {
            st.failed = true;
            if let Durable::UpTo(d) = *self.durable.borrow() {
                st.durable_before_failure = d;
            }
        }
        self.durable.send_replace(Durable::Failed);
    }

    /// Whether a failed sync awaits `recover_after_sync_failure`.
    pub fn needs_recovery(&self) -> bool {
        let st = self.state.lock().unwrap();
        st.failed && st.damaged.is_none()
    }

    /// Brings a partition back after a failed sync: with `drop_unsynced`
    /// (fsync=always, where nothing past the durable offset was acknowledged
    /// or shown to consumers) the log is cut back to what was durable, since
    /// after a failed fsync the pages written since cannot be trusted; then
    /// everything is synced again. Producer state is rebuilt from the log, so
    /// a retried batch that was cut is appended again, not taken for a
    /// duplicate. Returns the new durable end.
    pub fn recover_after_sync_failure(&self, drop_unsynced: bool) -> io::Result<u64> {
        let mut st = self.state.lock().unwrap();
        if drop_unsynced {
            let keep = st.durable_before_failure;
            if st.log.end_offset() > keep {
                st.log.truncate_to(keep)?;
            }
            let mut producers = ProducerStates::default();
            st.log.scan(&mut |h| producers.record(h))?;
            st.producers = producers;
        }
        let end = st.log.end_offset();
        (st.log.syncer()?)()?;
        st.failed = false;
        st.durable_before_failure = end;
        self.durable.send_replace(Durable::UpTo(end));
        Ok(end)
    }

    pub fn advance_high_watermark(&self, to: u64) -> bool {
        self.high_watermark.send_if_modified(|hw| {
            if *hw < to {
                *hw = to;
                true
            } else {
                false
            }
        })
    }

    pub fn high_watermark(&self) -> u64 {
        *self.high_watermark.borrow()
    }

    pub fn subscribe_durable(&self) -> watch::Receiver<Durable> {
        self.durable.subscribe()
    }

    pub fn log_end_offset(&self) -> u64 {
        self.state.lock().unwrap().log.end_offset()
    }

    /// DeleteRecords: moves the log start to `offset`, or to the high
    /// watermark for -1; never back, never past the high watermark. Returns
    /// the new log start offset.
    pub fn delete_records(&self, offset: i64) -> Result<u64, ErrorCode> {
        let hw = self.high_watermark();
        let target = match offset {
            -1 => hw,
            o if o < 0 || o as u64 > hw => return Err(ErrorCode::OFFSET_OUT_OF_RANGE),
            o => o as u64,
        };
        let mut st = self.state.lock().unwrap();
        if st.failed || st.damaged.is_some() {
            return Err(ErrorCode::KAFKA_STORAGE_ERROR);
        }
        Ok(st.log.advance_start(target))
    }

    /// The sealed segments below `below`, for the log cleaner.
    pub fn sealed_segments(&self, below: u64) -> Vec<cohort_log::SealedSegment> {
        let st = self.state.lock().unwrap();
        if st.failed || st.damaged.is_some() {
            return Vec::new();
        }
        st.log.sealed_segments(below)
    }

    /// Swaps a cleaned segment in (see `LogStore::install_cleaned`).
    /// The directory syncs happen outside the lock: a produce or fetch on this
    /// partition waits only for the rename and the new segment's scan.
    pub fn install_cleaned(
        &self,
        segment: &std::path::Path,
        base: u64,
        size: u64,
        cleaned: &std::path::Path,
    ) -> io::Result<bool> {
        cohort_log_local::compact::prepare_install(segment)?;
        let installed = self
            .state
            .lock()
            .unwrap()
            .log
            .install_cleaned(base, size, cleaned)?;
        cohort_log_local::compact::finish_install(segment)?;
        Ok(installed)
    }

    /// The idempotent producers this partition remembers (DescribeProducers).
    pub fn active_producers(&self) -> Vec<(i64, i16, i32, i64)> {
        self.state.lock().unwrap().producers.active()
    }

    /// Bytes the log holds on disk (DescribeLogDirs).
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().unwrap().log.size_bytes()
    }

    pub fn log_start_offset(&self) -> u64 {
        self.state.lock().unwrap().log.start_offset()
    }

    pub fn is_failed(&self) -> bool {
        self.state.lock().unwrap().failed
    }

    pub fn read(&self, from: u64, max_bytes: usize) -> io::Result<Bytes> {
        let up_to = self.high_watermark();
        let mut st = self.state.lock().unwrap();
        let read = st.log.read(from, up_to, max_bytes);
        if let Err(e) = &read {
            if e.kind() == io::ErrorKind::InvalidData && st.damaged.is_none() {
                // A batch on disk no longer matches its CRC: never serve it,
                // and take the partition offline until it is repaired.
                tracing::error!(
                    topic = %self.topic,
                    partition = self.index,
                    "partition taken offline: {e}; stop the broker and run `cohort repair`"
                );
                st.damaged = Some(e.to_string());
                st.failed = true;
            }
        }
        read
    }

    pub fn offset_for_timestamp(&self, ts: i64) -> io::Result<Option<(u64, i64)>> {
        self.state.lock().unwrap().log.offset_for_timestamp(ts)
    }

    pub fn max_timestamp(&self) -> io::Result<Option<(u64, i64)>> {
        self.state.lock().unwrap().log.max_timestamp()
    }

    pub fn apply_retention(&self, now_ms: i64, retention: Retention) -> io::Result<u64> {
        self.state
            .lock()
            .unwrap()
            .log
            .apply_retention(now_ms, retention)
    }

    /// Removes the files of segments retention dropped (after the new start
    /// offset was checkpointed).
    pub fn purge_deleted(&self) -> io::Result<()> {
        self.state.lock().unwrap().log.purge_deleted()
    }

    /// Removes the partition's files. Anyone still holding the partition gets
    /// storage errors from then on.
    pub fn destroy(&self) -> io::Result<()> {
        let mut st = self.state.lock().unwrap();
        st.failed = true;
        let log = std::mem::replace(&mut st.log, Box::new(cohort_log::memory::MemoryLog::new()));
        log.destroy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_log::batch::build_batch;

    fn append(p: &Partition, seq: i32) -> Result<Appended, ErrorCode> {
        let mut b = build_batch(0, &[b"v"], Some((7, 0, seq)));
        let h = BatchHeader::validate(&b).unwrap();
        p.append(&mut b, &h)
    }

    #[test]
    fn after_a_failed_sync_the_unacknowledged_tail_is_cut_and_its_retry_appended_again() {
        let p = Partition::new(
            "t",
            0,
            "partitions/x-0".into(),
            Box::new(cohort_log::memory::MemoryLog::new()),
        )
        .unwrap();
        append(&p, 0).unwrap();
        append(&p, 1).unwrap();
        p.mark_durable(2);
        // Two more batches, then their sync fails: their producers were told
        // KAFKA_STORAGE_ERROR.
        append(&p, 2).unwrap();
        append(&p, 3).unwrap();
        p.mark_failed();
        assert!(p.needs_recovery());
        assert_eq!(append(&p, 2).unwrap_err(), ErrorCode::KAFKA_STORAGE_ERROR);
        assert_eq!(p.recover_after_sync_failure(true).unwrap(), 2);
        assert!(!p.needs_recovery());
        assert_eq!(*p.subscribe_durable().borrow(), Durable::UpTo(2));
        // The producer retries sequence 2: a new append at offset 2, not a
        // "duplicate" of a batch that is gone.
        let again = append(&p, 2).unwrap();
        assert_eq!((again.base_offset, again.duplicate), (2, false));
    }

    #[test]
    fn without_cutting_the_log_is_kept_and_synced_again() {
        let p = Partition::new(
            "t",
            0,
            "partitions/x-0".into(),
            Box::new(cohort_log::memory::MemoryLog::new()),
        )
        .unwrap();
        append(&p, 0).unwrap();
        p.mark_failed();
        assert_eq!(p.recover_after_sync_failure(false).unwrap(), 1);
        assert_eq!(append(&p, 1).unwrap().base_offset, 1);
    }
}
