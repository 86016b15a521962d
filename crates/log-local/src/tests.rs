use super::*;
use cohort_log::batch::build_batch;
use cohort_log::conformance;
use std::io::Write;

fn small() -> LocalLogConfig {
    LocalLogConfig {
        segment_bytes: 300,
        segment_ms: i64::MAX / 2,
        index_interval_bytes: 100,
    }
}

fn append(log: &mut LocalLog, ts: i64, value: &[u8]) -> u64 {
    let mut b = build_batch(ts, &[value], None);
    log.append(&mut b).unwrap()
}

#[test]
fn local_log_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    conformance::run_all(&mut || {
        n += 1;
        Box::new(
            LocalLog::open(&dir.path().join(n.to_string()), small())
                .unwrap()
                .0,
        )
    });
    // And again with one segment per log, so reads never cross a segment.
    conformance::run_all(&mut || {
        n += 1;
        Box::new(
            LocalLog::open(&dir.path().join(n.to_string()), LocalLogConfig::default())
                .unwrap()
                .0,
        )
    });
}

#[test]
fn reopen_keeps_every_batch_and_rolls_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LocalLog::open(dir.path(), small()).unwrap().0;
    for i in 0..50 {
        assert_eq!(
            append(&mut log, i, format!("value-{i}").as_bytes()),
            i as u64
        );
    }
    (log.syncer().unwrap())().unwrap();
    let before = log.read(0, u64::MAX, usize::MAX).unwrap();
    assert!(log.segment_count() > 3);
    drop(log);
    let (log, rec) = LocalLog::open(dir.path(), small()).unwrap();
    assert_eq!(rec.truncated_bytes, 0);
    assert_eq!(
        rec.rebuilt_indexes, 0,
        "sealed segments' indexes are trusted"
    );
    assert_eq!(log.end_offset(), 50);
    assert_eq!(log.read(0, u64::MAX, usize::MAX).unwrap(), before);
    assert_eq!(log.offset_for_timestamp(25).unwrap(), Some((25, 25)));
}

#[test]
fn a_torn_tail_is_cut_at_the_last_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LocalLog::open(dir.path(), LocalLogConfig::default())
        .unwrap()
        .0;
    for i in 0..5 {
        append(&mut log, i, b"x");
    }
    drop(log);
    // Half a batch arrives, then the crash.
    let half = build_batch(9, &[b"torn"], None);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(segment::log_path(dir.path(), 0))
        .unwrap();
    f.write_all(&half[..half.len() / 2]).unwrap();
    drop(f);
    let (mut log, rec) = LocalLog::open(dir.path(), LocalLogConfig::default()).unwrap();
    assert_eq!(rec.truncated_bytes as usize, half.len() / 2);
    assert_eq!(log.end_offset(), 5);
    assert_eq!(append(&mut log, 10, b"after"), 5);
}

#[test]
fn a_corrupt_batch_cuts_it_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LocalLog::open(dir.path(), LocalLogConfig::default())
        .unwrap()
        .0;
    for i in 0..5 {
        append(&mut log, i, b"abcdef");
    }
    let third = log.read(2, 3, usize::MAX).unwrap();
    let pos_of_third = 2 * third.len() as u64;
    drop(log);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment::log_path(dir.path(), 0))
        .unwrap();
    f.write_all_at(&[0xAA], pos_of_third + third.len() as u64 - 2)
        .unwrap();
    drop(f);
    let (log, rec) = LocalLog::open(dir.path(), LocalLogConfig::default()).unwrap();
    assert!(rec.reason.unwrap().contains("corrupt"));
    assert_eq!(log.end_offset(), 2);
}

#[test]
fn bad_index_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LocalLog::open(dir.path(), small()).unwrap().0;
    for i in 0..40 {
        append(&mut log, i, b"0123456789");
    }
    drop(log);
    std::fs::write(segment::index_path(dir.path(), 0), b"garbage").unwrap();
    let (log, rec) = LocalLog::open(dir.path(), small()).unwrap();
    assert_eq!(rec.rebuilt_indexes, 1);
    assert_eq!(log.end_offset(), 40);
    assert_eq!(log.read(3, 4, usize::MAX).unwrap().len() > 0, true);
}

#[test]
fn retention_by_size_removes_old_segments_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = LocalLog::open(dir.path(), small()).unwrap().0;
    for i in 0..60 {
        append(&mut log, i, b"0123456789");
    }
    let segments = log.segment_count();
    log.apply_retention(
        0,
        Retention {
            retention_ms: -1,
            retention_bytes: 600,
        },
    )
    .unwrap();
    assert!(log.segment_count() < segments);
    assert!(log.size_bytes() >= 600 - 300 && log.start_offset() > 0);
    let deleted = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".deleted")
        })
        .count();
    assert!(
        deleted > 0,
        "dropped segments wait, renamed, for their start to be recorded"
    );
    log.purge_deleted().unwrap();
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        files,
        1 + (log.segment_count() - 1) * 3,
        "sealed segments keep 3 files, the active 1"
    );
    drop(log);
    let log = LocalLog::open(dir.path(), small()).unwrap().0;
    assert_eq!(log.end_offset(), 60);
}

#[test]
fn more_logs_than_open_files_all_work() {
    // The cache keeps at most 1024 segment files open (the default); 1500
    // logs are written, read back and appended to again.
    let dir = tempfile::tempdir().unwrap();
    let mut logs: Vec<LocalLog> = (0..1500)
        .map(|i| {
            LocalLog::open(&dir.path().join(i.to_string()), small())
                .unwrap()
                .0
        })
        .collect();
    for (i, log) in logs.iter_mut().enumerate() {
        append(log, i as i64, format!("first-{i}").as_bytes());
    }
    for (i, log) in logs.iter_mut().enumerate() {
        append(log, i as i64, format!("second-{i}").as_bytes());
        (log.syncer().unwrap())().unwrap();
        assert_eq!(log.end_offset(), 2);
        assert!(!log.read(0, 2, usize::MAX).unwrap().is_empty());
    }
    let (open, _) = files::files().stats();
    assert!(open <= 1024, "{open} files open");
}
