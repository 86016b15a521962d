//! Damage a crash cannot explain refuses to open, naming the file; a torn tail
//! past the recovery point is cut; `repair` cuts at the damage and keeps what
//! it cut; a read never serves a batch whose CRC fails.

use super::*;
use cohort_log::batch::build_batch;
use std::os::unix::fs::FileExt;

fn small() -> LocalLogConfig {
    LocalLogConfig {
        segment_bytes: 300,
        segment_ms: i64::MAX / 2,
        index_interval_bytes: 100,
    }
}

/// A log of `n` one-record batches over several segments, synced; returns its
/// segment bases.
fn written(dir: &Path, n: u64) -> Vec<u64> {
    let mut log = LocalLog::open(dir, small()).unwrap().0;
    for i in 0..n {
        let mut b = build_batch(i as i64, &[format!("value-{i:04}").as_bytes()], None);
        assert_eq!(log.append(&mut b).unwrap(), i);
    }
    (log.syncer().unwrap())().unwrap();
    recover::segment_bases(dir).unwrap()
}

fn clean(start: u64, end: u64) -> OpenHint {
    OpenHint {
        clean_shutdown: true,
        checkpoint: Some(Checkpoint {
            start_offset: start,
            recovery_point: end,
        }),
        must_exist: true,
        new_log: false,
    }
}

fn crashed(start: u64, recovery_point: u64) -> OpenHint {
    OpenHint {
        clean_shutdown: false,
        ..clean(start, recovery_point)
    }
}

fn damaged(dir: &Path, hint: OpenHint) -> Damage {
    match LocalLog::open_with(dir, small(), hint) {
        Err(OpenError::Damaged(d)) => d,
        Err(e) => panic!("io error {e}"),
        Ok(_) => panic!("opened a damaged log"),
    }
}

fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn an_old_segment_cut_mid_batch_refuses_to_open_and_nothing_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    assert!(bases.len() >= 4);
    let old = segment::log_path(dir.path(), bases[1]);
    let len = std::fs::metadata(&old).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&old)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let before = files(dir.path());
    for hint in [clean(0, 40), crashed(0, 40), OpenHint::default()] {
        let d = damaged(dir.path(), hint);
        assert_eq!(d.file, old, "{d}");
        assert_eq!(files(dir.path()), before, "nothing cut or deleted");
    }
}

#[test]
fn a_missing_middle_segment_is_a_gap_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    Segment::remove_files(dir.path(), bases[1]).unwrap();
    let d = damaged(dir.path(), clean(0, 40));
    assert_eq!(d.file, segment::log_path(dir.path(), bases[2]));
    assert!(
        d.reason
            .contains(&format!("offsets jump from {} to {}", bases[1], bases[2])),
        "{d}"
    );
    // Without a checkpoint the gap is still found.
    damaged(dir.path(), OpenHint::default());
}

#[test]
fn missing_first_or_newest_segments_are_found_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    Segment::remove_files(dir.path(), bases[0]).unwrap();
    assert!(damaged(dir.path(), clean(0, 40))
        .reason
        .contains("segments before it are missing"));

    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    Segment::remove_files(dir.path(), *bases.last().unwrap()).unwrap();
    assert!(damaged(dir.path(), clean(0, 40))
        .reason
        .contains("its newest data is missing"));
    // A log whose directory is gone altogether.
    std::fs::remove_dir_all(dir.path()).unwrap();
    assert!(damaged(dir.path(), clean(0, 40))
        .reason
        .contains("directory is missing"));
}

#[test]
fn after_a_clean_shutdown_a_torn_looking_tail_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    let active = segment::log_path(dir.path(), *bases.last().unwrap());
    let len = std::fs::metadata(&active).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert_eq!(damaged(dir.path(), clean(0, 40)).file, active);
    // After a crash with the same recovery point, the cut batch was durable:
    // still corruption.
    assert_eq!(damaged(dir.path(), crashed(0, 40)).file, active);
    // After a crash whose last checkpoint was earlier, it is a torn tail.
    let (log, rec) = LocalLog::open_with(dir.path(), small(), crashed(0, 39)).unwrap();
    assert_eq!(log.end_offset(), 39);
    assert!(rec.reason.unwrap().contains(&active.display().to_string()));
}

#[test]
fn a_flipped_byte_in_a_record_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    let old = segment::log_path(dir.path(), bases[0]);
    let f = std::fs::OpenOptions::new().write(true).open(&old).unwrap();
    f.write_all_at(&[b'X'], 70).unwrap();
    // Headers are whole, so the log opens; the damaged batch is refused on read.
    let (log, _) = LocalLog::open_with(dir.path(), small(), clean(0, 40)).unwrap();
    let e = log.read(0, 40, usize::MAX).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    assert!(e.to_string().contains(&old.display().to_string()), "{e}");
    assert!(e.to_string().contains("offset 0"), "{e}");
    // Batches after it are still served.
    assert_eq!(log.read(1, 40, usize::MAX).unwrap().is_empty(), false);
}

#[test]
fn a_corrupt_batch_below_the_recovery_point_is_not_cut_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let bases = written(dir.path(), 40);
    let active = segment::log_path(dir.path(), *bases.last().unwrap());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap();
    f.write_all_at(&[0xAA], 70).unwrap();
    let d = damaged(dir.path(), crashed(0, 40));
    assert!(d.reason.contains("below the recovery point"), "{d}");
    // With no checkpoint at all, the newest segments may be torn: cut.
    let (log, rec) = LocalLog::open(dir.path(), small()).unwrap();
    assert!(log.end_offset() < 40 && rec.truncated_bytes > 0);
}

#[test]
fn repair_cuts_at_the_first_damage_and_keeps_what_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let bases = written(&log_dir, 40);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment::log_path(&log_dir, bases[1]))
        .unwrap();
    f.write_all_at(&[0xAA], 70).unwrap();
    let aside = dir.path().join("aside");
    let dry = repair(&log_dir, &aside, true).unwrap();
    assert!(!aside.exists(), "a dry run moves nothing");
    let done = repair(&log_dir, &aside, false).unwrap();
    assert_eq!(dry.cut, done.cut);
    let (file, _, offset, why) = done.cut.clone().unwrap();
    assert_eq!(file, segment::log_path(&log_dir, bases[1]));
    assert_eq!(offset, bases[1]);
    assert!(why.contains("corrupt"), "{why}");
    assert!(done.moved.iter().all(|p| p.exists()));
    assert_eq!(done.end_offset, offset);
    // What was moved aside is every byte that was cut.
    let moved: u64 = done
        .moved
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("log") || p.to_string_lossy().ends_with(".cut"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(moved, done.bytes_moved);
    let (log, _) = LocalLog::open_with(&log_dir, small(), clean(0, offset)).unwrap();
    assert_eq!(log.end_offset(), offset);
    assert_eq!(
        repair(&log_dir, &aside, false).unwrap().cut,
        None,
        "a second repair finds nothing"
    );
}

#[test]
fn truncate_to_drops_whole_batches_from_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 40);
    let mut log = LocalLog::open(dir.path(), small()).unwrap().0;
    log.truncate_to(23).unwrap();
    assert_eq!(log.end_offset(), 23);
    let mut b = build_batch(0, &[b"again"], None);
    assert_eq!(log.append(&mut b).unwrap(), 23);
    (log.syncer().unwrap())().unwrap();
    drop(log);
    let (log, _) = LocalLog::open_with(dir.path(), small(), clean(0, 24)).unwrap();
    assert_eq!(log.end_offset(), 24);
}
