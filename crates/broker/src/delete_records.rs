//! DeleteRecords: a partition's log start offset moves forward; what lies
//! before it is never served again, and the move is on disk (the checkpoint)
//! before the answer goes out. Whole segments before it are removed at the
//! next retention pass.

use crate::Broker;
use cohort_types::api::*;
use cohort_types::ErrorCode;

impl Broker {
    pub(crate) fn delete_records(&self, r: DeleteRecordsRequest) -> Vec<DeleteRecordsTopicResult> {
        let mut moved = false;
        let mut out: Vec<DeleteRecordsTopicResult> = r
            .topics
            .into_iter()
            .map(|(name, parts)| {
                let topic = self.topics.read().get(&name);
                let partitions = parts
                    .into_iter()
                    .map(|(index, offset)| {
                        let Some(p) = topic.as_ref().and_then(|t| self.partition_of(t, index))
                        else {
                            return (index, -1, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
                        };
                        let before = p.log_start_offset();
                        match p.delete_records(offset) {
                            Ok(start) => {
                                moved |= start > before;
                                (index, start as i64, ErrorCode::NONE)
                            }
                            Err(code) => (index, -1, code),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult { name, partitions }
            })
            .collect();
        if moved {
            if let Err(e) = self.write_checkpoints() {
                // Not durable: a restart could serve the records again, so
                // the client must not be told they are gone.
                tracing::error!("writing the log start offsets after DeleteRecords: {e}");
                for t in &mut out {
                    for p in &mut t.partitions {
                        if p.2 == ErrorCode::NONE {
                            *p = (p.0, -1, ErrorCode::KAFKA_STORAGE_ERROR);
                        }
                    }
                }
            }
        }
        out
    }
}
