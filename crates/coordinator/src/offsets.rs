//! OffsetCommit, OffsetFetch, OffsetDelete and offset expiry.

use crate::classic::{ClassicGroup, GroupState};
use crate::records::{OffsetRecord, Record};
use crate::timers::TimerKey;
use crate::{Coordinator, Out};
use cohort_types::group::{
    FetchedOffset, GroupOffsets, OffsetCommitRequest, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest,
};
use cohort_types::{ErrorCode, Millis, TopicPartition};

/// Kafka's validateOffsetCommit for a classic group. `early_notice`: the
/// coordinator holds heartbeats, so members hear of a rebalance at once.
fn validate_commit(
    g: &ClassicGroup,
    r: &OffsetCommitRequest,
    early_notice: bool,
) -> Result<(), ErrorCode> {
    if g.is(GroupState::Dead) {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if r.generation_id < 0 && g.is(GroupState::Empty) {
        // A "simple" commit: manual assignment, admin tools.
        return Ok(());
    }
    if r.generation_id >= 0 || !r.member_id.is_empty() || r.group_instance_id.is_some() {
        g.validate_member(&r.member_id, r.group_instance_id.as_deref())?;
        if !g.generation_ok(&r.member_id, r.generation_id) {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
    } else if !g.is(GroupState::Empty) {
        return Err(ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if g.is(GroupState::CompletingRebalance) && !early_notice {
        // Eager members commit in onPartitionsRevoked, during PreparingRebalance,
        // with the previous generation: that is allowed; this is not.
        //
        // With held heartbeats a member hears of a rebalance the moment it
        // starts and rejoins at once, so a commit its application makes
        // while closing (librdkafka commits in the revocation callback with
        // the generation its JoinGroup answer gave, and never syncs once
        // closing) lands here; with Kafka's 3 s heartbeat the member would
        // still be in the previous generation and be accepted. The commit is
        // from a current member for what it consumed, and no member has a
        // partition of this generation before its SyncGroup, so nobody's
        // newer offset can be overwritten: it is accepted.
        return Err(ErrorCode::REBALANCE_IN_PROGRESS);
    }
    Ok(())
}

impl Coordinator {
    pub(crate) fn offset_commit(
        &mut self,
        now: Millis,
        r: OffsetCommitRequest,
        out: &mut Out,
    ) -> Vec<(TopicPartition, ErrorCode)> {
        let all = |e: ErrorCode| {
            r.offsets
                .iter()
                .map(|o| (o.partition.clone(), e))
                .collect::<Vec<_>>()
        };
        if r.group_id.is_empty() {
            return all(ErrorCode::INVALID_GROUP_ID);
        }
        if let Some(g) = self.consumer_groups.get(&r.group_id) {
            if let Err(e) = self.validate_consumer_commit(g, &r) {
                return all(e);
            }
        } else {
            match self.groups.get(&r.group_id) {
                None if r.generation_id < 0 => {
                    let g = ClassicGroup::new(&r.group_id, now);
                    let rec = g.to_record(false);
                    self.groups.insert(r.group_id.clone(), g);
                    self.emit(out, Record::Group(rec));
                }
                None if r.group_id_not_found_supported => {
                    return all(ErrorCode::GROUP_ID_NOT_FOUND)
                }
                None => return all(ErrorCode::ILLEGAL_GENERATION),
                Some(g) => {
                    let early_notice = self.config.classic_hold_heartbeat_ms > 0;
                    if let Err(e) = validate_commit(g, &r, early_notice) {
                        return all(e);
                    }
                    // A commit is a sign of life.
                    if matches!(g.state, GroupState::Stable | GroupState::PreparingRebalance) {
                        if let Some(m) = g.members.get(&r.member_id) {
                            let at = now + m.session_timeout_ms as i64;
                            self.timers.arm(
                                TimerKey::Heartbeat {
                                    group: r.group_id.clone(),
                                    member: r.member_id.clone(),
                                },
                                at,
                            );
                        }
                    }
                }
            }
        }
        let expire = (r.retention_ms >= 0).then(|| now + r.retention_ms);
        let mut results = Vec::new();
        for o in r.offsets {
            let error = if o.unknown_partition {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            } else if o
                .metadata
                .as_ref()
                .is_some_and(|m| m.len() > self.config.offset_metadata_max_bytes)
            {
                ErrorCode::OFFSET_METADATA_TOO_LARGE
            } else {
                let rec = OffsetRecord {
                    group_id: r.group_id.clone(),
                    topic: o.partition.topic.clone(),
                    partition: o.partition.partition,
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_timestamp: now,
                    expire_timestamp: expire,
                };
                self.emit(out, Record::Offset(rec));
                ErrorCode::NONE
            };
            results.push((o.partition, error));
        }
        results
    }

    /// Consumer groups: a member commits with its epoch. An older epoch is
    /// still accepted for partitions the member holds (assigned, or being
    /// revoked), so commits made while its epoch moves are not falsely fenced;
    /// a newer one is STALE_MEMBER_EPOCH.
    fn validate_consumer_commit(
        &self,
        g: &crate::consumer::ConsumerGroup,
        r: &OffsetCommitRequest,
    ) -> Result<(), ErrorCode> {
        if r.generation_id < 0 && g.members.is_empty() {
            return Ok(());
        }
        let m = g
            .members
            .get(&r.member_id)
            .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        // A classic member of a mixed group commits with its generation (its
        // member epoch), at any OffsetCommit version, and is fenced as a
        // classic group fences (Kafka's ConsumerGroup.validateMemberEpoch).
        if m.uses_classic_protocol() {
            return if r.generation_id == m.member_epoch {
                Ok(())
            } else {
                Err(ErrorCode::ILLEGAL_GENERATION)
            };
        }
        if !r.group_id_not_found_supported {
            return Err(ErrorCode::UNSUPPORTED_VERSION);
        }
        if r.generation_id == m.member_epoch {
            return Ok(());
        }
        if r.generation_id > m.member_epoch || r.generation_id < 0 {
            return Err(ErrorCode::STALE_MEMBER_EPOCH);
        }
        let holds_all = r.offsets.iter().all(|o| {
            self.topics
                .get(&o.partition.topic)
                .is_some_and(|(id, _)| m.holds(id, o.partition.partition))
        });
        if holds_all {
            Ok(())
        } else {
            Err(ErrorCode::STALE_MEMBER_EPOCH)
        }
    }

    pub(crate) fn offset_fetch(&self, r: OffsetFetchRequest) -> Vec<GroupOffsets> {
        let members = r.members.clone();
        r.groups
            .into_iter()
            .enumerate()
            .map(|(i, (group_id, wanted))| {
                if let (Some(g), Some(Some((member_id, epoch)))) =
                    (self.consumer_groups.get(&group_id), members.get(i))
                {
                    let error = match g.members.get(member_id) {
                        None => Some(ErrorCode::UNKNOWN_MEMBER_ID),
                        Some(m) if m.member_epoch != *epoch => Some(ErrorCode::STALE_MEMBER_EPOCH),
                        Some(_) => None,
                    };
                    if let Some(error) = error {
                        return GroupOffsets {
                            group_id,
                            error,
                            partitions: vec![],
                        };
                    }
                }
                let committed = self.offsets.get(&group_id);
                let partitions = match wanted {
                    Some(tps) => tps
                        .into_iter()
                        .map(|tp| {
                            match committed.and_then(|c| c.get(&(tp.topic.clone(), tp.partition))) {
                                Some(o) => FetchedOffset {
                                    partition: tp,
                                    offset: o.offset,
                                    leader_epoch: o.leader_epoch,
                                    metadata: o.metadata.clone(),
                                    error: ErrorCode::NONE,
                                },
                                None => FetchedOffset {
                                    partition: tp,
                                    offset: -1,
                                    leader_epoch: -1,
                                    metadata: Some(String::new()),
                                    error: ErrorCode::NONE,
                                },
                            }
                        })
                        .collect(),
                    None => committed
                        .map(|c| {
                            c.values()
                                .map(|o| FetchedOffset {
                                    partition: TopicPartition::new(&o.topic, o.partition),
                                    offset: o.offset,
                                    leader_epoch: o.leader_epoch,
                                    metadata: o.metadata.clone(),
                                    error: ErrorCode::NONE,
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                GroupOffsets {
                    group_id,
                    error: ErrorCode::NONE,
                    partitions,
                }
            })
            .collect()
    }

    pub(crate) fn offset_delete(
        &mut self,
        _now: Millis,
        r: OffsetDeleteRequest,
        out: &mut Out,
    ) -> OffsetDeleteResponse {
        let fail = |e| OffsetDeleteResponse {
            error: e,
            partitions: vec![],
        };
        if let Some(g) = self.consumer_groups.get(&r.group_id) {
            let subscribed = self.subscribed_names(g);
            return self.delete_offsets(&r, &subscribed, out);
        }
        let Some(g) = self.groups.get(&r.group_id) else {
            return fail(ErrorCode::GROUP_ID_NOT_FOUND);
        };
        if g.is(GroupState::Dead) {
            return fail(ErrorCode::GROUP_ID_NOT_FOUND);
        }
        let is_consumer = g.protocol_type.as_deref() == Some("consumer");
        if !g.is(GroupState::Empty) && !is_consumer {
            return fail(ErrorCode::NON_EMPTY_GROUP);
        }
        let subscribed = if g.is(GroupState::Empty) {
            Default::default()
        } else {
            crate::classic::subscribed_topics(g)
        };
        self.delete_offsets(&r, &subscribed, out)
    }

    fn delete_offsets(
        &mut self,
        r: &OffsetDeleteRequest,
        subscribed: &std::collections::BTreeSet<String>,
        out: &mut Out,
    ) -> OffsetDeleteResponse {
        let mut partitions = Vec::new();
        for tp in r.partitions.iter().cloned() {
            if subscribed.contains(&tp.topic) {
                partitions.push((tp, ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC));
                continue;
            }
            let exists = self
                .offsets
                .get(&r.group_id)
                .is_some_and(|o| o.contains_key(&(tp.topic.clone(), tp.partition)));
            if exists {
                let rec = Record::OffsetTombstone {
                    group_id: r.group_id.clone(),
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                };
                self.emit(out, rec);
            }
            partitions.push((tp, ErrorCode::NONE));
        }
        OffsetDeleteResponse {
            error: ErrorCode::NONE,
            partitions,
        }
    }

    /// Kafka's offset expiry (KIP-211): offsets of a group that uses a protocol
    /// expire once the group has been Empty for the retention period; offsets of
    /// a simple group expire by commit time. An explicit per-commit retention
    /// wins. An Empty group left with no offsets is deleted.
    pub(crate) fn expire_offsets(&mut self, now: Millis, out: &mut Out) {
        let retention = self.config.offsets_retention_ms;
        let mut tombstones = Vec::new();
        for (group_id, offsets) in &self.offsets {
            if let Some(cg) = self.consumer_groups.get(group_id) {
                // Consumer groups: by commit time, for topics no longer subscribed.
                let subscribed = self.subscribed_names(cg);
                for o in offsets.values() {
                    let at = o.expire_timestamp.unwrap_or(o.commit_timestamp + retention);
                    if !subscribed.contains(&o.topic) && at <= now {
                        tombstones.push(Record::OffsetTombstone {
                            group_id: group_id.clone(),
                            topic: o.topic.clone(),
                            partition: o.partition,
                        });
                    }
                }
                continue;
            }
            let g = self.groups.get(group_id);
            let empty_since = g
                .filter(|g| g.is(GroupState::Empty))
                .map(|g| g.state_timestamp);
            let uses_protocol = g.is_some_and(|g| g.protocol_type.is_some());
            for o in offsets.values() {
                let expired = match (o.expire_timestamp, uses_protocol) {
                    (Some(at), _) => at <= now && (empty_since.is_some() || !uses_protocol),
                    (None, true) => empty_since.is_some_and(|since| since + retention <= now),
                    (None, false) => {
                        g.map_or(true, |g| g.is(GroupState::Empty))
                            && o.commit_timestamp + retention <= now
                    }
                };
                if expired {
                    tombstones.push(Record::OffsetTombstone {
                        group_id: group_id.clone(),
                        topic: o.topic.clone(),
                        partition: o.partition,
                    });
                }
            }
        }
        for t in tombstones {
            self.emit(out, t);
        }
        let dead: Vec<String> = self
            .groups
            .values()
            .filter(|g| {
                g.is(GroupState::Empty)
                    && g.pending_join.is_empty()
                    && !self.offsets.contains_key(&g.group_id)
            })
            .map(|g| g.group_id.clone())
            .collect();
        for group_id in dead {
            self.timers.cancel_group(&group_id);
            self.emit(out, Record::GroupTombstone { group_id });
        }
        let dead: Vec<String> = self
            .consumer_groups
            .values()
            .filter(|g| g.members.is_empty() && !self.offsets.contains_key(&g.group_id))
            .map(|g| g.group_id.clone())
            .collect();
        for group_id in dead {
            self.timers.cancel_group(&group_id);
            self.emit(out, Record::ConsumerGroupTombstone { group_id });
        }
    }
}
