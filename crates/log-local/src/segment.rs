//! One segment: a `.log` file of whole batches plus its sparse offset and time
//! indexes, kept in memory and written beside the log when the segment is sealed.

use crate::files::{files, SegmentFile};
use cohort_log::batch::{BatchHeader, HEADER_SIZE};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}
pub fn time_index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

pub struct Segment {
    pub base: u64,
    pub file: SegmentFile,
    pub size: u64,
    pub next_offset: u64,
    /// (offset relative to base, byte position), ascending; one entry per
    /// `index_interval` bytes, always including the first batch.
    pub index: Vec<(u32, u32)>,
    /// (max timestamp, relative offset), with strictly ascending timestamps.
    pub time_index: Vec<(i64, u32)>,
    pub max_timestamp: i64,
    /// The last offset of the batch that carries `max_timestamp`.
    pub max_timestamp_offset: u64,
    /// The max timestamp of the first batch, for time-based rolling.
    pub first_timestamp: Option<i64>,
    bytes_since_index: usize,
}

/// What scanning a segment file found.
#[derive(Debug)]
pub struct Scan {
    pub batches: Vec<(u64, BatchHeader)>,
    /// Bytes of whole, valid batches from the start of the file.
    pub valid_len: u64,
    /// Why scanning stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

impl Scan {
    /// The offset after the last whole batch.
    pub fn next_offset(&self, base: u64) -> u64 {
        self.batches.last().map_or(base, |(_, h)| h.next_offset())
    }
}

impl Segment {
    pub fn create(dir: &Path, base: u64) -> io::Result<Segment> {
        let path = log_path(dir, base);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Segment::empty(base, SegmentFile::new(path, file)))
    }

    fn empty(base: u64, file: SegmentFile) -> Segment {
        Segment {
            base,
            file,
            size: 0,
            next_offset: base,
            index: Vec::new(),
            time_index: Vec::new(),
            max_timestamp: i64::MIN,
            max_timestamp_offset: base,
            first_timestamp: None,
            bytes_since_index: 0,
        }
    }

