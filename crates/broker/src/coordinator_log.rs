//! The coordinator log: the group coordinator's records, in the segment format
//! of every partition, under `coordinator/shard-0/log-NNNNNN/`; `CURRENT` names
//! the live generation. A compaction writes a snapshot as the next generation,
//! syncs it, and only then switches `CURRENT` (atomically) and removes the old
//! one.
//!
//! Each record is one record of a batch: its key is the record's type and
//! value version, its value the record (see FORMAT.md). Opening follows the
//! partitions' rules: a torn tail past the recovery point is cut; anything
//! else (a bad batch below it, a record that does not decode, a missing or
//! unreadable `CURRENT`) refuses to load, naming the file.

use cohort_coordinator::Record;
use cohort_log::{BatchHeader, LogStore};
use cohort_log_local::{Checkpoint, LocalLog, LocalLogConfig, OpenError, OpenHint};
use cohort_records::build::BatchBuilder;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Largest number of records written in one batch of the coordinator log.
const RECORDS_PER_BATCH: usize = 500;

#[derive(Debug)]
pub enum LoadError {
    /// The log is damaged in a way a crash does not explain.
    Damaged(String),
    Io(io::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Damaged(d) => f.write_str(d),
            LoadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for LoadError {
    fn from(e: io::Error) -> Self {
        LoadError::Io(e)
    }
}

impl From<OpenError> for LoadError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => LoadError::Io(e),
            OpenError::Damaged(d) => LoadError::Damaged(d.to_string()),
        }
    }
}

pub struct Store {
    root: PathBuf,
    /// `root` relative to the data directory: checkpoints are keyed by it.
    name: String,
    pub log: LocalLog,
    generation: u64,
    /// Records appended since the log was last compacted.
    pub appended: usize,
}

fn log_dir(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("log-{generation:06}"))
}

fn generation_of(name: &str) -> Option<u64> {
    name.strip_prefix("log-")?.parse().ok()
}

