//! The data plane: Produce, Fetch (long poll), ListOffsets, OffsetForLeaderEpoch.

use crate::partition::{Durable, Partition, LEADER_EPOCH};
use crate::topics::Topic;
use crate::{Broker, FsyncPolicy, Reply};
use cohort_records::{validate_batch, Rejection, ValidationConfig};
use cohort_types::api::*;
use cohort_types::{ErrorCode, TopicId};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl Broker {
    pub(crate) fn partition_of(&self, topic: &Topic, index: i32) -> Option<Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .cloned()
    }

    /// Checks one partition's records as Kafka's broker does and appends them;
    /// on success returns the append and the offset that must be durable before
    /// acknowledging.
    fn produce_one(
        &self,
        topic: &Topic,
        partition: &Arc<Partition>,
        records: Option<bytes::Bytes>,
        api_version: i16,
    ) -> Result<(u64, u64, u64), Rejection> {
        let records = records.unwrap_or_default();
        let config = ValidationConfig {
            now_ms: crate::now_ms(),
            max_message_bytes: self.max_message_bytes(topic),
            timestamp_before_max_ms: self
                .topic_config_i64(topic, "message.timestamp.before.max.ms"),
            timestamp_after_max_ms: self.topic_config_i64(topic, "message.timestamp.after.max.ms"),
            compacted: self.has_cleanup_policy(topic, "compact"),
            api_version,
            topic_partition: format!("{}-{}", topic.name, partition.index),
        };
        let checked = validate_batch(&records, &config)?;
        if checked.header.is_transactional() {
            return Err(Rejection {
                code: ErrorCode::INVALID_REQUEST,
                message: Some("Cohort does not support transactions".into()),
                record_errors: vec![],
            });
        }
        let mut batch = records[..checked.len].to_vec();
        checked.rewrite(&mut batch);
        let header = cohort_log::BatchHeader {
            max_timestamp: checked.max_timestamp,
            ..checked.header
        };
        let appended = partition
            .append(&mut batch, &header)
            .map_err(|code| Rejection {
                code,
                message: None,
                record_errors: vec![],
            })?;
        if !appended.duplicate {
            self.durability.appended(partition, appended.end_offset);
        }
        Ok((
            appended.base_offset,
            appended.end_offset,
            appended.log_start_offset,
        ))
    }

    pub(crate) fn produce(self: &Arc<Self>, r: ProduceRequest) -> Reply {
        let mut response = ProduceResponse::default();
        let mut waits: Vec<(usize, usize, Arc<Partition>, u64)> = Vec::new();
        let refuse_all = if !matches!(r.acks, 0 | 1 | -1) {
            Some(ErrorCode::INVALID_REQUIRED_ACKS)
        } else if r.transactional_id.is_some() {
            Some(ErrorCode::INVALID_REQUEST)
        } else {
            None
        };
        for (ti, t) in r.topics.into_iter().enumerate() {
            let topic = match &t.topic {
                TopicRef::Name(n) => self.topics.read().get(n),
                TopicRef::Id(id) => self.topics.read().get_by_id(id),
            };
            let mut results = Vec::new();
            for (pi, (index, records)) in t.partitions.into_iter().enumerate() {
                let mut res = ProducePartitionResult {
                    partition: index,
                    error: ErrorCode::NONE,
                    base_offset: -1,
                    log_append_time: -1,
                    log_start_offset: -1,
                    message: None,
                    record_errors: vec![],
                };
                let target = topic
                    .as_ref()
                    .and_then(|tp| Some((tp, self.partition_of(tp, index)?)));
                match (refuse_all, target) {
                    (Some(code), _) => res.error = code,
                    (None, None) => {
                        res.error = match t.topic {
                            TopicRef::Id(_) if topic.is_none() => ErrorCode::UNKNOWN_TOPIC_ID,
                            _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        }
                    }
                    (None, Some((tp, p))) => match self.produce_one(tp, &p, records, r.api_version)
                    {
                        Ok((base, end, start)) => {
                            res.base_offset = base as i64;
                            res.log_start_offset = start as i64;
                            waits.push((ti, pi, p, end));
                        }
                        Err(rejection) => {
                            res.error = rejection.code;
                            res.message = rejection.message;
                            res.record_errors = rejection.record_errors;
                        }
                    },
                }
                results.push(res);
            }
            let (name, id) = match (&topic, t.topic) {
                (Some(tp), _) => (tp.name.clone(), tp.id),
                (None, TopicRef::Name(n)) => (n, TopicId::ZERO),
                (None, TopicRef::Id(id)) => (String::new(), id),
            };
            response.topics.push(ProduceTopicResult {
                name,
                id,
                partitions: results,
            });
        }
        if r.acks == 0 {
            return Reply::Nothing;
        }
        if self.durability.policy() != FsyncPolicy::Always || waits.is_empty() {
            return Reply::Now(Response::Produce(response));
        }
        let timeout = Duration::from_millis(r.timeout_ms.max(0) as u64);
        Reply::Later(Box::pin(async move {
            let deadline = Instant::now() + timeout;
            for (ti, pi, p, end) in waits {
                let mut rx = p.subscribe_durable();
                let outcome = tokio::time::timeout_at(
                    deadline,
                    rx.wait_for(|d| {
                        matches!(d, Durable::Failed) || matches!(d, Durable::UpTo(x) if *x >= end)
                    }),
                )
                .await;
                let code = match outcome {
                    Ok(Ok(d)) if *d != Durable::Failed => ErrorCode::NONE,
                    Ok(_) => ErrorCode::KAFKA_STORAGE_ERROR,
                    Err(_) => ErrorCode::REQUEST_TIMED_OUT,
                };
                if code != ErrorCode::NONE {
                    let res = &mut response.topics[ti].partitions[pi];
                    res.error = code;
                    res.base_offset = -1;
                }
            }
            Response::Produce(response)
        }))
    }

    /// A long poll: answered when there is enough to send, when the wait is
    /// up, or when the connection sends another request behind it
    /// (`later_requests`), whose answer must not wait out the poll.
    pub(crate) fn fetch(
        self: &Arc<Self>,
        r: FetchRequest,
        mut later_requests: Option<tokio::sync::watch::Receiver<u64>>,
    ) -> Reply {
        let mut changed = self.data_changed.subscribe();
        changed.borrow_and_update();
        if let Some(r) = &mut later_requests {
            r.borrow_and_update();
        }
        let (first, done) = self.fetch_once(&r);
        if done || r.max_wait_ms <= 0 {
            return Reply::Now(Response::Fetch(first));
        }
        let deadline = Instant::now() + Duration::from_millis(r.max_wait_ms as u64);
        let broker = self.clone();
        Reply::Later(Box::pin(async move {
            loop {
                // Woken by any high watermark moving, by the deadline, or by
                // a request queued behind this one.
                let woke = tokio::select! {
                    w = tokio::time::timeout_at(deadline, changed.changed()) => matches!(w, Ok(Ok(()))),
                    _ = async {
                        match &mut later_requests {
                            Some(r) => {
                                let _ = r.changed().await;
                            }
                            None => std::future::pending().await,
                        }
                    } => false,
                };
                changed.borrow_and_update();
                let (resp, done) = broker.fetch_once(&r);
                if done || !woke {
                    return Response::Fetch(resp);
                }
            }
        }))
    }

    /// One pass over the requested partitions; `true` when it should be sent now
    /// (enough bytes for min_bytes, or an error to report).
    fn fetch_once(&self, r: &FetchRequest) -> (FetchResponse, bool) {
        let mut budget = r.max_bytes.max(1) as usize;
        let mut total = 0usize;
        let mut any_error = false;
        let mut out = FetchResponse::default();
        for t in &r.topics {
            let topic = match &t.topic {
                TopicRef::Name(n) => self.topics.read().get(n),
                TopicRef::Id(id) => self.topics.read().get_by_id(id),
            };
            let (name, id) = match (&topic, &t.topic) {
                (Some(tp), _) => (tp.name.clone(), tp.id),
                (None, TopicRef::Name(n)) => (n.clone(), TopicId::ZERO),
                (None, TopicRef::Id(id)) => (String::new(), *id),
            };
            let mut parts = Vec::new();
            for fp in &t.partitions {
                let mut res = FetchPartitionResult {
                    partition: fp.partition,
                    error: ErrorCode::NONE,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    records: bytes::Bytes::new(),
                };
                let p = topic
                    .as_ref()
                    .and_then(|tp| self.partition_of(tp, fp.partition));
                match p {
                    None => {
                        res.error = match t.topic {
                            TopicRef::Id(_) if topic.is_none() => ErrorCode::UNKNOWN_TOPIC_ID,
                            _ => ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                        }
                    }
                    Some(p) => {
                        if let Err(code) =
                            self.read_partition(&p, fp, &mut res, &mut budget, &mut total)
                        {
                            res.error = code;
                        }
                    }
                }
                any_error |= res.error != ErrorCode::NONE;
                parts.push(res);
            }
            out.topics.push(FetchTopicResult {
                name,
                id,
                partitions: parts,
            });
        }
        let done = any_error || total >= r.min_bytes.max(1) as usize;
        (out, done)
    }

    fn read_partition(
        &self,
        p: &Partition,
        fp: &FetchPartition,
        res: &mut FetchPartitionResult,
        budget: &mut usize,
        total: &mut usize,
    ) -> Result<(), ErrorCode> {
        if fp.current_leader_epoch > LEADER_EPOCH {
            return Err(ErrorCode::UNKNOWN_LEADER_EPOCH);
        }
        if p.is_failed() {
            return Err(ErrorCode::KAFKA_STORAGE_ERROR);
        }
        let hw = p.high_watermark();
        let start = p.log_start_offset();
        res.high_watermark = hw as i64;
        res.last_stable_offset = hw as i64;
        res.log_start_offset = start as i64;
        let end = p.log_end_offset();
        if fp.fetch_offset < start as i64 || fp.fetch_offset > end as i64 {
            return Err(ErrorCode::OFFSET_OUT_OF_RANGE);
        }
        if fp.fetch_offset as u64 >= hw || (*total > 0 && *budget == 0) {
            return Ok(());
        }
        let limit = (fp.partition_max_bytes.max(0) as usize).min(*budget);
        let bytes = p.read(fp.fetch_offset as u64, limit).map_err(|e| {
            tracing::error!(topic = %p.topic, partition = p.index, "read failed: {e}");
            ErrorCode::KAFKA_STORAGE_ERROR
        })?;
        // Only the very first batch of a response may exceed the limits (KIP-74).
        if *total > 0 && bytes.len() > limit {
            return Ok(());
        }
        *total += bytes.len();
        *budget = budget.saturating_sub(bytes.len());
        res.records = bytes;
        Ok(())
    }

    pub(crate) fn list_offsets(&self, r: ListOffsetsRequest) -> Vec<ListOffsetsTopicResult> {
        r.topics
            .into_iter()
            .map(|(name, parts)| {
                let topic = self.topics.read().get(&name);
                let partitions = parts
                    .into_iter()
                    .map(|(index, ts)| {
                        let mut res = ListOffsetsPartitionResult {
                            partition: index,
                            error: ErrorCode::NONE,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: LEADER_EPOCH,
                        };
                        match topic.as_ref().and_then(|t| self.partition_of(t, index)) {
                            None => res.error = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(_) if r.api_version < sentinel_version(ts) => {
                                res.error = ErrorCode::UNSUPPORTED_VERSION
                            }
                            Some(p) => match list_offset(&p, ts) {
                                Ok((offset, timestamp)) => {
                                    res.offset = offset;
                                    res.timestamp = timestamp;
                                }
                                Err(code) => res.error = code,
                            },
                        }
                        // No offset, no epoch (as Kafka answers).
                        if res.offset == -1 {
                            res.leader_epoch = -1;
                        }
                        res
                    })
                    .collect();
                ListOffsetsTopicResult { name, partitions }
            })
            .collect()
    }

    pub(crate) fn offset_for_leader_epoch(
        &self,
        r: OffsetForLeaderEpochRequest,
    ) -> Vec<OffsetForLeaderEpochTopicResult> {
        r.topics
            .into_iter()
            .map(|(name, parts)| {
                let topic = self.topics.read().get(&name);
                let partitions = parts
                    .into_iter()
                    .map(|(index, epoch)| {
                        match topic.as_ref().and_then(|t| self.partition_of(t, index)) {
                            None => EpochEndOffset {
                                partition: index,
                                error: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                                leader_epoch: -1,
                                end_offset: -1,
                            },
                            Some(p) if p.is_failed() => EpochEndOffset {
                                partition: index,
                                error: ErrorCode::KAFKA_STORAGE_ERROR,
                                leader_epoch: -1,
                                end_offset: -1,
                            },
                            // Epoch 0 is the only one and is still open: it ends at the log end.
                            Some(p) if epoch == LEADER_EPOCH => EpochEndOffset {
                                partition: index,
                                error: ErrorCode::NONE,
                                leader_epoch: LEADER_EPOCH,
                                end_offset: p.log_end_offset() as i64,
                            },
                            Some(_) => EpochEndOffset {
                                partition: index,
                                error: ErrorCode::NONE,
                                leader_epoch: -1,
                                end_offset: -1,
                            },
                        }
                    })
                    .collect();
                OffsetForLeaderEpochTopicResult { name, partitions }
            })
            .collect()
    }
}

