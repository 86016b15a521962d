//! Opening a log: what a crash may legitimately have left, and what it may not.
//!
//! A crash can only tear what was not yet durable: the tail written after the
//! last fsync. The broker records how far each log was durable (its recovery
//! point, checkpointed as Kafka checkpoints it) and whether it shut down
//! cleanly. So on open:
//!
//! - After a clean shutdown everything was durable: any damage is corruption.
//! - After a crash, batches at or past the recovery point are read with their
//!   CRCs checked, and the log is cut at the first bad one (a torn tail). With
//!   no recovery point known, the newest two segments are treated so (a roll
//!   can happen just before a crash, before the previous segment was synced).
//! - Anywhere else, a batch that does not parse, a segment that ends mid-batch,
//!   offsets that do not continue from one segment to the next (a missing
//!   segment), a log that starts after its checkpointed start or ends before
//!   its recovery point: all are corruption. The log is not opened, nothing is
//!   cut or deleted, and the error names the file and byte where the damage
//!   is. `repair` cuts at the damage when an operator asks for it.
//!
//! Batch CRCs below the recovery point are not read at open (that would read
//! every byte of every log at every start); they are checked on every read.

use crate::segment::{self, Scan, Segment};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What the broker knew of a log when it last checkpointed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's first offset.
    pub start_offset: u64,
    /// Every offset below this was durable.
    pub recovery_point: u64,
}

/// How the log was left, as far as the broker knows.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHint {
    /// The broker shut down cleanly after syncing everything.
    pub clean_shutdown: bool,
    pub checkpoint: Option<Checkpoint>,
    /// The log is known to exist: a missing directory is damage, not a new log.
    pub must_exist: bool,
    /// The log is being created: the caller makes its directory durable (for
    /// many logs at once).
    pub new_log: bool,
}

/// Damage a crash cannot explain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub file: PathBuf,
    /// Byte position in `file` where the damage starts.
    pub position: u64,
    /// The offset expected there, when known.
    pub offset: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} at byte {}",
            self.file.display(),
            self.reason,
            self.position
        )?;
        if let Some(o) = self.offset {
            write!(f, " (offset {o})")?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum OpenError {
    Io(io::Error),
    Damaged(Damage),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Damaged(d) => write!(f, "{d}"),
        }
    }
}

impl From<io::Error> for OpenError {
    fn from(e: io::Error) -> Self {
        OpenError::Io(e)
    }
}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => e,
            OpenError::Damaged(d) => io::Error::new(io::ErrorKind::InvalidData, d.to_string()),
        }
    }
}

/// What opening a log found and cut.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Bytes of torn tail cut.
    pub truncated_bytes: u64,
    /// Segments after a torn tail, removed.
    pub dropped_segments: usize,
    pub rebuilt_indexes: usize,
    /// Why the tail was cut, naming the file.
    pub reason: Option<String>,
}

pub fn segment_bases(dir: &Path) -> io::Result<Vec<u64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<u64>() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn damage(dir: &Path, base: u64, position: u64, offset: Option<u64>, reason: String) -> OpenError {
    OpenError::Damaged(Damage {
        file: segment::log_path(dir, base),
        position,
        offset,
        reason,
    })
}

