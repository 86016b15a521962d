//! An in-memory log: the reference behaviour for the conformance suite, and the
//! store the simulator uses. `fail_next_sync` injects a sync failure.

use crate::batch::{set_base_offset, BatchHeader};
use crate::{LogStore, Retention, Syncer};
use bytes::{Bytes, BytesMut};
use std::io;

#[derive(Default)]
pub struct MemoryLog {
    batches: Vec<(BatchHeader, Bytes)>,
    start: u64,
    end: u64,
    pub fail_next_sync: bool,
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn first_holding(&self, offset: u64) -> usize {
        self.batches
            .partition_point(|(h, _)| h.next_offset() <= offset)
    }
}

impl LogStore for MemoryLog {
    fn append(&mut self, batch: &mut [u8]) -> io::Result<u64> {
        let base = self.end;
        set_base_offset(batch, base);
        let h = BatchHeader::parse(batch)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.end = h.next_offset();
        self.batches
            .push((h, Bytes::copy_from_slice(&batch[..h.size])));
        Ok(base)
    }

    fn start_offset(&self) -> u64 {
        self.start
    }

    fn size_bytes(&self) -> u64 {
        self.batches.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn advance_start(&mut self, offset: u64) -> u64 {
        self.start = self.start.max(offset.min(self.end));
        // Drop batches wholly before the new start.
        let gone = self
            .batches
            .partition_point(|(h, _)| h.next_offset() <= self.start);
        self.batches.drain(..gone);
        self.start
    }

    fn truncate_to(&mut self, offset: u64) -> io::Result<()> {
        let keep = self
            .batches
            .partition_point(|(h, _)| h.next_offset() <= offset);
        self.batches.truncate(keep);
        self.end = self
            .batches
            .last()
            .map_or(self.start, |(h, _)| h.next_offset());
        Ok(())
    }

    fn end_offset(&self) -> u64 {
        self.end
    }

    fn read(&self, from: u64, up_to: u64, max_bytes: usize) -> io::Result<Bytes> {
        let mut out = BytesMut::new();
        for (h, b) in &self.batches[self.first_holding(from)..] {
            if h.next_offset() > up_to || (!out.is_empty() && out.len() + b.len() > max_bytes) {
                break;
            }
            out.extend_from_slice(b);
        }
        Ok(out.freeze())
    }

    fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<Option<(u64, i64)>> {
        Ok(self
            .batches
            .iter()
            .find(|(h, _)| h.max_timestamp >= timestamp)
            .map(|(h, _)| (h.base_offset.max(self.start), h.max_timestamp)))
    }

    fn max_timestamp(&self) -> io::Result<Option<(u64, i64)>> {
        let mut best: Option<(u64, i64)> = None;
        for (h, _) in &self.batches {
            if best.map_or(true, |(_, t)| h.max_timestamp > t) {
                best = Some((h.last_offset(), h.max_timestamp));
            }
        }
        Ok(best)
    }

    fn syncer(&mut self) -> io::Result<Syncer> {
        let fail = std::mem::take(&mut self.fail_next_sync);
        Ok(Box::new(move || {
            if fail {
                Err(io::Error::other("injected sync failure"))
            } else {
                Ok(())
            }
        }))
    }

    fn scan(&self, visit: &mut dyn FnMut(&BatchHeader)) -> io::Result<()> {
        self.batches.iter().for_each(|(h, _)| visit(h));
        Ok(())
    }

    fn apply_retention(&mut self, now_ms: i64, retention: Retention) -> io::Result<u64> {
        // The memory log treats every batch as its own segment, and like the disk
        // log never removes the newest one.
        let old_start = self.start;
        let mut total: usize = self.batches.iter().map(|(_, b)| b.len()).sum();
        while self.batches.len() > 1 {
            let (h, b) = &self.batches[0];
            let too_old =
                retention.retention_ms >= 0 && h.max_timestamp < now_ms - retention.retention_ms;
            let too_big = retention.retention_bytes >= 0
                && (total - b.len()) as i64 >= retention.retention_bytes;
            if !(too_old || too_big) {
                break;
            }
            total -= b.len();
            self.start = h.next_offset();
            self.batches.remove(0);
        }
        Ok(self.start - old_start)
    }

    fn destroy(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn memory_log_passes_the_conformance_suite() {
        conformance::run_all(&mut || Box::new(MemoryLog::new()));
    }
}
