//! LeaveGroup, including batch leave and admin removal of static members.

use super::GroupState;
use crate::timers::TimerKey;
use crate::{Coordinator, Event, Out};
use cohort_types::group::{
    GroupResponse, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupResponse,
};
use cohort_types::{ErrorCode, Millis};

impl Coordinator {
    pub(crate) fn leave_group(
        &mut self,
        now: Millis,
        r: LeaveGroupRequest,
        out: &mut Out,
    ) -> LeaveGroupResponse {
        if self.consumer_groups.contains_key(&r.group_id) {
            return self.classic_leave_consumer_group(now, r, out);
        }
        let Some(g) = self.groups.get(&r.group_id) else {
            let members = r
                .members
                .into_iter()
                .map(|(m, i)| (m, i, ErrorCode::UNKNOWN_MEMBER_ID))
                .collect();
            return LeaveGroupResponse {
                error: ErrorCode::NONE,
                members,
            };
        };
        if g.is(GroupState::Dead) {
            return LeaveGroupResponse {
                error: ErrorCode::COORDINATOR_NOT_AVAILABLE,
                members: vec![],
            };
        }
        let mut results = Vec::new();
        let mut removed_any = false;
        for (member_id, instance) in r.members {
            let g = self.groups.get_mut(&r.group_id).unwrap();
            let target = if member_id.is_empty() {
                // Admin removal of a static member by instance id alone.
                match instance.as_ref().and_then(|i| g.static_members.get(i)) {
                    Some(mapped) => Ok(mapped.clone()),
                    None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
                }
            } else if g.pending_join.remove(&member_id) {
                self.timers.cancel(&TimerKey::PendingMember {
                    group: r.group_id.clone(),
                    member: member_id.clone(),
                });
                results.push((member_id, instance, ErrorCode::NONE));
                continue;
            } else {
                g.validate_member(&member_id, instance.as_deref())
                    .map(|_| member_id.clone())
            };
            match target {
                Ok(id) => {
                    self.remove_member_answering(
                        &r.group_id,
                        &id,
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        "left the group",
                        out,
                    );
                    removed_any = true;
                    results.push((member_id, instance, ErrorCode::NONE));
                }
                Err(e) => results.push((member_id, instance, e)),
            }
        }
        if removed_any {
            match self.groups[&r.group_id].state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.prepare_rebalance(now, &r.group_id, "member left", out)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join(now, &r.group_id, out),
                _ => {}
            }
        }
        LeaveGroupResponse {
            error: ErrorCode::NONE,
            members: results,
        }
    }

    /// Removes a member, answering its parked requests with `error`.
    pub(crate) fn remove_member_answering(
        &mut self,
        group_id: &str,
        member_id: &str,
        error: ErrorCode,
        reason: &str,
        out: &mut Out,
    ) {
        let g = self.groups.get_mut(group_id).unwrap();
        let Some(mut m) = g.remove_member(member_id) else {
            return;
        };
        self.timers.cancel(&TimerKey::Heartbeat {
            group: group_id.to_string(),
            member: member_id.to_string(),
        });
        self.release_member_sync(group_id, member_id, out);
        if let Some(j) = m.awaiting_join.take() {
            out.reply(
                j.request,
                GroupResponse::JoinGroup(JoinGroupResponse::error(error, member_id)),
            );
        }
        if let Some(s) = m.awaiting_sync.take() {
            out.reply(
                s.request,
                GroupResponse::SyncGroup(SyncGroupResponse::error(error)),
            );
        }
        out.event(Event::MemberRemoved {
            group: group_id.to_string(),
            member: member_id.to_string(),
            reason: reason.to_string(),
        });
    }
}
