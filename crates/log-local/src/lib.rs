//! The embedded log: one directory per log, holding segment files named by their
//! base offset, each with an offset index and a time index. The format is
//! Kafka's own record batch v2, byte for byte; FORMAT.md at the repository root
//! describes the files.
//!
//! Opening a log recovers it (`recover`): a torn tail left by a crash is cut,
//! any other damage refuses to open with an error naming the file and byte.
//! Every read checks the CRC of each batch it returns, so a batch damaged on
//! disk after it was written is never served.

pub mod compact;
mod files;
mod recover;
mod repair;
mod segment;

pub use files::{files, set_max_open_files, FileCache};
pub use recover::{Checkpoint, Damage, OpenError, OpenHint, Recovery};
pub use repair::{repair, Repaired};

use bytes::Bytes;
use cohort_log::batch::{set_base_offset, BatchHeader};
use cohort_log::{LogStore, Retention, Syncer};
use segment::Segment;
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug)]
pub struct LocalLogConfig {
    /// Roll to a new segment past this size (Kafka's segment.bytes).
    pub segment_bytes: u64,
    /// Roll when the active segment's first batch is this much older than a new
    /// one (Kafka's segment.ms), so time retention can drop idle data.
    pub segment_ms: i64,
    /// Bytes between offset-index entries (Kafka's index.interval.bytes).
    pub index_interval_bytes: usize,
}

impl Default for LocalLogConfig {
    fn default() -> Self {
        LocalLogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
        }
    }
}

pub struct LocalLog {
    dir: PathBuf,
    config: LocalLogConfig,
    segments: BTreeMap<u64, Segment>,
    /// Sealed segments whose data may not be on disk yet.
    unsynced: Vec<PathBuf>,
    /// A segment file was created or removed since the directory was last synced.
    dir_dirty: bool,
    /// The first offset served, when DeleteRecords moved it into the first
    /// segment (restored from the checkpoint at open); else the first
    /// segment's base.
    logical_start: u64,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LocalLog {
    /// Opens (or creates) the log in `dir` knowing nothing of how it was left:
    /// the newest two segments may hold a torn tail.
    pub fn open(dir: &Path, config: LocalLogConfig) -> Result<(LocalLog, Recovery), OpenError> {
        LocalLog::open_with(dir, config, OpenHint::default())
    }

    pub fn open_with(
        dir: &Path,
        config: LocalLogConfig,
        hint: OpenHint,
    ) -> Result<(LocalLog, Recovery), OpenError> {
        if hint.must_exist && !dir.is_dir() {
            return Err(OpenError::Damaged(Damage {
                file: dir.to_path_buf(),
                position: 0,
                offset: None,
                reason: "the log's directory is missing".into(),
            }));
        }
        std::fs::create_dir_all(dir)?;
        let (mut segments, recovery) = recover::recover(dir, config.index_interval_bytes, hint)?;
        if segments.is_empty() {
            let start = hint.checkpoint.map_or(0, |c| c.start_offset);
            segments.insert(start, Segment::create(dir, start)?);
        }
        if !hint.new_log {
            sync_dir(dir)?;
        }
        let mut log = LocalLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            unsynced: Vec::new(),
            dir_dirty: false,
            logical_start: 0,
        };
        // A start DeleteRecords moved inside the first segment is known only
        // from the checkpoint.
        if let Some(c) = hint.checkpoint {
            log.advance_start(c.start_offset);
        }
        Ok((log, recovery))
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    fn roll(&mut self) -> io::Result<()> {
        let next = self.end_offset();
        let old = self.active();
        old.write_indexes(&self.dir)?;
        self.unsynced.push(old.file.path().to_path_buf());
        let seg = Segment::create(&self.dir, next)?;
        self.segments.insert(next, seg);
        self.dir_dirty = true;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment file that holds `offset` (or would).
    pub fn file_of(&self, offset: u64) -> PathBuf {
        let base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or_else(|| self.start_offset(), |(&b, _)| b);
        segment::log_path(&self.dir, base)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// Checks the CRC of every batch in `bytes`, read from byte `start` of a
/// segment: damage on disk is an error naming the file, never data served.
fn verify(bytes: &[u8], dir: &Path, base: u64, start: u64) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let bad = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                Damage {
                    file: segment::log_path(dir, base),
                    position: start + at as u64,
                    offset: None,
                    reason: why,
                }
                .to_string(),
            )
        };
        let h =
            BatchHeader::parse(&bytes[at..]).map_err(|e| bad(format!("bad batch header: {e}")))?;
        if at + h.size > bytes.len() {
            return Err(bad("batch runs past the segment".into()));
        }
        h.check_crc(&bytes[at..at + h.size]).map_err(|e| {
            let mut d = bad(format!("corrupt batch: {e}"));
            d = io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{d} (offset {})", h.base_offset),
            );
            d
        })?;
        at += h.size;
    }
    Ok(())
}

