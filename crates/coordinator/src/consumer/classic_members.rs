//! Classic members inside a consumer group (a mixed group, while a group is
//! rolled from one protocol to the other). They speak JoinGroup, SyncGroup,
//! Heartbeat and LeaveGroup; underneath, the consumer group's state machine
//! runs for them as for any member: the server-side assignor computes their
//! target, and they are reconciled revoke-first. The classic members' own
//! assignor is never run: nobody is leader, SyncGroup hands each member its
//! current assignment.
//!
//! A classic member cannot be told of a change in a heartbeat answer, so it
//! is made to rejoin (REBALANCE_IN_PROGRESS on its Heartbeat) whenever it is
//! behind the group epoch, must revoke, or may now pick up partitions others
//! released; its JoinGroup reports what it owns, which is what reconciliation
//! needs. An eager member gives everything up before it rejoins; a
//! cooperative one only what it was asked to. Kafka's GroupMetadataManager
//! `classicGroup{Join,Sync,Heartbeat,Leave}ToConsumerGroup`.

use super::migrate::{classic_assignment, classic_metadata};
use super::{ConsumerMember, MemberState};
use crate::classic::join_error;
use crate::embedded;
use crate::records::ClassicMemberRecord;
use crate::timers::TimerKey;
use crate::{uuid_from, Coordinator, Out, RequestId};
use cohort_types::group::{
    GroupResponse, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use cohort_types::{ErrorCode, Millis};

impl Coordinator {
    /// The member a classic request names (Kafka's
    /// `validateConsumerGroupMember` and `throwIfMemberDoesNotUseClassicProtocol`).
    fn classic_member(
        &self,
        gid: &str,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<&ConsumerMember, ErrorCode> {
        let g = &self.consumer_groups[gid];
        let id = match instance {
            None => member_id,
            Some(i) => {
                let mapped = g
                    .static_members
                    .get(i)
                    .ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
                if mapped != member_id {
                    return Err(ErrorCode::FENCED_INSTANCE_ID);
                }
                mapped
            }
        };
        let m = g.members.get(id).ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        if !m.uses_classic_protocol() {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        Ok(m)
    }

    pub(crate) fn classic_session_ms(m: &ConsumerMember) -> i64 {
        m.classic
            .as_ref()
            .map_or(0, |c| c.session_timeout_ms as i64)
    }

    /// JoinGroup for a group that is a consumer group with members.
    pub(crate) fn classic_join_consumer_group(
        &mut self,
        now: Millis,
        id: RequestId,
        r: JoinGroupRequest,
        entropy: u128,
        out: &mut Out,
    ) {
        let gid = r.group_id.clone();
        let unknown = r.member_id.is_empty();
        let member_id = if unknown {
            uuid_from(entropy)
        } else {
            r.member_id.clone()
        };
        if self.config.consumer_migration_policy == crate::MigrationPolicy::Disabled {
            // KAFKA-20640: with migration disabled a classic member may not
            // join a live consumer group.
            return join_error(
                out,
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &r.member_id,
            );
        }
        let g = &self.consumer_groups[&gid];
        if g.members.len() >= self.config.consumer_max_group_size
            && (unknown || !g.members.contains_key(&member_id))
        {
            return join_error(out, id, ErrorCode::GROUP_MAX_SIZE_REACHED, &r.member_id);
        }
        // Kafka's throwIfClassicProtocolIsNotSupported: the consumer protocol,
        // and a client assignor every classic member offers.
        let classic: Vec<&ClassicMemberRecord> = g
            .members
            .values()
            .filter_map(|m| m.classic.as_ref())
            .collect();
        let supported = r.protocols.iter().any(|(name, _)| {
            classic
                .iter()
                .all(|c| c.protocols.iter().any(|(n, _)| n == name))
        });
        if r.protocol_type != "consumer" || !supported {
            return join_error(
                out,
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &r.member_id,
            );
        }
        if r.requires_known_member_id && unknown && r.group_instance_id.is_none() {
            return join_error(out, id, ErrorCode::MEMBER_ID_REQUIRED, &member_id);
        }
        // The member's subscription, from its first protocol (KAFKA-20662:
        // one that does not parse is an inconsistent protocol).
        let Ok(sub) = embedded::parse_subscription(&r.protocols[0].1) else {
            return join_error(
                out,
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &r.member_id,
            );
        };
        // The member: found, created, or a static member taking over its
        // instance id's place (whatever protocol that one spoke).
        let mut replaced = false;
        let before = match &r.group_instance_id {
            None => g
                .members
                .get(&member_id)
                .cloned()
                .unwrap_or_else(|| ConsumerMember::new(&member_id)),
            Some(instance) => match g.static_members.get(instance).cloned() {
                None => g
                    .members
                    .get(&member_id)
                    .cloned()
                    .unwrap_or_else(|| ConsumerMember::new(&member_id)),
                Some(old) if unknown => {
                    replaced = true;
                    self.replace_static_consumer_member(now, &gid, &old, &member_id, out)
                }
                Some(old) if old != member_id => {
                    return join_error(out, id, ErrorCode::FENCED_INSTANCE_ID, &r.member_id)
                }
                Some(_) => g.members[&member_id].clone(),
            },
        };
        let mut member = before.clone();
        member.instance_id = r.group_instance_id.clone();
        if sub.rack.is_some() {
            member.rack_id = sub.rack.clone();
        }
        member.rebalance_timeout_ms = r.rebalance_timeout_ms;
        member.server_assignor = None;
        member.subscribed_topic_names = sub.topics.iter().cloned().collect();
        member.subscribed_topic_regex = None;
        member.client_id = r.client_id.clone();
        member.client_host = r.client_host.clone();
        member.classic = Some(classic_metadata(r.session_timeout_ms, &r.protocols));
        self.apply_member(now, &gid, &before, &member, out);
        // What it owns is what its subscription says (nothing, for an eager
        // member, which gave everything up before it rejoined).
        let owned = Some(self.by_topic_id(&sub.owned));
        self.reconcile_member(now, &gid, &member_id, &owned, true, out);
        let m = &self.consumer_groups[&gid].members[&member_id];
        let resp = JoinGroupResponse {
            error: ErrorCode::NONE,
            generation_id: m.member_epoch,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(r.protocols[0].0.clone()),
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.clone(),
            members: vec![],
        };
        // KAFKA-17317: a classic static member that takes the place of the
        // last consumer-protocol member turns the group back into a classic
        // group, keeping everyone's assignment: no rebalance.
        if replaced && self.may_downgrade(&gid, None) {
            self.downgrade_consumer_group(
                now,
                &gid,
                None,
                "replaced by a classic static member",
                out,
            );
            return out.reply(id, GroupResponse::JoinGroup(resp));
        }
        let (session, rebalance) = (
            r.session_timeout_ms as i64,
            r.rebalance_timeout_ms.max(0) as i64,
        );
        // Joined: it must now sync within its rebalance timeout, and its
        // session runs on its own classic timeout.
        let (group, member) = (gid.clone(), member_id.clone());
        self.timers.cancel(&TimerKey::ConsumerClassicJoin {
            group: group.clone(),
            member: member.clone(),
        });
        self.timers.arm(
            TimerKey::ConsumerSession {
                group: group.clone(),
                member: member.clone(),
            },
            now + session,
        );
        self.timers.arm(
            TimerKey::ConsumerClassicSync { group, member },
            now + rebalance,
        );
        out.reply(id, GroupResponse::JoinGroup(resp));
    }

    pub(crate) fn classic_sync_consumer_group(
        &mut self,
        now: Millis,
        id: RequestId,
        r: SyncGroupRequest,
        out: &mut Out,
    ) {
        let gid = r.group_id.clone();
        let answer = |e| GroupResponse::SyncGroup(SyncGroupResponse::error(e));
        let m = match self.classic_member(&gid, &r.member_id, r.group_instance_id.as_deref()) {
            Ok(m) => m,
            Err(e) => return out.reply(id, answer(e)),
        };
        if r.generation_id != m.member_epoch {
            return out.reply(id, answer(ErrorCode::ILLEGAL_GENERATION));
        }
        let first = m.classic.as_ref().and_then(|c| c.protocols.first());
        let type_differs = r.protocol_type.as_deref().is_some_and(|t| t != "consumer");
        let name_differs = r
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != first.map(|(n, _)| n));
        if type_differs || name_differs {
            return out.reply(id, answer(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        }
        let g = &self.consumer_groups[&gid];
        let member = m.member_id.clone();
        if g.epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            let rebalance = m.rebalance_timeout_ms.max(0) as i64;
            self.arm_classic_join_timer(now, &gid, &member, rebalance);
            return out.reply(id, answer(ErrorCode::REBALANCE_IN_PROGRESS));
        }
        // Its assignment, in the subscription version it speaks.
        let classic = m.classic.as_ref().expect("a classic member");
        let assignment = classic_assignment(classic, &self.by_topic_name(&m.assigned));
        let session = Self::classic_session_ms(m);
        self.timers.cancel(&TimerKey::ConsumerClassicSync {
            group: gid.clone(),
            member: member.clone(),
        });
        self.timers.arm(
            TimerKey::ConsumerSession { group: gid, member },
            now + session,
        );
        out.reply(
            id,
            GroupResponse::SyncGroup(SyncGroupResponse {
                error: ErrorCode::NONE,
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                assignment: assignment.into(),
            }),
        );
    }

    /// A classic member's Heartbeat: it hears REBALANCE_IN_PROGRESS whenever it
    /// must rejoin to move on.
    pub(crate) fn classic_heartbeat_consumer_group(
        &mut self,
        now: Millis,
        r: &HeartbeatRequest,
    ) -> ErrorCode {
        let gid = r.group_id.as_str();
        let m = match self.classic_member(gid, &r.member_id, r.group_instance_id.as_deref()) {
            Ok(m) => m,
            Err(e) => return e,
        };
        if r.generation_id != m.member_epoch {
            return ErrorCode::ILLEGAL_GENERATION;
        }
        let rejoin = self.classic_must_rejoin(gid, m);
        let (member, session, rebalance) = (
            m.member_id.clone(),
            Self::classic_session_ms(m),
            m.rebalance_timeout_ms.max(0) as i64,
        );
        self.timers.arm(
            TimerKey::ConsumerSession {
                group: gid.to_string(),
                member: member.clone(),
            },
            now + session,
        );
        if rejoin {
            self.arm_classic_join_timer(now, gid, &member, rebalance);
            return ErrorCode::REBALANCE_IN_PROGRESS;
        }
        ErrorCode::NONE
    }

    /// Whether a classic member must rejoin to move on: it is behind the
    /// group epoch, must revoke, or may pick up partitions others released.
    pub(crate) fn classic_must_rejoin(&self, gid: &str, m: &ConsumerMember) -> bool {
        m.member_epoch < self.consumer_groups[gid].epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions
                && !self.waiting_on_unreleased(gid, &m.member_id))
    }

    /// Kafka's `waitingOnUnreleasedPartition`: a partition of its target it
    /// does not have yet is still held by another member.
    fn waiting_on_unreleased(&self, gid: &str, member_id: &str) -> bool {
        let g = &self.consumer_groups[gid];
        let m = &g.members[member_id];
        let Some(target) = g.targets.get(member_id) else {
            return false;
        };
        target.iter().any(|(t, ps)| {
            ps.iter().any(|p| {
                !m.assigned.get(t).is_some_and(|a| a.contains(p))
                    && g.owners.contains_key(&(*t, *p))
            })
        })
    }

    /// A member told to rejoin has its rebalance timeout to do so.
    fn arm_classic_join_timer(&mut self, now: Millis, gid: &str, member: &str, rebalance: i64) {
        let key = TimerKey::ConsumerClassicJoin {
            group: gid.to_string(),
            member: member.to_string(),
        };
        if !self.timers.is_armed(&key) {
            self.timers.arm(key, now + rebalance);
        }
    }

    /// The rejoin or the SyncGroup never came.
    pub(crate) fn classic_member_timed_out(
        &mut self,
        now: Millis,
        gid: &str,
        member: &str,
        what: &str,
        out: &mut Out,
    ) {
        let present = self
            .consumer_groups
            .get(gid)
            .and_then(|g| g.members.get(member))
            .is_some_and(|m| m.uses_classic_protocol());
        if present {
            self.fence_member(now, gid, member, what, out);
        }
    }

    /// LeaveGroup for a consumer group: each named classic member leaves as a
    /// consumer-protocol member would.
    pub(crate) fn classic_leave_consumer_group(
        &mut self,
        now: Millis,
        r: LeaveGroupRequest,
        out: &mut Out,
    ) -> LeaveGroupResponse {
        let gid = r.group_id.clone();
        let mut members = Vec::new();
        for (member_id, instance) in r.members {
            if !self.consumer_groups.contains_key(&gid) {
                // An earlier leave in this request turned it back into a
                // classic group: that group answers for the rest.
                let rest = LeaveGroupRequest {
                    group_id: gid.clone(),
                    members: vec![(member_id, instance)],
                };
                members.extend(self.leave_group(now, rest, out).members);
                continue;
            }
            let g = &self.consumer_groups[&gid];
            let found = match &instance {
                None => self
                    .classic_member(&gid, &member_id, None)
                    .map(|m| m.member_id.clone()),
                Some(i) => match g.static_members.get(i) {
                    None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
                    // Admin removal by instance id names no member id.
                    Some(mapped) if !member_id.is_empty() && *mapped != member_id => {
                        Err(ErrorCode::FENCED_INSTANCE_ID)
                    }
                    Some(mapped) if !g.members[mapped].uses_classic_protocol() => {
                        Err(ErrorCode::UNKNOWN_MEMBER_ID)
                    }
                    Some(mapped) => Ok(mapped.clone()),
                },
            };
            match found {
                Ok(id) => {
                    self.fence_member(now, &gid, &id, "left the group", out);
                    members.push((id, instance, ErrorCode::NONE));
                }
                Err(e) => members.push((member_id, instance, e)),
            }
        }
        LeaveGroupResponse {
            error: ErrorCode::NONE,
            members,
        }
    }
}
