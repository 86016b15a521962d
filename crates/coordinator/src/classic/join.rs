//! JoinGroup, the join barrier, the initial rebalance delay, and join-phase
//! completion (generation bump, protocol vote, leader, answers).

use super::{AwaitingJoin, ClassicGroup, GroupState, Member};
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{uuid_from, Coordinator, Event, Out, RequestId};
use cohort_types::group::{GroupResponse, JoinGroupRequest, JoinGroupResponse, JoinedMember};
use cohort_types::{ErrorCode, Millis};

pub(crate) fn join_error(out: &mut Out, id: RequestId, error: ErrorCode, member_id: &str) {
    out.reply(
        id,
        GroupResponse::JoinGroup(JoinGroupResponse::error(error, member_id)),
    );
}

impl Coordinator {
    pub(crate) fn join_group(
        &mut self,
        now: Millis,
        id: RequestId,
        r: JoinGroupRequest,
        entropy: u128,
        out: &mut Out,
    ) {
        if r.group_id.is_empty() {
            return join_error(out, id, ErrorCode::INVALID_GROUP_ID, &r.member_id);
        }
        if r.session_timeout_ms < self.config.min_session_timeout_ms
            || r.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return join_error(out, id, ErrorCode::INVALID_SESSION_TIMEOUT, &r.member_id);
        }
        if let Some(cg) = self.consumer_groups.get(&r.group_id) {
            if !cg.members.is_empty() {
                return self.classic_join_consumer_group(now, id, r, entropy, out);
            }
            if !r.member_id.is_empty() {
                return join_error(out, id, ErrorCode::UNKNOWN_MEMBER_ID, &r.member_id);
            }
            // An empty consumer group gives way to a classic one (Kafka's
            // maybeDeleteEmptyConsumerGroup); its offsets stay.
            self.timers.cancel_group(&r.group_id);
            self.emit(
                out,
                Record::ConsumerGroupConverted {
                    group_id: r.group_id.clone(),
                },
            );
        }
        if !self.groups.contains_key(&r.group_id) {
            if !r.member_id.is_empty() {
                return join_error(out, id, ErrorCode::UNKNOWN_MEMBER_ID, &r.member_id);
            }
            // The group exists from its first JoinGroup on, even if nothing else
            // happens.
            let g = ClassicGroup::new(&r.group_id, now);
            let rec = g.to_record(false);
            self.groups.insert(r.group_id.clone(), g);
            self.emit(out, Record::Group(rec));
        }
        let g = self.groups.get(&r.group_id).expect("just ensured");
        if g.is(GroupState::Dead) {
            return join_error(out, id, ErrorCode::COORDINATOR_NOT_AVAILABLE, &r.member_id);
        }
        if !self.accepts_joining_member(g, &r.member_id) {
            // Over group.max.size: a known member is removed, as in Kafka.
            let member_id = r.member_id.clone();
            if g.members.contains_key(&member_id) {
                let g = self.groups.get_mut(&r.group_id).unwrap();
                let removed = g.remove_member(&member_id);
                self.timers.cancel(&TimerKey::Heartbeat {
                    group: r.group_id.clone(),
                    member: member_id.clone(),
                });
                if let Some(AwaitingJoin { request, .. }) = removed.and_then(|m| m.awaiting_join) {
                    if request != id {
                        join_error(out, request, ErrorCode::GROUP_MAX_SIZE_REACHED, &member_id);
                    }
                }
                self.maybe_complete_join(now, &r.group_id, out);
            }
            return join_error(out, id, ErrorCode::GROUP_MAX_SIZE_REACHED, &member_id);
        }
        if !g.supports(&r.protocol_type, &r.protocols) {
            return join_error(
                out,
                id,
                ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
                &r.member_id,
            );
        }
        if r.member_id.is_empty() {
            self.join_unknown_member(now, id, r, entropy, out)
        } else {
            self.join_known_member(now, id, r, out)
        }
    }

    /// Kafka's acceptJoiningMember (group.max.size).
    fn accepts_joining_member(&self, g: &ClassicGroup, member_id: &str) -> bool {
        let max = self.config.max_group_size;
        match g.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                g.members
                    .get(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || g.awaiting_join_count() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                g.members.contains_key(member_id) || g.members.len() < max
            }
        }
    }

    fn new_member(r: &JoinGroupRequest, member_id: String, request: RequestId) -> Member {
        Member {
            member_id,
            group_instance_id: r.group_instance_id.clone(),
            client_id: r.client_id.clone(),
            client_host: r.client_host.clone(),
            session_timeout_ms: r.session_timeout_ms,
            rebalance_timeout_ms: r.rebalance_timeout_ms,
            protocol_type: r.protocol_type.clone(),
            protocols: r.protocols.clone(),
            assignment: Default::default(),
            awaiting_join: Some(AwaitingJoin {
                request,
                supports_skip_assignment: r.supports_skip_assignment,
            }),
            awaiting_sync: None,
            is_new: true,
            told_generation: None,
            carried: false,
        }
    }

    fn join_unknown_member(
        &mut self,
        now: Millis,
        id: RequestId,
        r: JoinGroupRequest,
        entropy: u128,
        out: &mut Out,
    ) {
        let prefix = r.group_instance_id.as_deref().unwrap_or(&r.client_id);
        let member_id = format!("{prefix}-{}", uuid_from(entropy));
        let g = self.groups.get_mut(&r.group_id).unwrap();
        if let Some(instance) = &r.group_instance_id {
            if let Some(old) = g.static_members.get(instance).cloned() {
                return self.replace_static_member(now, id, r, old, member_id, out);
            }
            let m = Self::new_member(&r, member_id, id);
            return self.add_member_then_rebalance(now, &r.group_id, m, out);
        }
        if r.requires_known_member_id {
            // KIP-394: mint the id, answer at once, and wait for the member to come
            // back with it. This first round trip does not start a rebalance.
            g.pending_join.insert(member_id.clone());
            self.timers.arm(
                TimerKey::PendingMember {
                    group: r.group_id.clone(),
                    member: member_id.clone(),
                },
                now + r.session_timeout_ms as i64,
            );
            return join_error(out, id, ErrorCode::MEMBER_ID_REQUIRED, &member_id);
        }
        let m = Self::new_member(&r, member_id, id);
        self.add_member_then_rebalance(now, &r.group_id, m, out)
    }

    fn join_known_member(
        &mut self,
        now: Millis,
        id: RequestId,
        r: JoinGroupRequest,
        out: &mut Out,
    ) {
        let g = self.groups.get_mut(&r.group_id).unwrap();
        if g.pending_join.remove(&r.member_id) {
            self.timers.cancel(&TimerKey::PendingMember {
                group: r.group_id.clone(),
                member: r.member_id.clone(),
            });
            let m = Self::new_member(&r, r.member_id.clone(), id);
            return self.add_member_then_rebalance(now, &r.group_id, m, out);
        }
        if let Err(e) = g.validate_member(&r.member_id, r.group_instance_id.as_deref()) {
            return join_error(out, id, e, &r.member_id);
        }
        let same = g.members[&r.member_id].protocols == r.protocols;
        let is_leader = g.leader.as_deref() == Some(r.member_id.as_str());
        match g.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance(now, id, &r, "member rejoined", out)
            }
            GroupState::CompletingRebalance if same => {
                // It lost its JoinGroup answer: send the current one again.
                let resp = self.join_response(&r.group_id, &r.member_id, is_leader, false);
                out.reply(id, GroupResponse::JoinGroup(resp));
            }
            GroupState::CompletingRebalance => {
                self.update_member_then_rebalance(now, id, &r, "member changed its protocols", out)
            }
            GroupState::Stable if is_leader || !same => {
                let why = if is_leader {
                    "leader rejoined"
                } else {
                    "member changed its protocols"
                };
                self.update_member_then_rebalance(now, id, &r, why, out)
            }
            GroupState::Stable => {
                let resp = self.join_response(&r.group_id, &r.member_id, false, false);
                out.reply(id, GroupResponse::JoinGroup(resp));
            }
            GroupState::Empty | GroupState::Dead => {
                join_error(out, id, ErrorCode::UNKNOWN_MEMBER_ID, &r.member_id)
            }
        }
    }

    /// The answer for the current generation, to `member_id`.
    fn join_response(
        &self,
        group_id: &str,
        member_id: &str,
        with_members: bool,
        skip_assignment: bool,
    ) -> JoinGroupResponse {
        let g = &self.groups[group_id];
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let members = if with_members {
            g.join_order
                .iter()
                .filter_map(|id| g.members.get(id))
                .map(|m| JoinedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            vec![]
        };
        JoinGroupResponse {
            error: ErrorCode::NONE,
            generation_id: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            leader: g.leader.clone().unwrap_or_default(),
            skip_assignment,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn add_member_then_rebalance(
        &mut self,
        now: Millis,
        group_id: &str,
        member: Member,
        out: &mut Out,
    ) {
        let g = self.groups.get_mut(group_id).unwrap();
        if g.is(GroupState::PreparingRebalance) && g.previous_state == GroupState::Empty {
            g.new_member_added = true;
            self.arm_initial_quiet(now, group_id);
        }
        let g = self.groups.get_mut(group_id).unwrap();
        let member_id = member.member_id.clone();
        g.add_member(member);
        // It cannot heartbeat while its join is parked: give it the new-member
        // join timeout rather than its session timeout.
        self.timers.arm(
            TimerKey::Heartbeat {
                group: group_id.to_string(),
                member: member_id,
            },
            now + self.config.new_member_join_timeout_ms,
        );
        self.maybe_prepare_rebalance_or_complete_join(now, group_id, "new member joined", out);
    }

    /// Stores the member's new protocols and timeouts and parks its join.
    fn update_member(&mut self, id: RequestId, r: &JoinGroupRequest, out: &mut Out) {
        let g = self.groups.get_mut(&r.group_id).unwrap();
        let m = g.members.get_mut(&r.member_id).unwrap();
        m.protocols = r.protocols.clone();
        m.session_timeout_ms = r.session_timeout_ms;
        m.rebalance_timeout_ms = r.rebalance_timeout_ms;
        let previous = m.awaiting_join.replace(AwaitingJoin {
            request: id,
            supports_skip_assignment: r.supports_skip_assignment,
        });
        // A retried join supersedes the parked one, which must still be answered.
        if let Some(prev) = previous.filter(|p| p.request != id) {
            join_error(
                out,
                prev.request,
                ErrorCode::REBALANCE_IN_PROGRESS,
                &r.member_id,
            );
        }
    }

    fn update_member_then_rebalance(
        &mut self,
        now: Millis,
        id: RequestId,
        r: &JoinGroupRequest,
        reason: &str,
        out: &mut Out,
    ) {
        self.update_member(id, r, out);
        self.maybe_prepare_rebalance_or_complete_join(now, &r.group_id, reason, out);
    }

    /// KIP-345: a static member restarting under a known instance id takes over
    /// the old member's place and assignment; in Stable, without a rebalance.
    fn replace_static_member(
        &mut self,
        now: Millis,
        id: RequestId,
        r: JoinGroupRequest,
        old_id: String,
        new_id: String,
        out: &mut Out,
    ) {
        let group_id = r.group_id.clone();
        let g = self.groups.get_mut(&group_id).unwrap();
        let leader_before = g.leader.clone().unwrap_or_default();
        let was_leader = g.leader.as_deref() == Some(old_id.as_str());
        let position = g.join_order.iter().position(|m| *m == old_id);
        let mut old = g
            .remove_member(&old_id)
            .expect("static mapping points at a member");
        self.timers.cancel(&TimerKey::Heartbeat {
            group: group_id.clone(),
            member: old_id.clone(),
        });
        if let Some(j) = old.awaiting_join.take() {
            join_error(out, j.request, ErrorCode::FENCED_INSTANCE_ID, &old_id);
        }
        if let Some(s) = old.awaiting_sync.take() {
            out.reply(
                s.request,
                GroupResponse::SyncGroup(cohort_types::group::SyncGroupResponse::error(
                    ErrorCode::FENCED_INSTANCE_ID,
                )),
            );
        }
        let g = self.groups.get_mut(&group_id).unwrap();
        let mut m = old;
        m.member_id = new_id.clone();
        m.is_new = false;
        g.add_member(m);
        // Keep its place in join order, and its leadership.
        g.join_order.retain(|x| *x != new_id);
        g.join_order.insert(
            position
                .unwrap_or(g.join_order.len())
                .min(g.join_order.len()),
            new_id.clone(),
        );
        if was_leader {
            g.leader = Some(new_id.clone());
        }
        self.timers.arm(
            TimerKey::Heartbeat {
                group: group_id.clone(),
                member: new_id.clone(),
            },
            now + r.session_timeout_ms as i64,
        );
        // A held SyncGroup of the replaced member hears it was fenced.
        self.release_member_sync(&group_id, &old_id, out);

        let g = self.groups.get_mut(&group_id).unwrap();
        let state = g.state;
        if state == GroupState::Stable {
            // Would the vote pick another protocol with the new metadata? Only then
            // is a rebalance needed; the metadata bytes themselves are not compared.
            let mut probe = g.clone();
            let pm = probe.members.get_mut(&new_id).unwrap();
            pm.protocols = r.protocols.clone();
            if probe.select_protocol() == g.protocol_name {
                let m = g.members.get_mut(&new_id).unwrap();
                m.protocols = r.protocols.clone();
                m.session_timeout_ms = r.session_timeout_ms;
                m.rebalance_timeout_ms = r.rebalance_timeout_ms;
                let rec = g.to_record(true);
                self.emit(out, Record::Group(rec));
                let skip = was_leader && r.supports_skip_assignment;
                let mut resp = self.join_response(&group_id, &new_id, skip, skip);
                if !skip {
                    // Older clients see the pre-replacement leader id, so a
                    // rejoining leader acts as a follower and does not reassign.
                    resp.leader = leader_before;
                }
                out.reply(id, GroupResponse::JoinGroup(resp));
                return;
            }
        }
        let mut rr = r.clone();
        rr.member_id = new_id;
        match state {
            GroupState::PreparingRebalance => {
                self.update_member(id, &rr, out);
                self.maybe_complete_join(now, &group_id, out);
            }
            _ => self.update_member_then_rebalance(
                now,
                id,
                &rr,
                "static member rejoined with new metadata",
                out,
            ),
        }
    }

    pub(crate) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        now: Millis,
        group_id: &str,
        reason: &str,
        out: &mut Out,
    ) {
        let state = self.groups[group_id].state;
        match state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(now, group_id, reason, out)
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now, group_id, out),
            GroupState::Dead => {}
        }
    }

    pub(crate) fn prepare_rebalance(
        &mut self,
        now: Millis,
        group_id: &str,
        reason: &str,
        out: &mut Out,
    ) {
        let g = self.groups.get_mut(group_id).unwrap();
        if g.is(GroupState::CompletingRebalance) {
            // Assignments computed for the old generation are void.
            let mut parked = Vec::new();
            for m in g.members.values_mut() {
                m.assignment = Default::default();
                if let Some(s) = m.awaiting_sync.take() {
                    parked.push(s.request);
                }
            }
            for s in parked {
                out.reply(
                    s,
                    GroupResponse::SyncGroup(cohort_types::group::SyncGroupResponse::error(
                        ErrorCode::REBALANCE_IN_PROGRESS,
                    )),
                );
            }
        }
        g.pending_sync.clear();
        g.follow_up_hold.clear();
        let initial = g.is(GroupState::Empty);
        g.transition(GroupState::PreparingRebalance, now);
        // Members whose SyncGroup answers are held are carried into this
        // round; those whose heartbeats are held hear of it now.
        self.carry_held_syncs(group_id);
        self.release_group(now, group_id, out);
        let g = self.groups.get_mut(group_id).unwrap();
        let generation = g.generation;
        let timeout = g.rebalance_timeout_ms();
        self.timers.cancel(&TimerKey::Sync {
            group: group_id.to_string(),
        });
        out.event(Event::RebalanceStarted {
            group: group_id.to_string(),
            generation,
            reason: reason.to_string(),
        });
        if initial {
            let delay = self.config.initial_rebalance_delay_ms as i64;
            let g = self.groups.get_mut(group_id).unwrap();
            g.initial_delay = Some((delay, (timeout - delay).max(0)));
            g.new_member_added = false;
            self.timers.arm(
                TimerKey::InitialDelay {
                    group: group_id.to_string(),
                },
                now + delay,
            );
            self.arm_initial_quiet(now, group_id);
        } else {
            self.timers.arm(
                TimerKey::Join {
                    group: group_id.to_string(),
                },
                now + timeout,
            );
            self.maybe_complete_join(now, group_id, out);
        }
    }

    pub(crate) fn maybe_complete_join(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        // The first rebalance of an empty group ends only by its delay timer.
        if g.is(GroupState::PreparingRebalance)
            && g.all_joined()
            && g.previous_state != GroupState::Empty
        {
            self.complete_join(now, group_id, out);
        }
    }

    pub(crate) fn initial_delay_elapsed(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let Some(g) = self.groups.get_mut(group_id) else {
            return;
        };
        if !g.is(GroupState::PreparingRebalance) {
            return;
        }
        let (delay, remaining) = g.initial_delay.unwrap_or((0, 0));
        if g.new_member_added && remaining != 0 {
            g.new_member_added = false;
            let next = (self.config.initial_rebalance_delay_ms as i64).min(remaining);
            g.initial_delay = Some((next, (remaining - delay).max(0)));
            self.timers.arm(
                TimerKey::InitialDelay {
                    group: group_id.to_string(),
                },
                now + next,
            );
        } else {
            self.complete_join(now, group_id, out);
        }
    }

    /// With `initial_rebalance_quiet_ms` set, a new group's first rebalance
    /// also ends once that long passes without another member joining: members
    /// that start together still join in one rebalance, without waiting out
    /// the whole delay (3 s, extended by every join) when the last of them has
    /// long arrived.
    fn arm_initial_quiet(&mut self, now: Millis, group_id: &str) {
        let quiet = self.config.initial_rebalance_quiet_ms;
        if quiet > 0 {
            let key = TimerKey::InitialQuiet {
                group: group_id.to_string(),
            };
            self.timers.arm(key, now + quiet);
        }
    }

    pub(crate) fn initial_quiet_elapsed(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        let quiet_initial = self
            .groups
            .get(group_id)
            .is_some_and(|g| g.is(GroupState::PreparingRebalance) && g.initial_delay.is_some());
        if quiet_initial {
            self.complete_join(now, group_id, out);
        }
    }

    pub(crate) fn join_timeout(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        if self
            .groups
            .get(group_id)
            .is_some_and(|g| g.is(GroupState::PreparingRebalance))
        {
            self.complete_join(now, group_id, out);
        }
    }

    /// Ends the join phase with whoever joined.
    pub(crate) fn complete_join(&mut self, now: Millis, group_id: &str, out: &mut Out) {
        self.timers.cancel(&TimerKey::Join {
            group: group_id.to_string(),
        });
        self.timers.cancel(&TimerKey::InitialDelay {
            group: group_id.to_string(),
        });
        self.timers.cancel(&TimerKey::InitialQuiet {
            group: group_id.to_string(),
        });
        let g = self.groups.get_mut(group_id).unwrap();
        g.initial_delay = None;
        // Dynamic members that did not rejoin are dropped; static ones keep their
        // place with the metadata they last sent.
        let gone: Vec<String> = g
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && !m.carried && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for member in gone {
            g.remove_member(&member);
            self.timers.cancel(&TimerKey::Heartbeat {
                group: group_id.to_string(),
                member: member.clone(),
            });
            out.event(Event::MemberRemoved {
                group: group_id.to_string(),
                member,
                reason: "did not rejoin in time".into(),
            });
        }
        let g = self.groups.get_mut(group_id).unwrap();
        if g.is(GroupState::Dead) {
            return;
        }
        let leader_joined = g
            .leader
            .as_ref()
            .and_then(|l| g.members.get(l))
            .is_some_and(|m| m.awaiting_join.is_some());
        if !leader_joined {
            let next = g
                .join_order
                .iter()
                .find(|id| g.members[*id].awaiting_join.is_some())
                .cloned();
            match next {
                Some(l) => g.leader = Some(l),
                None if !g.members.is_empty() => {
                    // Nobody is waiting: wait again until sessions expire the
                    // silent. Carried members cannot lead (they have no
                    // JoinGroup to answer): they must rejoin themselves.
                    self.uncarry_group(group_id, out);
                    let g = self.groups.get_mut(group_id).unwrap();
                    let timeout = g.rebalance_timeout_ms();
                    self.timers.arm(
                        TimerKey::Join {
                            group: group_id.to_string(),
                        },
                        now + timeout,
                    );
                    return;
                }
                None => g.leader = None,
            }
        }
        let told = g.generation;
        g.generation += 1;
        if g.members.is_empty() {
            g.protocol_name = None;
            g.transition(GroupState::Empty, now);
        } else {
            g.protocol_name = g.select_protocol();
            g.transition(GroupState::CompletingRebalance, now);
        }
        g.pending_sync.clear();
        let generation = g.generation;
        let members = g.members.len();
        // Persisted at join completion too, so a generation handed out is never
        // handed out again after a restart.
        let rec = g.to_record(false);
        self.emit(out, Record::Group(rec));
        out.event(Event::JoinCompleted {
            group: group_id.to_string(),
            generation,
            members,
        });

        let g = &self.groups[group_id];
        let order = g.join_order.clone();
        let leader = g.leader.clone();
        for member_id in order {
            let g = self.groups.get_mut(group_id).unwrap();
            let m = g.members.get_mut(&member_id).unwrap();
            let parked = m.awaiting_join.take();
            m.is_new = false;
            let session = m.session_timeout_ms as i64;
            if m.carried {
                // Still speaking for the generation it was last told; its
                // held SyncGroup gets this round's assignment (it is parked
                // already: no SyncGroup is pending from it).
                m.carried = false;
                m.told_generation = m.told_generation.or(Some(told));
                let sync = self.take_carried_sync(group_id, &member_id);
                let g = self.groups.get_mut(group_id).unwrap();
                g.members.get_mut(&member_id).unwrap().awaiting_sync = sync;
                continue;
            }
            m.told_generation = None;
            g.pending_sync.insert(member_id.clone());
            if let Some(p) = parked {
                let is_leader = leader.as_deref() == Some(member_id.as_str());
                let resp = self.join_response(group_id, &member_id, is_leader, false);
                out.reply(p.request, GroupResponse::JoinGroup(resp));
                self.timers.arm(
                    TimerKey::Heartbeat {
                        group: group_id.to_string(),
                        member: member_id,
                    },
                    now + session,
                );
            }
        }
        let g = &self.groups[group_id];
        if !g.members.is_empty() {
            let timeout = g.rebalance_timeout_ms();
            self.timers.arm(
                TimerKey::Sync {
                    group: group_id.to_string(),
                },
                now + timeout,
            );
        }
    }
}