impl LogStore for LocalLog {
    fn set_segment_config(
        &mut self,
        segment_bytes: u64,
        segment_ms: i64,
        index_interval_bytes: usize,
    ) {
        self.config = LocalLogConfig {
            segment_bytes,
            segment_ms,
            index_interval_bytes,
        };
    }

    fn append(&mut self, batch: &mut [u8]) -> io::Result<u64> {
        let h = BatchHeader::parse(batch)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        if h.size != batch.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "batch length mismatch",
            ));
        }
        let active = self.active();
        let too_big = active.size > 0 && active.size + h.size as u64 > self.config.segment_bytes;
        let too_old = active
            .first_timestamp
            .is_some_and(|first| h.max_timestamp - first > self.config.segment_ms);
        // Positions in the index are u32: never let a segment pass 4 GiB.
        let too_far = active.size + h.size as u64 > u32::MAX as u64;
        if too_big || too_old || too_far {
            self.roll()?;
        }
        let base = self.end_offset();
        set_base_offset(batch, base);
        let h = BatchHeader {
            base_offset: base,
            ..h
        };
        let interval = self.config.index_interval_bytes;
        let seg = self.active_mut();
        let pos = seg.size;
        let file = seg.file.get()?;
        if let Err(e) = file.write_all_at(batch, pos) {
            // Part of the batch may have reached the file (a full disk): cut it
            // back so the segment still ends with a whole batch.
            let _ = file.set_len(pos);
            return Err(e);
        }
        seg.note_batch(pos, &h, interval);
        Ok(base)
    }

    fn start_offset(&self) -> u64 {
        let first = *self
            .segments
            .keys()
            .next()
            .expect("a log always has a segment");
        first.max(self.logical_start)
    }

    fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    fn sealed_segments(&self, below: u64) -> Vec<cohort_log::SealedSegment> {
        let active = self.active().base;
        self.segments
            .values()
            .filter(|s| s.base != active && s.next_offset <= below)
            .map(|s| cohort_log::SealedSegment {
                base: s.base,
                next_offset: s.next_offset,
                size: s.size,
                max_timestamp: s.max_timestamp,
                path: segment::log_path(&self.dir, s.base),
            })
            .collect()
    }

    fn install_cleaned(&mut self, base: u64, size: u64, cleaned: &Path) -> io::Result<bool> {
        let active = self.active().base;
        let Some(next) = self
            .segments
            .get(&base)
            .filter(|s| s.size == size && s.base != active)
            .map(|s| s.next_offset)
        else {
            let _ = std::fs::remove_file(cleaned);
            return Ok(false);
        };
        // The cleaned file must hold exactly the same offsets, whole.
        let check = Segment::scan_file(&std::fs::File::open(cleaned)?, base, true)?;
        if check.stopped.is_some() || check.next_offset(base) != next {
            let _ = std::fs::remove_file(cleaned);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: cleaned segment does not cover offsets {base}..{next}",
                    cleaned.display()
                ),
            ));
        }
        // `compact::prepare_install` removed the old indexes (durably), so a
        // crash never pairs the new log with them; `compact::finish_install`
        // makes the rename durable once the log is released.
        let path = segment::log_path(&self.dir, base);
        files().forget(&path);
        std::fs::rename(cleaned, &path)?;
        let file = Segment::open_file(&self.dir, base)?;
        let scan = Segment::scan_file(&file, base, true)?;
        if let Some(why) = scan.stopped {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {why}", path.display()),
            ));
        }
        let seg = Segment::from_scan(
            &self.dir,
            base,
            file,
            &scan,
            self.config.index_interval_bytes,
        );
        seg.write_indexes(&self.dir)?;
        self.segments.insert(base, seg);
        Ok(true)
    }

    fn advance_start(&mut self, offset: u64) -> u64 {
        self.logical_start = self.logical_start.max(offset.min(self.end_offset()));
        self.start_offset()
    }

    fn end_offset(&self) -> u64 {
        self.active().next_offset
    }

    fn read(&self, from: u64, up_to: u64, max_bytes: usize) -> io::Result<Bytes> {
        let mut out = Vec::new();
        let from = from.max(self.start_offset());
        for seg in self
            .segments
            .range(..=from)
            .next_back()
            .into_iter()
            .map(|(_, s)| s)
            .chain(self.segments.range(from + 1..).map(|(_, s)| s))
        {
            let Some((start, _)) = seg.position_of(from.max(seg.base))? else {
                continue;
            };
            let mut end = start;
            let mut full = false;
            let before = out.len() as u64;
            seg.headers_from(start, &mut |pos, h| {
                let taken = before + (end - start);
                if h.next_offset() > up_to
                    || (taken > 0 && taken + h.size as u64 > max_bytes as u64)
                {
                    full = true;
                    return false;
                }
                end = pos + h.size as u64;
                true
            })?;
            if end > start {
                let at = out.len();
                out.resize(at + (end - start) as usize, 0);
                seg.file.get()?.read_exact_at(&mut out[at..], start)?;
                verify(&out[at..], &self.dir, seg.base, start)?;
            }
            if full {
                break;
            }
        }
        Ok(Bytes::from(out))
    }

    fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<Option<(u64, i64)>> {
        for seg in self.segments.values() {
            if seg.max_timestamp < timestamp {
                continue;
            }
            // Start from the last indexed batch known to be older than the target.
            let i = seg.time_index.partition_point(|&(ts, _)| ts < timestamp);
            let from = if i == 0 {
                seg.base
            } else {
                seg.base + seg.time_index[i - 1].1 as u64
            };
            let Some((pos, _)) = seg.position_of(from)? else {
                continue;
            };
            let mut found = None;
            seg.headers_from(pos, &mut |_, h| {
                if h.max_timestamp >= timestamp {
                    found = Some((h.base_offset, h.max_timestamp));
                    return false;
                }
                true
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn max_timestamp(&self) -> io::Result<Option<(u64, i64)>> {
        Ok(self.segments.values().filter(|s| s.size > 0).fold(
            None,
            |best: Option<(u64, i64)>, s| match best {
                Some((_, t)) if t >= s.max_timestamp => best,
                _ => Some((s.max_timestamp_offset, s.max_timestamp)),
            },
        ))
    }

    fn syncer(&mut self) -> io::Result<Syncer> {
        let mut paths = std::mem::take(&mut self.unsynced);
        paths.push(self.active().file.path().to_path_buf());
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        Ok(Box::new(move || {
            for p in &paths {
                match files::files().get(p) {
                    Ok(f) => f.sync_data()?,
                    // Removed since (retention, truncation): nothing to sync.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(dir) = dir {
                sync_dir(&dir)?;
            }
            Ok(())
        }))
    }

    fn scan(&self, visit: &mut dyn FnMut(&BatchHeader)) -> io::Result<()> {
        for seg in self.segments.values() {
            seg.headers_from(0, &mut |_, h| {
                visit(h);
                true
            })?;
        }
        Ok(())
    }

    fn apply_retention(&mut self, now_ms: i64, retention: Retention) -> io::Result<u64> {
        let old_start = self.start_offset();
        let mut total = self.size_bytes();
        while self.segments.len() > 1 {
            let (&base, seg) = self.segments.iter().next().unwrap();
            // Wholly before a start DeleteRecords set.
            let next_base = *self.segments.keys().nth(1).unwrap();
            if next_base <= self.logical_start {
                total -= seg.size;
                self.segments.remove(&base);
                Segment::mark_deleted(&self.dir, base)?;
                self.dir_dirty = true;
                continue;
            }
            let too_old = retention.retention_ms >= 0
                && seg.size > 0
                && seg.max_timestamp < now_ms - retention.retention_ms;
            let too_big = retention.retention_bytes >= 0
                && (total - seg.size) as i64 >= retention.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            total -= seg.size;
            self.segments.remove(&base);
            Segment::mark_deleted(&self.dir, base)?;
            self.dir_dirty = true;
        }
        Ok(self.start_offset() - old_start)
    }

    /// Removes every batch at or after `offset` (which must be a batch
    /// boundary; otherwise the batch holding it goes too). Used to drop what
    /// was appended but never acknowledged after a failed write.
    fn truncate_to(&mut self, offset: u64) -> io::Result<()> {
        while self.segments.len() > 1 && self.active().base >= offset.max(self.start_offset() + 1) {
            let (base, seg) = self.segments.pop_last().unwrap();
            drop(seg);
            Segment::remove_files(&self.dir, base)?;
            self.dir_dirty = true;
        }
        let interval = self.config.index_interval_bytes;
        let seg = self.active();
        let cut = match seg.position_of(offset)? {
            Some((pos, _)) => pos,
            None => return Ok(()),
        };
        seg.file.get()?.set_len(cut)?;
        let base = seg.base;
        let file = Segment::open_file(&self.dir, base)?;
        let scan = Segment::scan_file(&file, base, false)?;
        let dir = self.dir.clone();
        *self.active_mut() = Segment::from_scan(&dir, base, file, &scan, interval);
        Ok(())
    }

    fn purge_deleted(&mut self) -> io::Result<()> {
        Segment::purge_deleted(&self.dir).map(|_| ())
    }

    fn destroy(self: Box<Self>) -> io::Result<()> {
        let dir = self.dir.clone();
        drop(self);
        files::files().forget_dir(&dir);
        std::fs::remove_dir_all(dir)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod damage_tests;
