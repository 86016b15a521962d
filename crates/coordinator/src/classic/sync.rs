//! SyncGroup (the leader hands out the assignment) and Heartbeat.

use super::follow_up::{members_to_hold, RoundMember};
use super::{AwaitingSync, GroupState};
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{Connection, Coordinator, Event, Out, RequestId};
use bytes::Bytes;
use cohort_types::group::{GroupResponse, HeartbeatRequest, SyncGroupRequest, SyncGroupResponse};
use cohort_types::{ErrorCode, Millis};
use std::collections::{BTreeMap, BTreeSet};

fn sync_error(out: &mut Out, id: RequestId, e: ErrorCode) {
    out.reply(id, GroupResponse::SyncGroup(SyncGroupResponse::error(e)));
}

impl Coordinator {
    pub(crate) fn sync_group(
        &mut self,
        now: Millis,
        id: RequestId,
        r: SyncGroupRequest,
        connection: Connection,
        out: &mut Out,
    ) {
        if r.group_id.is_empty() {
            return sync_error(out, id, ErrorCode::INVALID_GROUP_ID);
        }
        if self.consumer_groups.contains_key(&r.group_id) {
            return self.classic_sync_consumer_group(now, id, r, out);
        }
        let Some(g) = self.groups.get_mut(&r.group_id) else {
            return sync_error(out, id, ErrorCode::UNKNOWN_MEMBER_ID);
        };
        match g.state {
            GroupState::Empty => return sync_error(out, id, ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::Dead => return sync_error(out, id, ErrorCode::COORDINATOR_NOT_AVAILABLE),
            _ => {}
        }
        if let Err(e) = g.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
            return sync_error(out, id, e);
        }
        if !g.generation_ok(&r.member_id, r.generation_id) {
            return sync_error(out, id, ErrorCode::ILLEGAL_GENERATION);
        }
        let type_differs = r
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != g.protocol_type.as_ref());
        let name_differs = r
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != g.protocol_name.as_ref());
        if type_differs || name_differs {
            return sync_error(out, id, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        }
        let group_id = r.group_id.clone();
        match g.state {
            GroupState::PreparingRebalance => sync_error(out, id, ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => {
                let m = g.members.get_mut(&r.member_id).unwrap();
                let parked = AwaitingSync {
                    request: id,
                    connection,
                };
                if let Some(prev) = m.awaiting_sync.replace(parked).filter(|p| p.request != id) {
                    sync_error(out, prev.request, ErrorCode::REBALANCE_IN_PROGRESS);
                }
                g.pending_sync.remove(&r.member_id);
                if g.pending_sync.is_empty() {
                    self.timers.cancel(&TimerKey::Sync {
                        group: group_id.clone(),
                    });
                }
                let g = self.groups.get_mut(&group_id).unwrap();
                if g.leader.as_deref() == Some(r.member_id.as_str()) {
                    // Members the leader left out get an empty assignment.
                    let given: BTreeMap<String, Bytes> = r.assignments.into_iter().collect();
                    for m in g.members.values_mut() {
                        m.assignment = given.get(&m.member_id).cloned().unwrap_or_default();
                    }
                    g.transition(GroupState::Stable, now);
                    let rec = g.to_record(true);
                    self.emit(out, Record::Group(rec));
                    self.propagate_assignment(now, &group_id, out);
                }
            }
            GroupState::Stable => {
                g.pending_sync.remove(&r.member_id);
                if g.pending_sync.is_empty() {
                    self.timers.cancel(&TimerKey::Sync {
                        group: group_id.clone(),
                    });
                }
                let session = g.members[&r.member_id].session_timeout_ms as i64;
                let parked = AwaitingSync {
                    request: id,
                    connection,
                };
                self.answer_sync_or_hold(now, &group_id, &r.member_id, parked, out);
                self.timers.arm(
                    TimerKey::Heartbeat {
                        group: group_id,
                        member: r.member_id,
                    },
                    now + session,
                );
            }
            GroupState::Empty | GroupState::Dead => unreachable!("checked above"),
        }
    }

    /// Answers every parked SyncGroup with its member's assignment (or holds
    /// it for the round that must follow, see `follow_up`).
    fn propagate_assignment(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let hold = self.follow_up_members(group_id);
        let g = self.groups.get_mut(group_id).unwrap();
        g.follow_up_hold = hold;
        let generation = g.generation;
        let mut parked = Vec::new();
        for m in g.members.values_mut() {
            if let Some(s) = m.awaiting_sync.take() {
                parked.push((m.member_id.clone(), m.session_timeout_ms as i64, s));
            }
        }
        for (member, session, s) in parked {
            self.answer_sync_or_hold(now, group_id, &member, s, out);
            self.timers.arm(
                TimerKey::Heartbeat {
                    group: group_id.to_string(),
                    member,
                },
                now + session,
            );
        }
        out.event(Event::Stable {
            group: group_id.to_string(),
            generation,
        });
    }

    /// The members of a round just completed whose SyncGroup answers may
    /// wait for its follow-up round; none while answers are not held.
    fn follow_up_members(&self, group_id: &str) -> BTreeSet<String> {
        let g = &self.groups[group_id];
        if !self.config.classic_follow_up_hold
            || self.config.classic_hold_heartbeat_ms <= 0
            || g.protocol_type.as_deref() != Some("consumer")
        {
            return BTreeSet::new();
        }
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let round: Vec<(&str, Bytes, &Bytes)> = g
            .members
            .values()
            .map(|m| {
                (
                    m.member_id.as_str(),
                    m.metadata_for(&protocol),
                    &m.assignment,
                )
            })
            .collect();
        members_to_hold(round.iter().map(|(id, s, a)| RoundMember {
            member_id: id,
            subscription: s,
            assignment: a,
        }))
    }

    /// What a SyncGroup of `member` for `generation` gets now, once its
    /// round has completed: its assignment while the group stays stable in
    /// that generation, REBALANCE_IN_PROGRESS once the next round began.
    pub(crate) fn completed_sync_answer(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> SyncGroupResponse {
        if self.consumer_groups.contains_key(group_id) {
            // Converted meanwhile: rejoin it as a classic member.
            return SyncGroupResponse::error(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        let Some(g) = self.groups.get(group_id) else {
            return SyncGroupResponse::error(ErrorCode::UNKNOWN_MEMBER_ID);
        };
        match g.state {
            GroupState::Empty => return SyncGroupResponse::error(ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::Dead => {
                return SyncGroupResponse::error(ErrorCode::COORDINATOR_NOT_AVAILABLE)
            }
            _ => {}
        }
        if let Err(e) = g.validate_member(member_id, instance_id) {
            return SyncGroupResponse::error(e);
        }
        if !g.generation_ok(member_id, generation) {
            return SyncGroupResponse::error(ErrorCode::ILLEGAL_GENERATION);
        }
        if !g.is(GroupState::Stable) {
            return SyncGroupResponse::error(ErrorCode::REBALANCE_IN_PROGRESS);
        }
        SyncGroupResponse {
            error: ErrorCode::NONE,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment: g.members[member_id].assignment.clone(),
        }
    }

    pub(crate) fn heartbeat(&mut self, now: Millis, r: HeartbeatRequest) -> ErrorCode {
        if self.consumer_groups.contains_key(&r.group_id) {
            return self.classic_heartbeat_consumer_group(now, &r);
        }
        let Some(g) = self.groups.get(&r.group_id) else {
            return ErrorCode::UNKNOWN_MEMBER_ID;
        };
        if g.is(GroupState::Dead) {
            return ErrorCode::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(e) = g.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
            return e;
        }
        if !g.generation_ok(&r.member_id, r.generation_id) {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let answer = match g.state {
            GroupState::Empty => return ErrorCode::UNKNOWN_MEMBER_ID,
            // Alive, but must rejoin.
            GroupState::PreparingRebalance => ErrorCode::REBALANCE_IN_PROGRESS,
            _ => ErrorCode::NONE,
        };
        let session = g.members[&r.member_id].session_timeout_ms as i64;
        self.timers.arm(
            TimerKey::Heartbeat {
                group: r.group_id,
                member: r.member_id,
            },
            now + session,
        );
        answer
    }
}