/// Recovers the segments of the log in `dir`.
pub fn recover(
    dir: &Path,
    index_interval: usize,
    hint: OpenHint,
) -> Result<(BTreeMap<u64, Segment>, Recovery), OpenError> {
    crate::compact::remove_leftovers(dir)?;
    let bases = segment_bases(dir)?;
    // Segments retention removed but whose new start may not have been
    // checkpointed yet: they count as the log's start, then go.
    let deleted = Segment::purge_deleted(dir)?;
    let mut recovery = Recovery::default();
    let mut segments = BTreeMap::new();
    // The first segment whose batches may be a torn tail.
    let zone = if hint.clean_shutdown {
        bases.len()
    } else {
        match hint.checkpoint {
            Some(c) => bases
                .iter()
                .rposition(|&b| b <= c.recovery_point)
                .unwrap_or(0),
            None => bases.len().saturating_sub(2),
        }
    };
    let tail_from = match hint.checkpoint {
        Some(c) if !hint.clean_shutdown => c.recovery_point,
        _ => 0,
    };
    if let (Some(c), Some(&first)) = (hint.checkpoint, bases.first()) {
        if first > c.start_offset && !deleted.iter().any(|&d| d <= c.start_offset) {
            return Err(damage(
                dir,
                first,
                0,
                Some(c.start_offset),
                format!(
                    "the log starts at offset {first} but offsets from {} were kept: the segments before it are missing",
                    c.start_offset
                ),
            ));
        }
    }
    let mut expected: Option<u64> = None;
    let mut cut = false;
    for (i, &base) in bases.iter().enumerate() {
        if cut {
            Segment::remove_files(dir, base)?;
            recovery.dropped_segments += 1;
            continue;
        }
        if let Some(next) = expected {
            if base != next {
                return Err(damage(
                    dir,
                    base,
                    0,
                    Some(next),
                    format!(
                        "offsets jump from {next} to {base}: the segment holding offsets {next} to {} is missing",
                        base.saturating_sub(1)
                    ),
                ));
            }
        }
        let last = i + 1 == bases.len();
        let seg = if i < zone {
            // Below the recovery point: trusted, but every header must be whole.
            let sealed = if last {
                None
            } else {
                Segment::open_sealed(dir, base)?
            };
            match sealed {
                Some(seg) => seg,
                None => {
                    if !last {
                        recovery.rebuilt_indexes += 1;
                    }
                    let file = Segment::open_file(dir, base)?;
                    let scan = Segment::scan_file(&file, base, false)?;
                    if let Some(why) = &scan.stopped {
                        return Err(damage(
                            dir,
                            base,
                            scan.valid_len,
                            Some(scan.next_offset(base)),
                            why.clone(),
                        ));
                    }
                    let seg = Segment::from_scan(dir, base, file, &scan, index_interval);
                    if !last {
                        seg.write_indexes(dir)?;
                    }
                    seg
                }
            }
        } else {
            let file = Segment::open_file(dir, base)?;
            let scan = Segment::scan_file(&file, base, true)?;
            if let Some(why) = scan.stopped.clone() {
                let at = scan.next_offset(base);
                if at < tail_from {
                    return Err(damage(
                        dir,
                        base,
                        scan.valid_len,
                        Some(at),
                        format!("{why}, below the recovery point {tail_from}"),
                    ));
                }
                torn_tail(&file, &scan, dir, base, &mut recovery, why)?;
                cut = true;
            }
            let seg = Segment::from_scan(dir, base, file, &scan, index_interval);
            if !last && !cut {
                seg.write_indexes(dir)?;
            }
            seg
        };
        expected = Some(seg.next_offset);
        segments.insert(base, seg);
    }
    let end = expected.unwrap_or(0);
    if let Some(c) = hint.checkpoint {
        if end < c.recovery_point {
            let base = bases.last().copied().unwrap_or(0);
            return Err(damage(
                dir,
                base,
                segments.get(&base).map_or(0, |s| s.size),
                Some(end),
                format!(
                    "the log ends at offset {end} but offsets below {} were durable: its newest data is missing",
                    c.recovery_point
                ),
            ));
        }
    }
    Ok((segments, recovery))
}

fn torn_tail(
    file: &std::fs::File,
    scan: &Scan,
    dir: &Path,
    base: u64,
    recovery: &mut Recovery,
    why: String,
) -> io::Result<()> {
    let len = file.metadata()?.len();
    recovery.truncated_bytes += len - scan.valid_len;
    recovery.reason = Some(format!(
        "{}: {why}; cut {} bytes from byte {}",
        segment::log_path(dir, base).display(),
        len - scan.valid_len,
        scan.valid_len
    ));
    file.set_len(scan.valid_len)?;
    file.sync_all()
}
