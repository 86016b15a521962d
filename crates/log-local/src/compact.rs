//! Log compaction (Kafka's log cleaner) for one log: the newest record of each
//! key is kept, older ones go, and tombstones go once their delete horizon
//! has passed. It works on sealed segments only, from their files, without
//! holding the log: `clean` writes each rewritten segment beside the original
//! (`<base>.log.cleaned`, synced), and `LocalLog::install_cleaned` swaps it in
//! with one rename. A crash leaves either the old or the new file under the
//! segment's name, both whole; a stray `.cleaned` file is removed at open.
//!
//! Offsets are never renumbered and the log stays continuous: every batch
//! keeps its base offset and span; a batch left with no records is kept as an
//! empty batch, or folded into the batch before it when that one has no
//! producer id (an idempotent producer's batches keep their sequences).

use cohort_log::batch::BatchHeader;
use cohort_log::SealedSegment;
use cohort_records::compact::{delete_horizon, rebuild, records, Record};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The settings of one pass, as the topic's configs give them.
#[derive(Clone, Copy, Debug)]
pub struct CleanSettings {
    pub now_ms: i64,
    /// delete.retention.ms: how long a tombstone outlives its first cleaning.
    pub delete_retention_ms: i64,
    /// Key bytes the offset map may hold; the pass stops at the segment that
    /// would overflow it, and the next pass goes on from there.
    pub max_map_bytes: usize,
}

/// What a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// (segment base, its size before, the cleaned file), for `install_cleaned`.
    pub files: Vec<(u64, u64, PathBuf)>,
    /// Offsets up to here are now clean: the next pass's first dirty offset.
    pub clean_up_to: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    /// The earliest delete horizon of a tombstone still kept: a pass after it
    /// has work to do even when nothing is dirty.
    pub next_horizon: Option<i64>,
}

pub fn cleaned_path(segment: &Path) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".cleaned");
    PathBuf::from(p)
}

/// The whole batches of a segment file.
fn batches(bytes: &[u8]) -> io::Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::validate(&bytes[at..]).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("at byte {at}: {e}"))
        })?;
        out.push(&bytes[at..at + h.size]);
        at += h.size;
    }
    Ok(out)
}

fn invalid(e: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// One cleaning pass over `segments` (sealed, oldest first, all cleanable),
/// whose offsets from `first_dirty` on have not been cleaned before.
pub fn clean(
    segments: &[SealedSegment],
    first_dirty: u64,
    s: CleanSettings,
) -> io::Result<Cleaned> {
    let mut out = Cleaned::default();
    // 1. The offset map: each key's newest offset in the dirty segments.
    let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut map_bytes = 0usize;
    let mut end = first_dirty;
    'segments: for seg in segments.iter().filter(|g| g.next_offset > first_dirty) {
        let bytes = std::fs::read(&seg.path)?;
        out.bytes_read += bytes.len() as u64;
        let mut seg_latest = Vec::new();
        for b in batches(&bytes)? {
            let (h, rs) = records(b).map_err(invalid)?;
            for r in rs {
                if let Some(k) = r.key {
                    seg_latest.push((k, h.base_offset + r.offset_delta as u64));
                }
            }
        }
        let added: usize = seg_latest
            .iter()
            .filter(|(k, _)| !latest.contains_key(k))
            .map(|(k, _)| k.len() + 32)
            .sum();
        if map_bytes + added > s.max_map_bytes && end > first_dirty {
            break 'segments;
        }
        map_bytes += added;
        for (k, o) in seg_latest {
            latest.insert(k, o);
        }
        end = seg.next_offset;
    }
    out.clean_up_to = end;
    // 2. Rewrite every segment up to there, older keys and old tombstones out.
    for seg in segments.iter().filter(|g| g.base < end) {
        let bytes = std::fs::read(&seg.path)?;
        out.bytes_read += bytes.len() as u64;
        let mut rewritten: Vec<Vec<u8>> = Vec::new();
        let mut removed = 0u64;
        for b in batches(&bytes)? {
            let (h, rs) = records(b).map_err(invalid)?;
            let horizon = delete_horizon(&h);
            let keep_all_horizon = |keep: &[&Record], at: Option<i64>, out: &mut Cleaned| {
                if keep.iter().any(|r| r.tombstone) {
                    if let Some(at) = at {
                        out.next_horizon = Some(out.next_horizon.map_or(at, |n: i64| n.min(at)));
                    }
                }
            };
            let keep: Vec<&Record> = rs
                .iter()
                .filter(|r| {
                    let offset = h.base_offset + r.offset_delta as u64;
                    let Some(k) = &r.key else { return false }; // keyless: Kafka drops them too
                    let superseded = latest.get(k).is_some_and(|&newest| offset < newest);
                    let expired_tombstone = r.tombstone && horizon.is_some_and(|at| s.now_ms > at);
                    !superseded && !expired_tombstone
                })
                .collect();
            removed += (rs.len() - keep.len()) as u64;
            if keep.len() == rs.len() && (horizon.is_some() || !rs.iter().any(|r| r.tombstone)) {
                keep_all_horizon(&keep, horizon, &mut out);
                rewritten.push(b.to_vec());
                continue;
            }
            let new_horizon = keep
                .iter()
                .any(|r| r.tombstone)
                .then(|| s.now_ms.saturating_add(s.delete_retention_ms));
            keep_all_horizon(&keep, horizon.or(new_horizon), &mut out);
            let batch = rebuild(b, &keep, new_horizon).map_err(invalid)?;
            if keep.is_empty() && fold_into_previous(&mut rewritten, &h) {
                continue;
            }
            rewritten.push(batch);
        }
        if removed == 0 && rewritten.iter().map(Vec::len).sum::<usize>() == bytes.len() {
            continue; // nothing changed
        }
        out.records_removed += removed;
        let path = cleaned_path(&seg.path);
        let mut f = std::fs::File::create(&path)?;
        for b in &rewritten {
            f.write_all(b)?;
            out.bytes_written += b.len() as u64;
        }
        f.sync_all()?;
        out.files.push((seg.base, seg.size, path));
    }
    Ok(out)
}