/// The first ListOffsets version that may ask for this timestamp sentinel; an
/// older one gets UNSUPPORTED_VERSION, as from Kafka.
fn sentinel_version(ts: i64) -> i16 {
    match ts {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL_TIMESTAMP => 8,
        LATEST_TIERED_TIMESTAMP => 9,
        EARLIEST_PENDING_UPLOAD_TIMESTAMP => 11,
        _ => 0,
    }
}

/// (offset, timestamp) for one ListOffsets query; only offsets below the high
/// watermark are ever revealed.
fn list_offset(p: &Partition, ts: i64) -> Result<(i64, i64), ErrorCode> {
    if p.is_failed() {
        return Err(ErrorCode::KAFKA_STORAGE_ERROR);
    }
    let hw = p.high_watermark();
    let storage = |e: std::io::Error| {
        tracing::error!(topic = %p.topic, partition = p.index, "list offsets: {e}");
        ErrorCode::KAFKA_STORAGE_ERROR
    };
    Ok(match ts {
        LATEST_TIMESTAMP => (hw as i64, -1),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => (p.log_start_offset() as i64, -1),
        MAX_TIMESTAMP => match p.max_timestamp().map_err(storage)? {
            Some((offset, t)) if offset < hw => (offset as i64, t),
            _ => (-1, -1),
        },
        // Nothing is tiered: no offset was copied, none is pending.
        LATEST_TIERED_TIMESTAMP | EARLIEST_PENDING_UPLOAD_TIMESTAMP => (-1, -1),
        t if t >= 0 => match p.offset_for_timestamp(t).map_err(storage)? {
            Some((offset, found)) if offset < hw => (offset as i64, found),
            _ => (-1, -1),
        },
        _ => return Err(ErrorCode::INVALID_REQUEST),
    })
}
