//! How far every log was durable, and whether the broker stopped cleanly: what
//! recovery needs to tell a torn tail from corruption (see
//! `cohort_log_local::recover`). Kafka keeps the same two facts in
//! `recovery-point-offset-checkpoint` and `.kafka_cleanshutdown`.
//!
//! `meta/recovery-points` is replaced atomically; one line per log:
//!
//! ```text
//! cohort-recovery-points 1
//! <number of logs>
//! <log directory, relative to the data directory> <start offset> <recovery point>
//! ```
//!
//! `meta/clean-shutdown` exists only between a clean stop and the next start,
//! which removes it before opening any log, so a crash while starting counts
//! as a crash.

use crate::topics::write_atomically;
use cohort_log_local::Checkpoint;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

const HEADER: &str = "cohort-recovery-points 1";
const CLEAN_SHUTDOWN: &str = "cohort-clean-shutdown 1\n";

pub type Entries = BTreeMap<String, Checkpoint>;

fn points_path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta/recovery-points")
}

fn marker_path(data_dir: &Path) -> PathBuf {
    data_dir.join("meta/clean-shutdown")
}

/// Reads the recovery points. A missing file is an empty table; a damaged
/// one is reported and treated as missing (recovery is then more cautious,
/// never less).
pub fn load(data_dir: &Path) -> Entries {
    let path = points_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Entries::new(),
        Err(e) => {
            tracing::warn!(
                "cannot read {}: {e}; recovering every log without it",
                path.display()
            );
            return Entries::new();
        }
    };
    match parse(&text) {
        Ok(e) => e,
        Err(why) => {
            tracing::warn!(
                "{} is damaged ({why}); recovering every log without it",
                path.display()
            );
            Entries::new()
        }
    }
}

fn parse(text: &str) -> Result<Entries, String> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err("unknown header".into());
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("no count")?;
    let mut out = Entries::new();
    for line in lines {
        let mut parts = line.rsplitn(3, ' ');
        let (Some(rp), Some(start), Some(dir)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("bad line {line:?}"));
        };
        let (Ok(recovery_point), Ok(start_offset)) = (rp.parse(), start.parse()) else {
            return Err(format!("bad line {line:?}"));
        };
        out.insert(
            dir.to_string(),
            Checkpoint {
                start_offset,
                recovery_point,
            },
        );
    }
    if out.len() != count {
        return Err(format!("{count} entries announced, {} found", out.len()));
    }
    Ok(out)
}

pub fn write(data_dir: &Path, entries: &Entries) -> io::Result<()> {
    let mut text = format!("{HEADER}\n{}\n", entries.len());
    for (dir, c) in entries {
        text.push_str(&format!("{dir} {} {}\n", c.start_offset, c.recovery_point));
    }
    write_atomically(&points_path(data_dir), text.as_bytes())
}

/// Whether the last stop was clean; removes the marker (durably) so that a
/// crash from now on is seen as one.
pub fn take_clean_shutdown(data_dir: &Path) -> io::Result<bool> {
    let path = marker_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            std::fs::File::open(data_dir.join("meta"))?.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Marks a clean stop; call only once every log is synced and checkpointed.
pub fn mark_clean_shutdown(data_dir: &Path) -> io::Result<()> {
    write_atomically(&marker_path(data_dir), CLEAN_SHUTDOWN.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_points_round_trip_and_damage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        let mut e = Entries::new();
        e.insert(
            "partitions/ab-0".into(),
            Checkpoint {
                start_offset: 3,
                recovery_point: 99,
            },
        );
        e.insert(
            "coordinator/shard-0/log-000002".into(),
            Checkpoint {
                start_offset: 0,
                recovery_point: 7,
            },
        );
        write(dir.path(), &e).unwrap();
        assert_eq!(load(dir.path()), e);
        let path = points_path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 4]).unwrap();
        assert!(load(dir.path()).is_empty());
        std::fs::write(&path, "cohort-recovery-points 1\n5\n").unwrap();
        assert!(load(dir.path()).is_empty());
    }

    #[test]
    fn the_clean_shutdown_marker_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        assert!(!take_clean_shutdown(dir.path()).unwrap());
        mark_clean_shutdown(dir.path()).unwrap();
        assert!(take_clean_shutdown(dir.path()).unwrap());
        assert!(!take_clean_shutdown(dir.path()).unwrap());
    }
}
