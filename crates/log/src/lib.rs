//! Storage for ordered logs of Kafka record batches.
//!
//! A `LogStore` keeps one partition's batches in offset order. The broker's data
//! plane keeps client batches in it; the group coordinator keeps its records in
//! one too. Appends are cheap and not yet durable; `syncer()` hands out the work
//! that makes everything appended so far durable, so the caller can run it outside
//! its locks and let many appends share one fsync (group commit).

pub mod batch;
pub mod conformance;
pub mod memory;

pub use batch::{BatchError, BatchHeader};
use bytes::Bytes;
use std::io;

/// Makes everything appended before it was taken durable.
pub type Syncer = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// A segment that no longer takes appends, as a log cleaner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSegment {
    pub base: u64,
    /// The offset after its last batch.
    pub next_offset: u64,
    pub size: u64,
    pub max_timestamp: i64,
    /// Its file, to read without holding the log.
    pub path: std::path::PathBuf,
}

/// Retention settings, as Kafka names them; a negative value means unlimited.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

pub trait LogStore: Send {
    /// Appends one record batch whose header was already validated, assigning it
    /// offsets from `end_offset()`: its base offset field is rewritten in place
    /// (the CRC does not cover it). Returns the assigned base offset.
    fn append(&mut self, batch: &mut [u8]) -> io::Result<u64>;

    /// The first offset still held.
    fn start_offset(&self) -> u64;

    /// The offset the next batch will get.
    fn end_offset(&self) -> u64;

    /// Bytes the log holds (its files, for a log on disk).
    fn size_bytes(&self) -> u64;

    /// Whole batches starting with the one that holds `from`, stopping before any
    /// batch that reaches `up_to` or beyond, and within `max_bytes` except that the
    /// first batch is always returned whole (so a large batch never blocks a
    /// consumer, as KIP-74).
    fn read(&self, from: u64, up_to: u64, max_bytes: usize) -> io::Result<Bytes>;

    /// The first batch whose max timestamp is at or after `timestamp`: its base
    /// offset (or `from` is clamped to the start) and that max timestamp.
    fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<Option<(u64, i64)>>;

    /// The batch with the largest max timestamp: (its last offset, that timestamp).
    fn max_timestamp(&self) -> io::Result<Option<(u64, i64)>>;

    /// Work that makes all appends so far durable; run it without holding the log.
    fn syncer(&mut self) -> io::Result<Syncer>;

    /// Visits every batch header in order (producer-state recovery).
    fn scan(&self, visit: &mut dyn FnMut(&BatchHeader)) -> io::Result<()>;

    /// Drops whole old segments past the retention limits; returns how many
    /// batches' worth of offsets were removed (new start minus old start).
    /// Their files may linger until `purge_deleted`, which the caller runs
    /// once the new start offset is recorded.
    fn apply_retention(&mut self, now_ms: i64, retention: Retention) -> io::Result<u64>;

    /// Removes every batch at or after `offset` (a batch boundary).
    fn truncate_to(&mut self, offset: u64) -> io::Result<()>;

    /// Moves the start of the log forward to `offset` (at most the end), as
    /// DeleteRecords does: nothing before it is served again. Whole segments
    /// before it go at the next `apply_retention`. Returns the new start.
    fn advance_start(&mut self, offset: u64) -> u64;

    /// The sealed segments wholly below `below`, oldest first (none for a log
    /// that cannot be compacted).
    fn sealed_segments(&self, _below: u64) -> Vec<SealedSegment> {
        Vec::new()
    }

    /// Replaces the sealed segment at `base`, if it is still `size` bytes, by
    /// the cleaned file `cleaned` (same offsets, fewer records), atomically.
    /// `Ok(false)`: the segment changed meanwhile and `cleaned` was removed.
    fn install_cleaned(
        &mut self,
        _base: u64,
        _size: u64,
        cleaned: &std::path::Path,
    ) -> io::Result<bool> {
        let _ = std::fs::remove_file(cleaned);
        Ok(false)
    }

    /// New segment settings (a topic's segment.bytes, segment.ms and
    /// index.interval.bytes changed): they apply from the next append.
    fn set_segment_config(
        &mut self,
        _segment_bytes: u64,
        _segment_ms: i64,
        _index_interval_bytes: usize,
    ) {
    }

    /// Removes the files of segments retention dropped.
    fn purge_deleted(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Removes everything this log holds on disk.
    fn destroy(self: Box<Self>) -> io::Result<()>;
}