fn replaced_path(segment: &Path) -> PathBuf {
    let mut p = segment.as_os_str().to_owned();
    p.push(".replaced");
    PathBuf::from(p)
}

fn remove_if_there(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Before `install_cleaned`, without holding the log: removes the segment's
/// index files and syncs the directory (indexes are read only at open; a
/// segment without them has them rebuilt by a scan), and gives the old file a
/// second name, so that the rename over it frees no blocks while the log is
/// held (that took 100 ms for 64 MiB here).
pub fn prepare_install(segment: &Path) -> io::Result<()> {
    for ext in ["index", "timeindex"] {
        remove_if_there(&segment.with_extension(ext))?;
    }
    let keep = replaced_path(segment);
    remove_if_there(&keep)?;
    std::fs::hard_link(segment, &keep)?;
    sync_parent(segment)
}

/// After `install_cleaned`, without holding the log: frees the old file and
/// makes the rename and the new indexes durable.
pub fn finish_install(segment: &Path) -> io::Result<()> {
    remove_if_there(&replaced_path(segment))?;
    sync_parent(segment)
}

/// At open: what an interrupted cleaning left beside the segments.
pub(crate) fn remove_leftovers(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        // A cleaned segment never installed (the original is whole), or the
        // second name of one that was replaced.
        if name.ends_with(".log.cleaned") || name.ends_with(".log.replaced") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn sync_parent(p: &Path) -> io::Result<()> {
    std::fs::File::open(p.parent().unwrap_or(Path::new(".")))?.sync_all()
}

/// Makes the last kept batch span the emptied batch `gone` too, when it has no
/// producer id (its sequences then mean nothing to keep right).
fn fold_into_previous(rewritten: &mut [Vec<u8>], gone: &BatchHeader) -> bool {
    let Some(prev) = rewritten.last_mut() else {
        return false;
    };
    let Ok(h) = BatchHeader::parse(prev) else {
        return false;
    };
    let Ok(delta) = i32::try_from(gone.last_offset() - h.base_offset) else {
        return false;
    };
    if h.has_producer_id() {
        return false;
    }
    cohort_records::build::set_last_offset_delta(prev, delta);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalLog, LocalLogConfig};
    use cohort_log::LogStore;
    use cohort_records::build::BatchBuilder;

    fn config() -> LocalLogConfig {
        LocalLogConfig {
            segment_bytes: 400,
            segment_ms: i64::MAX / 2,
            index_interval_bytes: 100,
        }
    }

    fn put(log: &mut LocalLog, key: &str, value: Option<&str>) -> u64 {
        let mut b = BatchBuilder::new(1_000)
            .record(Some(key.as_bytes()), value.map(str::as_bytes))
            .build();
        log.append(&mut b).unwrap()
    }

    /// Every (offset, key, value) the log serves, from its start.
    fn contents(log: &LocalLog) -> Vec<(u64, String, Option<String>)> {
        let bytes = log
            .read(log.start_offset(), log.end_offset(), usize::MAX)
            .unwrap();
        let mut out = Vec::new();
        for b in batches(&bytes).unwrap() {
            let (h, rs) = records(b).unwrap();
            for r in rs {
                let text =
                    |v: &Option<Vec<u8>>| v.as_ref().map(|v| String::from_utf8(v.clone()).unwrap());
                out.push((
                    h.base_offset + r.offset_delta as u64,
                    text(&r.key).unwrap(),
                    r.tombstone
                        .then_some(())
                        .map_or_else(|| Some(format!("{r:?}")), |_| None),
                ));
            }
        }
        out
    }

    fn settings(now_ms: i64) -> CleanSettings {
        CleanSettings {
            now_ms,
            delete_retention_ms: 1_000,
            max_map_bytes: 1 << 20,
        }
    }

    fn pass(log: &mut LocalLog, first_dirty: u64, now_ms: i64) -> Cleaned {
        let sealed = log.sealed_segments(log.end_offset());
        let cleaned = clean(&sealed, first_dirty, settings(now_ms)).unwrap();
        for (base, size, path) in &cleaned.files {
            let segment = crate::segment::log_path(log.dir(), *base);
            prepare_install(&segment).unwrap();
            assert!(log.install_cleaned(*base, *size, path).unwrap());
            finish_install(&segment).unwrap();
        }
        cleaned
    }

    #[test]
    fn the_newest_record_of_each_key_stays_at_its_offset_and_tombstones_go_after_their_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LocalLog::open(dir.path(), config()).unwrap();
        for i in 0..40 {
            put(&mut log, &format!("k{}", i % 4), Some(&format!("v{i}")));
        }
        put(&mut log, "k0", None); // offset 40: a tombstone
        for i in 41..60 {
            put(&mut log, "k1", Some(&format!("v{i}")));
        }
        let end = log.end_offset();
        let sealed_end = log.sealed_segments(end).last().unwrap().next_offset;
        let before = log.size_bytes();
        let first = pass(&mut log, 0, 10_000);
        assert_eq!(first.clean_up_to, sealed_end);
        assert!(first.records_removed > 30 && log.size_bytes() < before);
        assert_eq!((log.start_offset(), log.end_offset()), (0, end));
        let got = contents(&log);
        // Offsets only go up; each sealed key appears once (its newest).
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        let keys_below: Vec<_> = got
            .iter()
            .filter(|r| r.0 < sealed_end)
            .map(|r| r.1.clone())
            .collect();
        let mut unique = keys_below.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(keys_below.len(), unique.len(), "{got:?}");
        // k0's tombstone (if sealed) is kept until its horizon (10_000 + 1_000).
        if sealed_end > 40 {
            assert!(got.iter().any(|r| r.0 == 40 && r.2.is_none()));
            pass(&mut log, sealed_end, 10_500);
            assert!(contents(&log).iter().any(|r| r.0 == 40));
            pass(&mut log, sealed_end, 11_001);
            assert!(!contents(&log).iter().any(|r| r.0 == 40));
        }
        // It reopens as it is: offsets continuous, nothing cut.
        drop(log);
        let (log, recovery) = LocalLog::open(dir.path(), config()).unwrap();
        assert_eq!(recovery.truncated_bytes, 0);
        assert_eq!(log.end_offset(), end);
    }

    #[test]
    fn a_cleaned_file_never_installed_is_removed_at_open_and_the_original_served() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LocalLog::open(dir.path(), config()).unwrap();
        for i in 0..30 {
            put(&mut log, "same", Some(&format!("v{i}")));
        }
        let served = contents(&log);
        let sealed = log.sealed_segments(log.end_offset());
        let cleaned = clean(&sealed, 0, settings(5_000)).unwrap();
        assert!(!cleaned.files.is_empty());
        drop(log); // a crash before install
        let (log, _) = LocalLog::open(dir.path(), config()).unwrap();
        assert_eq!(contents(&log), served);
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".cleaned")));
    }

    #[test]
    fn a_segment_that_changed_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = LocalLog::open(dir.path(), config()).unwrap();
        for i in 0..30 {
            put(&mut log, "same", Some(&format!("v{i}")));
        }
        let sealed = log.sealed_segments(log.end_offset());
        let cleaned = clean(&sealed, 0, settings(5_000)).unwrap();
        let (base, _size, path) = &cleaned.files[0];
        assert!(!log.install_cleaned(*base, 1, path).unwrap());
        assert!(!path.exists());
    }
}
