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
            let h = BatchHeader::parse(&bytes[at..]).map_err(|e| io::Error::other(e.to_string()))?;
            let batch = &bytes[at..at + h.size];
            let mut bad = None;
            let read = cohort_records::for_each_record(batch, true, &mut |i, r| {
                match Record::decode(r.key.as_deref(), r.value.as_deref().unwrap_or_default()) {
                    Ok(record) => {
                        out.push(record);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        bad = Some((i, e));
                        ControlFlow::Break(())
                    }
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

    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        for chunk in records.chunks(RECORDS_PER_BATCH) {
            let mut batch = BatchBuilder::new(crate::now_ms());
            for r in chunk {
                let (key, value) = r.encode();
                batch = batch.record(Some(&key), Some(&value));
            }
            self.log.append(&mut batch.build())?;
        }
        self.appended += records.len();
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
