//! The behaviour every `LogStore` backend must show. Each backend's tests call
//! `run_all` with a factory for fresh, empty logs; backends that persist add their
//! own crash-and-reopen cases on top.

use crate::batch::{build_batch, BatchHeader};
use crate::{LogStore, Retention};

pub type Factory<'a> = dyn FnMut() -> Box<dyn LogStore> + 'a;

pub fn run_all(fresh: &mut Factory) {
    assigns_contiguous_offsets(&mut *fresh()).unwrap();
    reads_whole_batches_within_limits(&mut *fresh()).unwrap();
    reads_stop_before_up_to(&mut *fresh()).unwrap();
    finds_offsets_by_timestamp(&mut *fresh()).unwrap();
    retention_keeps_the_newest_batch(&mut *fresh()).unwrap();
    scan_visits_every_batch(&mut *fresh()).unwrap();
}

fn append_n(log: &mut dyn LogStore, ts: i64, n: usize) -> std::io::Result<u64> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    let mut b = build_batch(ts, &refs, None);
    log.append(&mut b)
}

fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = BatchHeader::validate(&bytes[at..]).expect("read returns valid batches");
        at += h.size;
        out.push(h);
    }
    out
}

pub fn assigns_contiguous_offsets(log: &mut dyn LogStore) -> std::io::Result<()> {
    assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
    assert_eq!(append_n(log, 10, 3)?, 0);
    assert_eq!(append_n(log, 11, 1)?, 3);
    assert_eq!(append_n(log, 12, 2)?, 4);
    assert_eq!(log.end_offset(), 6);
    (log.syncer()?)()?;
    Ok(())
}

pub fn reads_whole_batches_within_limits(log: &mut dyn LogStore) -> std::io::Result<()> {
    for i in 0..10 {
        append_n(log, i, 2)?;
    }
    let all = log.read(0, u64::MAX, usize::MAX)?;
    let hs = headers(&all);
    assert_eq!(hs.len(), 10);
    assert_eq!(hs[9].base_offset, 18);
    // Reading from the middle of a batch starts at that batch.
    let mid = headers(&log.read(5, u64::MAX, usize::MAX)?);
    assert_eq!(mid[0].base_offset, 4);
    // A limit smaller than one batch still yields that one batch.
    let one = headers(&log.read(0, u64::MAX, 1)?);
    assert_eq!(one.len(), 1);
    // A limit of two batches' size yields exactly two.
    let two = headers(&log.read(0, u64::MAX, hs[0].size + hs[1].size)?);
    assert_eq!(two.len(), 2);
    // Past the end: nothing.
    assert!(log.read(20, u64::MAX, usize::MAX)?.is_empty());
    Ok(())
}

pub fn reads_stop_before_up_to(log: &mut dyn LogStore) -> std::io::Result<()> {
    append_n(log, 0, 2)?;
    append_n(log, 0, 2)?;
    let hs = headers(&log.read(0, 2, usize::MAX)?);
    assert_eq!(hs.len(), 1);
    assert!(log.read(0, 0, usize::MAX)?.is_empty());
    Ok(())
}

pub fn finds_offsets_by_timestamp(log: &mut dyn LogStore) -> std::io::Result<()> {
    append_n(log, 100, 2)?;
    append_n(log, 200, 2)?;
    append_n(log, 150, 2)?;
    assert_eq!(log.offset_for_timestamp(0)?, Some((0, 100)));
    assert_eq!(log.offset_for_timestamp(101)?, Some((2, 200)));
    assert_eq!(log.offset_for_timestamp(201)?, None);
    assert_eq!(log.max_timestamp()?, Some((3, 200)));
    Ok(())
}

pub fn retention_keeps_the_newest_batch(log: &mut dyn LogStore) -> std::io::Result<()> {
    for i in 0..5 {
        append_n(log, i, 1)?;
    }
    let everything_old = Retention {
        retention_ms: 0,
        retention_bytes: -1,
    };
    log.apply_retention(1_000_000, everything_old)?;
    assert!(log.start_offset() <= 4);
    assert_eq!(log.end_offset(), 5);
    let rest = headers(&log.read(log.start_offset(), u64::MAX, usize::MAX)?);
    assert_eq!(rest.last().unwrap().base_offset, 4);
    // Nothing is removed when nothing is past the limits.
    let start = log.start_offset();
    log.apply_retention(
        0,
        Retention {
            retention_ms: -1,
            retention_bytes: -1,
        },
    )?;
    assert_eq!(log.start_offset(), start);
    Ok(())
}

pub fn scan_visits_every_batch(log: &mut dyn LogStore) -> std::io::Result<()> {
    for i in 0..4 {
        append_n(log, i, 3)?;
    }
    let mut bases = Vec::new();
    log.scan(&mut |h| bases.push(h.base_offset))?;
    assert_eq!(bases, vec![0, 3, 6, 9]);
    Ok(())
}
