//! What the timers do: session expiry, pending-member expiry, the pending-sync
//! deadline, and resuming groups after a restart.

use super::GroupState;
use crate::timers::TimerKey;
use crate::{Coordinator, Out};
use cohort_types::{ErrorCode, Millis};

impl Coordinator {
    pub(crate) fn expire_member(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        out: &mut Out,
    ) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        if g.is(GroupState::Dead) {
            return;
        }
        let Some(m) = g.members.get(member_id) else {
            return;
        };
        // A member parked in a join or sync cannot heartbeat; it is alive unless
        // it is new (its first join may have been abandoned).
        if !m.is_new && (m.awaiting_join.is_some() || m.awaiting_sync.is_some()) {
            return;
        }
        self.remove_lost_member(now, group_id, member_id, "session timed out", out);
    }

    /// Removes a member that is gone (its session expired, or its connection
    /// ended and it did not come back): a parked request of its is answered
    /// UNKNOWN_MEMBER_ID, and the group rebalances without it.
    pub(crate) fn remove_lost_member(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        why: &str,
        out: &mut Out,
    ) {
        if !self
            .groups
            .get(group_id)
            .is_some_and(|g| !g.is(GroupState::Dead) && g.members.contains_key(member_id))
        {
            return;
        }
        self.remove_member_answering(group_id, member_id, ErrorCode::UNKNOWN_MEMBER_ID, why, out);
        match self.groups[group_id].state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, group_id, &format!("member {why}"), out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, group_id, out),
            _ => {}
        }
    }

    pub(crate) fn expire_pending(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        out: &mut Out,
    ) {
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        if g.pending_join.remove(member_id) {
            self.maybe_complete_join(now, group_id, out);
        }
    }

    /// Members that got a JoinGroup answer but never synced are removed, and a
    /// new rebalance starts without them.
    pub(crate) fn sync_timeout(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        if !matches!(
            g.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) || g.pending_sync.is_empty()
        {
            return;
        }
        let late: Vec<String> = g.pending_sync.iter().cloned().collect();
        for m in late {
            self.remove_member_answering(
                group_id,
                &m,
                ErrorCode::UNKNOWN_MEMBER_ID,
                "did not sync in time",
                out,
            );
        }
        self.prepare_rebalance(now, group_id, "members did not sync in time", out);
    }

    /// Rebuilds a replayed group's soft state. A group whose assignment was
    /// stored resumes Stable with fresh session timers (no rebalance); one that
    /// stopped between join and sync rebalances again.
    pub(crate) fn resume_after_load(&mut self, now: Millis, group_id: &str) {
        let g = self.groups.get_mut(group_id).unwrap();
        let members: Vec<(String, i64)> = g
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.session_timeout_ms as i64))
            .collect();
        if members.is_empty() {
            g.state = GroupState::Empty;
            g.previous_state = GroupState::Empty;
            return;
        }
        let assigned = g.durable.assigned;
        g.state_timestamp = now;
        if assigned {
            g.state = GroupState::Stable;
            g.previous_state = GroupState::CompletingRebalance;
        } else {
            g.state = GroupState::PreparingRebalance;
            g.previous_state = GroupState::Stable;
            let timeout = g.rebalance_timeout_ms();
            self.timers.arm(
                TimerKey::Join {
                    group: group_id.to_string(),
                },
                now + timeout,
            );
        }
        for (member, session) in members {
            self.timers.arm(
                TimerKey::Heartbeat {
                    group: group_id.to_string(),
                    member,
                },
                now + session,
            );
        }
    }
}
