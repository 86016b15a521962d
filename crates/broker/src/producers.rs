//! Idempotent producers: producer id allocation, and per partition the sequence
//! checks that make retries harmless (Kafka's ProducerStateManager, without
//! transactions). The state is rebuilt from the log's batch headers on open, so
//! a retry after a broker restart is still recognised as a duplicate.

use cohort_log::BatchHeader;
use cohort_types::ErrorCode;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Kafka remembers the last five batches per producer: clients keep at most
/// five requests in flight, so a retry can only repeat one of those.
const REMEMBERED_BATCHES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Remembered {
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
}

#[derive(Debug, Default)]
struct Entry {
    epoch: i16,
    batches: VecDeque<Remembered>,
    /// The max timestamp of its last batch (DescribeProducers shows it).
    last_timestamp: i64,
}

/// What the sequence check decided for one incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// Already in the log at this base offset: answer success without appending.
    Duplicate(u64),
    Reject(ErrorCode),
}

#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Entry>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl ProducerStates {
    pub fn check(&self, h: &BatchHeader) -> Verdict {
        if !h.has_producer_id() {
            return Verdict::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // A producer this partition has never seen must start at sequence 0.
            return if h.base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        };
        if h.producer_epoch < entry.epoch {
            return Verdict::Reject(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > entry.epoch {
            // A bumped epoch restarts the sequence.
            return if h.base_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last_seq = h.last_sequence();
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Verdict::Duplicate(b.base_offset);
        }
        match entry.batches.back() {
            Some(last) if next_seq(last.last_seq) == h.base_sequence => Verdict::Append,
            None if h.base_sequence == 0 => Verdict::Append,
            _ => Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
        }
    }

    /// Every producer this partition remembers: (id, epoch, last sequence,
    /// last timestamp), by id.
    pub fn active(&self) -> Vec<(i64, i16, i32, i64)> {
        let mut out: Vec<_> = self
            .producers
            .iter()
            .map(|(&id, e)| {
                (
                    id,
                    e.epoch,
                    e.batches.back().map_or(-1, |b| b.last_seq),
                    e.last_timestamp,
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Records a batch that is now in the log (live append or recovery scan).
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        entry.batches.push_back(Remembered {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
        });
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }
}

/// Hands out producer ids that are never reused, even across restarts: ids are
/// reserved in blocks, and a block's end is on disk before any id in it is given.
pub struct ProducerIdAllocator {
    path: PathBuf,
    state: Mutex<(i64, i64)>, // (next id, end of reserved block)
}

const BLOCK: i64 = 1000;

impl ProducerIdAllocator {
    pub fn open(meta_dir: &Path) -> io::Result<ProducerIdAllocator> {
        let path = meta_dir.join("producer-id-block");
        let reserved = match std::fs::read_to_string(&path) {
            Ok(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|e| io::Error::other(format!("{path:?}: {e}")))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        // Everything below the last reserved end may have been handed out.
        Ok(ProducerIdAllocator {
            path,
            state: Mutex::new((reserved, reserved)),
        })
    }

    pub fn next(&self) -> io::Result<i64> {
        let mut st = self.state.lock().unwrap();
        if st.0 >= st.1 {
            let end = st.1 + BLOCK;
            crate::topics::write_atomically(&self.path, end.to_string().as_bytes())?;
            st.1 = end;
        }
        let id = st.0;
        st.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cohort_log::batch::build_batch;

    fn header(pid: i64, epoch: i16, seq: i32, n: usize, base: u64) -> BatchHeader {
        let values: Vec<&[u8]> = (0..n).map(|_| &b"v"[..]).collect();
        let b = build_batch(0, &values, Some((pid, epoch, seq)));
        BatchHeader {
            base_offset: base,
            ..BatchHeader::parse(&b).unwrap()
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut s = ProducerStates::default();
        let a = header(1, 0, 0, 3, 10);
        assert_eq!(s.check(&a), Verdict::Append);
        s.record(&a);
        let b = header(1, 0, 3, 2, 13);
        assert_eq!(s.check(&b), Verdict::Append);
        s.record(&b);
        assert_eq!(s.check(&header(1, 0, 0, 3, 0)), Verdict::Duplicate(10));
        assert_eq!(s.check(&header(1, 0, 3, 2, 0)), Verdict::Duplicate(13));
    }

    #[test]
    fn gaps_old_epochs_and_late_starts_are_rejected() {
        let mut s = ProducerStates::default();
        assert_eq!(
            s.check(&header(1, 0, 5, 1, 0)),
            Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        s.record(&header(1, 1, 0, 1, 0));
        assert_eq!(
            s.check(&header(1, 1, 2, 1, 0)),
            Verdict::Reject(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            s.check(&header(1, 0, 1, 1, 0)),
            Verdict::Reject(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        // A new epoch starts again at zero.
        assert_eq!(s.check(&header(1, 2, 0, 1, 0)), Verdict::Append);
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&header(9, 0, i, 1, i as u64));
        }
        assert_eq!(s.check(&header(9, 0, 6, 1, 0)), Verdict::Duplicate(6));
        assert_eq!(s.check(&header(9, 0, 2, 1, 0)), Verdict::Duplicate(2));
        assert!(matches!(
            s.check(&header(9, 0, 1, 1, 0)),
            Verdict::Reject(_)
        ));
    }

    #[test]
    fn producer_ids_are_not_reused_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let a = ProducerIdAllocator::open(dir.path()).unwrap();
        let first: Vec<i64> = (0..3).map(|_| a.next().unwrap()).collect();
        assert_eq!(first, vec![0, 1, 2]);
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).unwrap();
        assert!(b.next().unwrap() >= BLOCK);
    }
}