    pub fn open_file(dir: &Path, base: u64) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(log_path(dir, base))
    }

    /// Reads every batch header from the start. With `check_crc`, each batch is
    /// read whole and its CRC checked. Stops at the first batch that is torn,
    /// corrupt, or does not continue the offsets.
    pub fn scan_file(file: &File, base: u64, check_crc: bool) -> io::Result<Scan> {
        let len = file.metadata()?.len();
        let mut pos = 0u64;
        let mut expected = base;
        let mut batches = Vec::new();
        let mut header = [0u8; HEADER_SIZE];
        let mut whole = Vec::new();
        let stopped = loop {
            if pos == len {
                break None;
            }
            if len - pos < HEADER_SIZE as u64 {
                break Some(format!("torn header at byte {pos}"));
            }
            file.read_exact_at(&mut header, pos)?;
            let h = match BatchHeader::parse(&header) {
                Ok(h) => h,
                Err(e) => break Some(format!("bad header at byte {pos}: {e}")),
            };
            if pos + h.size as u64 > len {
                break Some(format!("torn batch at byte {pos}"));
            }
            if h.base_offset != expected {
                break Some(format!(
                    "offset {} at byte {pos}, expected {expected}",
                    h.base_offset
                ));
            }
            if check_crc {
                whole.resize(h.size, 0);
                file.read_exact_at(&mut whole, pos)?;
                if let Err(e) = h.check_crc(&whole) {
                    break Some(format!("corrupt batch at byte {pos}: {e}"));
                }
            }
            batches.push((pos, h));
            expected = h.next_offset();
            pos += h.size as u64;
        };
        Ok(Scan {
            batches,
            valid_len: pos,
            stopped,
        })
    }

    /// Builds a segment's in-memory state from a scan of its file.
    pub fn from_scan(
        dir: &Path,
        base: u64,
        file: File,
        scan: &Scan,
        index_interval: usize,
    ) -> Segment {
        let mut seg = Segment::empty(base, SegmentFile::new(log_path(dir, base), file));
        for &(pos, h) in &scan.batches {
            seg.note_batch(pos, &h, index_interval);
        }
        seg.size = scan.valid_len;
        seg
    }

    /// Records a batch just placed at `pos` in the in-memory indexes.
    pub fn note_batch(&mut self, pos: u64, h: &BatchHeader, index_interval: usize) {
        let rel = (h.base_offset - self.base) as u32;
        if self.index.is_empty() || self.bytes_since_index >= index_interval {
            self.index.push((rel, pos as u32));
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.size;
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_offset = h.last_offset();
            self.time_index.push((h.max_timestamp, rel));
        }
        self.first_timestamp.get_or_insert(h.max_timestamp);
        self.next_offset = h.next_offset();
        self.size = pos + h.size as u64;
    }

    /// The byte position of the batch holding `offset` (or the first one after it).
    pub fn position_of(&self, offset: u64) -> io::Result<Option<(u64, BatchHeader)>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        self.position_of_with(&self.index, offset)
    }

    /// Visits headers from byte `pos` to the end of the segment.
    pub fn headers_from(
        &self,
        mut pos: u64,
        visit: &mut dyn FnMut(u64, &BatchHeader) -> bool,
    ) -> io::Result<()> {
        let mut header = [0u8; HEADER_SIZE];
        let file = self.file.get()?;
        while pos < self.size {
            file.read_exact_at(&mut header, pos)?;
            let h = BatchHeader::parse(&header).map_err(|e| io::Error::other(e.to_string()))?;
            if !visit(pos, &h) {
                return Ok(());
            }
            pos += h.size as u64;
        }
        Ok(())
    }

    /// Writes the index files for a sealed segment. They only speed up opening:
    /// a missing or inconsistent index is rebuilt by scanning the log.
    pub fn write_indexes(&self, dir: &Path) -> io::Result<()> {
        let mut idx = Vec::with_capacity(self.index.len() * 8);
        for &(rel, pos) in &self.index {
            idx.extend_from_slice(&rel.to_be_bytes());
            idx.extend_from_slice(&pos.to_be_bytes());
        }
        std::fs::write(index_path(dir, self.base), idx)?;
        let mut tidx = Vec::with_capacity(self.time_index.len() * 12);
        for &(ts, rel) in &self.time_index {
            tidx.extend_from_slice(&ts.to_be_bytes());
            tidx.extend_from_slice(&rel.to_be_bytes());
        }
        std::fs::write(time_index_path(dir, self.base), tidx)
    }

    /// Opens a sealed segment from its index files, if they are present and agree
    /// with the log file: the headers from the last indexed batch on must run
    /// exactly to the end of the file, which also gives the segment's end offset.
    pub fn open_sealed(dir: &Path, base: u64) -> io::Result<Option<Segment>> {
        let file = Segment::open_file(dir, base)?;
        let size = file.metadata()?.len();
        let (Ok(idx), Ok(tidx)) = (
            std::fs::read(index_path(dir, base)),
            std::fs::read(time_index_path(dir, base)),
        ) else {
            return Ok(None);
        };
        if idx.len() % 8 != 0 || tidx.len() % 12 != 0 || idx.is_empty() || size == 0 {
            return Ok(None);
        }
        let index: Vec<(u32, u32)> = idx
            .chunks(8)
            .map(|c| {
                (
                    u32::from_be_bytes(c[0..4].try_into().unwrap()),
                    u32::from_be_bytes(c[4..8].try_into().unwrap()),
                )
            })
            .collect();
        let time_index: Vec<(i64, u32)> = tidx
            .chunks(12)
            .map(|c| {
                (
                    i64::from_be_bytes(c[0..8].try_into().unwrap()),
                    u32::from_be_bytes(c[8..12].try_into().unwrap()),
                )
            })
            .collect();
        let ascending = index.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && time_index.windows(2).all(|w| w[0].0 < w[1].0);
        let in_bounds =
            index.last().map_or(false, |&(_, pos)| (pos as u64) < size) && index[0] == (0, 0);
        if !ascending || !in_bounds {
            return Ok(None);
        }
        // Walk the headers after the last index entry: they must be whole, end
        // exactly at the end of the file, and continue the offsets.
        let (last_rel, last_pos) = *index.last().unwrap();
        let mut pos = last_pos as u64;
        let mut next_offset = None;
        let mut header = [0u8; HEADER_SIZE];
        while pos < size {
            if size - pos < HEADER_SIZE as u64 {
                return Ok(None);
            }
            file.read_exact_at(&mut header, pos)?;
            let Ok(h) = BatchHeader::parse(&header) else {
                return Ok(None);
            };
            let expected = next_offset.unwrap_or(base + last_rel as u64);
            if h.base_offset != expected || pos + h.size as u64 > size {
                return Ok(None);
            }
            next_offset = Some(h.next_offset());
            pos += h.size as u64;
        }
        let Some(next_offset) = next_offset else {
            return Ok(None);
        };
        let mut seg = Segment::empty(base, SegmentFile::new(log_path(dir, base), file));
        seg.size = size;
        seg.next_offset = next_offset;
        if let Some(&(ts, _)) = time_index.last() {
            seg.max_timestamp = ts;
            // The batch carrying the max timestamp: its last offset needs one read.
            let rel = time_index.last().unwrap().1 as u64;
            if let Some((_, h)) = seg.position_of_with(&index, base + rel)? {
                seg.max_timestamp_offset = h.last_offset();
            }
        }
        seg.first_timestamp = time_index.first().map(|&(ts, _)| ts);
        seg.index = index;
        seg.time_index = time_index;
        Ok(Some(seg))
    }

    fn position_of_with(
        &self,
        index: &[(u32, u32)],
        offset: u64,
    ) -> io::Result<Option<(u64, BatchHeader)>> {
        let rel = offset.saturating_sub(self.base) as u32;
        let i = index.partition_point(|&(r, _)| r <= rel);
        let mut pos = if i == 0 { 0 } else { index[i - 1].1 as u64 };
        let mut header = [0u8; HEADER_SIZE];
        let file = self.file.get()?;
        while pos < self.size {
            file.read_exact_at(&mut header, pos)?;
            let h = BatchHeader::parse(&header).map_err(|e| io::Error::other(e.to_string()))?;
            if h.next_offset() > offset {
                return Ok(Some((pos, h)));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Retention's first step: the segment's files are renamed `*.deleted`, and
    /// removed only once the new start offset is checkpointed (so a crash in
    /// between never looks like lost segments).
    pub fn mark_deleted(dir: &Path, base: u64) -> io::Result<()> {
        for p in [
            log_path(dir, base),
            index_path(dir, base),
            time_index_path(dir, base),
        ] {
            files().forget(&p);
            let mut to = p.clone().into_os_string();
            to.push(".deleted");
            match std::fs::rename(&p, &to) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes every `*.deleted` file; returns the bases of the segments whose
    /// log files were among them.
    pub fn purge_deleted(dir: &Path) -> io::Result<Vec<u64>> {
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some(stem) = name.strip_suffix(".deleted") {
                if let Some(base) = stem.strip_suffix(".log").and_then(|b| b.parse().ok()) {
                    bases.push(base);
                }
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(bases)
    }

    pub fn remove_files(dir: &Path, base: u64) -> io::Result<()> {
        for p in [
            log_path(dir, base),
            index_path(dir, base),
            time_index_path(dir, base),
        ] {
            files().forget(&p);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}
