//! SyncGroup (the leader hands out the assignment) and Heartbeat.

use super::GroupState;
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{Coordinator, Event, Out, RequestId};
use bytes::Bytes;
use cohort_types::group::{GroupResponse, HeartbeatRequest, SyncGroupRequest, SyncGroupResponse};
use cohort_types::{ErrorCode, Millis};
use std::collections::BTreeMap;

fn sync_error(out: &mut Out, id: RequestId, e: ErrorCode) {
    out.reply(id, GroupResponse::SyncGroup(SyncGroupResponse::error(e)));
}

impl Coordinator {
    pub(crate) fn sync_group(
        &mut self,
        now: Millis,
        id: RequestId,
        r: SyncGroupRequest,
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
        if r.generation_id != g.generation {
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
                if let Some(prev) = m.awaiting_sync.replace(id).filter(|p| *p != id) {
                    sync_error(out, prev, ErrorCode::REBALANCE_IN_PROGRESS);
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
                let g = &self.groups[&group_id];
                let resp = SyncGroupResponse {
                    error: ErrorCode::NONE,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment: g.members[&r.member_id].assignment.clone(),
                };
                let session = g.members[&r.member_id].session_timeout_ms as i64;
                out.reply(id, GroupResponse::SyncGroup(resp));
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

    /// Answers every parked SyncGroup with its member's assignment.
    fn propagate_assignment(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let g = self.groups.get_mut(group_id).unwrap();
        let generation = g.generation;
        let (ptype, pname) = (g.protocol_type.clone(), g.protocol_name.clone());
        let mut rearm = Vec::new();
        for m in g.members.values_mut() {
            if let Some(s) = m.awaiting_sync.take() {
                out.reply(
                    s,
                    GroupResponse::SyncGroup(SyncGroupResponse {
                        error: ErrorCode::NONE,
                        protocol_type: ptype.clone(),
                        protocol_name: pname.clone(),
                        assignment: m.assignment.clone(),
                    }),
                );
                rearm.push((m.member_id.clone(), m.session_timeout_ms as i64));
            }
        }
        for (member, session) in rearm {
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
        if r.generation_id != g.generation {
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