impl Store {
    /// Opens the live log under `root` (named `name` in checkpoints) and
    /// reads every record in it.
    pub fn open(
        root: &Path,
        name: &str,
        clean_shutdown: bool,
        checkpoints: &crate::checkpoints::Entries,
    ) -> Result<(Store, Vec<Record>), LoadError> {
        std::fs::create_dir_all(root)?;
        let current = root.join("CURRENT");
        let mut generations: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(root)? {
            if let Some(g) = generation_of(&entry?.file_name().to_string_lossy()) {
                generations.push(g);
            }
        }
        let generation = match std::fs::read_to_string(&current) {
            Ok(s) => s.trim().parse::<u64>().map_err(|e| {
                LoadError::Damaged(format!("{}: {e} (it holds {s:?})", current.display()))
            })?,
            // A log that never compacted has no CURRENT, only generation 0
            // (and perhaps the unfinished first compaction, generation 1).
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && (generations.is_empty() || generations.contains(&0)) =>
            {
                0
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LoadError::Damaged(format!(
                    "{} is missing, so which of the coordinator logs {generations:?} is live is unknown",
                    current.display()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let dir = log_dir(root, generation);
        if generation > 0 && !dir.is_dir() {
            return Err(LoadError::Damaged(format!(
                "{} names generation {generation}, but {} is missing",
                current.display(),
                dir.display()
            )));
        }
        for g in generations.into_iter().filter(|&g| g != generation) {
            // A compaction that did not finish (newer), or a log one replaced.
            std::fs::remove_dir_all(log_dir(root, g))?;
        }
        let key = format!("{name}/log-{generation:06}");
        let hint = OpenHint {
            clean_shutdown,
            checkpoint: checkpoints.get(&key).copied(),
            must_exist: generation > 0,
            new_log: false,
        };
        let (log, recovery) = LocalLog::open_with(&dir, LocalLogConfig::default(), hint)?;
        if let Some(reason) = &recovery.reason {
            tracing::warn!("coordinator log: cut a torn tail after a crash: {reason}");
        }
        let store = Store {
            root: root.to_path_buf(),
            name: name.to_string(),
            log,
            generation,
            appended: 0,
        };
        let records = store.read_all()?;
        Ok((store, records))
    }

    /// The name and recovery point of the live log, for the checkpoint file.
    pub fn checkpoint(&self) -> (String, Checkpoint) {
        (
            format!("{}/log-{:06}", self.name, self.generation),
            Checkpoint {
                start_offset: self.log.start_offset(),
                recovery_point: self.log.end_offset(),
            },
        )
    }

    pub fn read_all(&self) -> Result<Vec<Record>, LoadError> {
        let mut out = Vec::new();
        let bytes = self
            .log
            .read(self.log.start_offset(), self.log.end_offset(), usize::MAX)
            .map_err(|e| LoadError::Damaged(e.to_string()))?;
        let mut at = 0;
        while at < bytes.len() {
            let h =
                BatchHeader::parse(&bytes[at..]).map_err(|e| io::Error::other(e.to_string()))?;
            let batch = &bytes[at..at + h.size];
            let mut bad = None;
            let read =
                cohort_records::for_each_record(batch, true, &mut |i, r| match Record::decode(
                    r.key.as_deref(),
                    r.value.as_deref().unwrap_or_default(),
                ) {
                    Ok(record) => {
                        out.push(record);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        bad = Some((i, e));
                        ControlFlow::Break(())
                    }
                });
            let bad = match (read, bad) {
                (Err(e), _) => Some((0, e.to_string())),
                (Ok(()), bad) => bad,
            };
            if let Some((i, why)) = bad {
                let offset = h.base_offset + i as u64;
                return Err(LoadError::Damaged(format!(
                    "{}: the record at offset {offset} cannot be read: {why}",
                    self.log.file_of(h.base_offset).display()
                )));
            }
            at += h.size;
        }
        Ok(out)
    }

    /// Writes a snapshot's records (made atomic by `CURRENT`, not by batches).
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            self.append_batch(chunk.iter())?;
        }
        Ok(())
    }

    /// Writes one round's records, given as units: the records one input
    /// produced (a join with its epoch bump, a whole group conversion). A
    /// batch is written whole or cut whole by a crash, so each unit goes
    /// into one batch and a torn tail never keeps part of one: a restart
    /// never finds a conversion's first records without the rest.
    pub fn append_units(&mut self, units: &[Vec<Record>]) -> io::Result<()> {
        for range in pack(units.iter().map(Vec::len), RECORDS_PER_BATCH) {
            self.append_batch(units[range].iter().flatten())?;
        }
        Ok(())
    }

    fn append_batch<'a>(&mut self, records: impl Iterator<Item = &'a Record>) -> io::Result<()> {
        let mut batch = BatchBuilder::new(crate::now_ms());
        let mut n = 0;
        for r in records {
            let (key, value) = r.encode();
            batch = batch.record(Some(&key), Some(&value));
            n += 1;
        }
        self.log.append(&mut batch.build())?;
        self.appended += n;
        Ok(())
    }

    /// Writes `snapshot` as a new log, makes it durable, points CURRENT at it,
    /// and removes the old one. A crash at any point leaves one complete log.
    pub fn compact(&mut self, snapshot: &[Record]) -> io::Result<()> {
        let next = self.generation + 1;
        let dir = log_dir(&self.root, next);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let (log, _) = LocalLog::open(&dir, LocalLogConfig::default())?;
        let mut fresh = Store {
            root: self.root.clone(),
            name: self.name.clone(),
            log,
            generation: next,
            appended: 0,
        };
        fresh.append(snapshot)?;
        (fresh.log.syncer()?)()?;
        fresh.appended = 0;
        crate::topics::write_atomically(&self.root.join("CURRENT"), next.to_string().as_bytes())?;
        let old = std::mem::replace(self, fresh);
        let old_dir = log_dir(&old.root, old.generation);
        drop(old);
        std::fs::remove_dir_all(old_dir)
    }
}

/// Consecutive units packed into batches of at most `limit` records; a unit
/// larger than that gets a batch of its own, never split.
fn pack(sizes: impl Iterator<Item = usize>, limit: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut filled, mut end) = (0, 0, 0);
    for (i, n) in sizes.enumerate() {
        if filled > 0 && filled + n > limit {
            out.push(start..i);
            start = i;
            filled = 0;
        }
        filled += n;
        end = i + 1;
    }
    if filled > 0 {
        out.push(start..end);
    }
    out
}

#[cfg(test)]
mod pack_tests {
    use super::pack;

    #[test]
    fn units_are_packed_whole_and_never_split() {
        let p = |sizes: &[usize]| pack(sizes.iter().copied(), 500);
        assert_eq!(p(&[1, 2, 3]), vec![0..3]);
        assert_eq!(
            p(&[499, 2]),
            vec![0..1, 1..2],
            "the second unit would straddle"
        );
        assert_eq!(p(&[600]), vec![0..1], "a large unit is one batch");
        assert_eq!(p(&[10, 600, 10]), vec![0..1, 1..2, 2..3]);
        assert_eq!(p(&[250, 250, 1]), vec![0..2, 2..3]);
        assert_eq!(p(&[]), Vec::<std::ops::Range<usize>>::new());
    }
}
