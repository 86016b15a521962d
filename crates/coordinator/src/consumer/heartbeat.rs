//! ConsumerGroupHeartbeat, step by step as Kafka's GroupMetadataManager does it:
//! validate, find or create the group and member, apply the member's changes,
//! bump the group epoch when the assignment inputs changed, compute a new
//! target if the epoch is ahead of it, reconcile this member, re-arm timers,
//! answer. Plus leaving, fencing, and the timers' effects.

use super::{compile_regex, to_wire, ConsumerGroup, ConsumerMember, MemberState};
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{uuid_from, Coordinator, Event, Out};
use cohort_assign::server::{Assignment, GroupSpec, MemberSpec};
use cohort_types::group::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicIdPartitions,
};
use cohort_types::{ErrorCode, Millis, TopicId};
use std::collections::{BTreeMap, BTreeSet};

type Fail = (ErrorCode, Option<String>);

fn invalid(msg: &str) -> Fail {
    (ErrorCode::INVALID_REQUEST, Some(msg.to_string()))
}

fn owned_to_assignment(owned: &Option<TopicIdPartitions>) -> Option<Assignment> {
    owned.as_ref().map(|tps| {
        tps.iter()
            .map(|(t, ps)| (*t, ps.iter().copied().collect()))
            .collect()
    })
}

fn subset(a: &Assignment, of: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.iter().all(|p| of.get(t).is_some_and(|s| s.contains(p))))
}

impl Coordinator {
    /// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`, check for check
    /// and message for message: these run before the group is looked at, so
    /// they answer at once and write nothing.
    fn validate_heartbeat(&self, r: &ConsumerGroupHeartbeatRequest) -> Result<(), Fail> {
        // Kafka's `throwIfEmptyString`: a present value that trims to nothing.
        let blank = |s: Option<&str>| s.is_some_and(|s| s.trim().is_empty());
        let member_id_required =
            !r.server_generates_member_id || r.member_epoch > 0 || r.member_epoch == -1;
        if member_id_required && blank(Some(&r.member_id)) {
            return Err(invalid("MemberId can't be empty."));
        }
        if blank(Some(&r.group_id)) {
            return Err(invalid("GroupId can't be empty."));
        }
        if blank(r.instance_id.as_deref()) {
            return Err(invalid("InstanceId can't be empty."));
        }
        if blank(r.rack_id.as_deref()) {
            return Err(invalid("RackId can't be empty."));
        }
        match r.member_epoch {
            0 => {
                if r.rebalance_timeout_ms == -1 {
                    return Err(invalid(
                        "RebalanceTimeoutMs must be provided in first request.",
                    ));
                }
                if !r.owned.as_ref().is_some_and(|o| o.is_empty()) {
                    return Err(invalid("TopicPartitions must be empty when (re-)joining."));
                }
                if r.subscribed_topic_names.is_none() && r.subscribed_topic_regex.is_none() {
                    return Err(invalid("Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."));
                }
            }
            -2 if r.instance_id.is_none() => return Err(invalid("InstanceId can't be null.")),
            e if e < -2 => return Err(invalid("MemberEpoch is invalid.")),
            _ => {}
        }
        if let Some(a) = &r.server_assignor {
            if !self.config.consumer_assignors.iter().any(|n| n == a) {
                let supported = self.config.consumer_assignors.join(", ");
                return Err((
                    ErrorCode::UNSUPPORTED_ASSIGNOR,
                    Some(format!(
                        "ServerAssignor {a} is not supported. Supported assignors: {supported}."
                    )),
                ));
            }
        }
        if let Some(re) = r
            .subscribed_topic_regex
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            compile_regex(re).map_err(|e| (ErrorCode::INVALID_REGULAR_EXPRESSION, Some(e)))?;
        }
        Ok(())
    }

    pub(crate) fn consumer_heartbeat(
        &mut self,
        now: Millis,
        r: ConsumerGroupHeartbeatRequest,
        entropy: u128,
        out: &mut Out,
    ) -> ConsumerGroupHeartbeatResponse {
        if let Err((e, msg)) = self.validate_heartbeat(&r) {
            return ConsumerGroupHeartbeatResponse::error(e, msg);
        }
        if r.member_epoch < 0 {
            return match self.consumer_leave(now, &r, out) {
                Ok(resp) => resp,
                Err((e, msg)) => ConsumerGroupHeartbeatResponse::error(e, msg),
            };
        }
        match self.consumer_join_or_heartbeat(now, r, entropy, out) {
            Ok(resp) => resp,
            Err((e, msg)) => ConsumerGroupHeartbeatResponse::error(e, msg),
        }
    }

    fn consumer_join_or_heartbeat(
        &mut self,
        now: Millis,
        r: ConsumerGroupHeartbeatRequest,
        entropy: u128,
        out: &mut Out,
    ) -> Result<ConsumerGroupHeartbeatResponse, Fail> {
        let gid = r.group_id.clone();
        // 1. The group: a consumer group, or a classic one to convert (an
        // empty one always; a live one as the migration policy allows).
        if let Some(classic) = self.groups.get(&gid) {
            let empty = classic.members.is_empty() && classic.is(crate::classic::GroupState::Empty);
            if r.member_epoch != 0 {
                return Err((
                    ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(format!("Group {gid} is not a consumer group.")),
                ));
            }
            if empty {
                self.timers.cancel_group(&gid);
                self.emit(
                    out,
                    Record::ClassicGroupConverted {
                        group_id: gid.clone(),
                    },
                );
            } else if let Err((e, why)) = self.upgrade_classic_group(now, &gid, out) {
                out.event(Event::ConversionRefused {
                    group: gid.clone(),
                    reason: why.clone().unwrap_or_default(),
                });
                return Err((e, why));
            }
        }
        let new_group = !self.consumer_groups.contains_key(&gid);
        if new_group && r.member_epoch != 0 {
            return Err((
                ErrorCode::GROUP_ID_NOT_FOUND,
                Some(format!("Group {gid} not found.")),
            ));
        }
        if new_group {
            let mut g = ConsumerGroup::new(&gid);
            g.state_timestamp = now;
            self.consumer_groups.insert(gid.clone(), g);
        }
        let member_id = if r.member_id.is_empty() {
            uuid_from(entropy)
        } else {
            r.member_id.clone()
        };
        // 2. Capacity.
        let g = &self.consumer_groups[&gid];
        if g.members.len() >= self.config.consumer_max_group_size
            && !g.members.contains_key(&member_id)
        {
            return Err((
                ErrorCode::GROUP_MAX_SIZE_REACHED,
                Some(format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.consumer_max_group_size
                )),
            ));
        }
        // 3. The member.
        let owned = owned_to_assignment(&r.owned);
        let mut member = self.find_member(now, &gid, &member_id, &r, &owned, out)?;
        let before = member.clone();
        if let Some(i) = &r.instance_id {
            member.instance_id = Some(i.clone());
        }
        if let Some(rack) = &r.rack_id {
            member.rack_id = Some(rack.clone());
        }
        if r.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = r.rebalance_timeout_ms;
        }
        if let Some(a) = &r.server_assignor {
            member.server_assignor = Some(a.clone());
        }
        if let Some(names) = &r.subscribed_topic_names {
            member.subscribed_topic_names = names.iter().cloned().collect();
        }
        if let Some(re) = &r.subscribed_topic_regex {
            member.subscribed_topic_regex = (!re.is_empty()).then(|| re.clone());
        }
        member.client_id = r.client_id.clone();
        member.client_host = r.client_host.clone();
        // A classic member that comes back speaking the consumer protocol
        // (same member id, or a static member's instance id) is one now.
        member.classic = None;
        self.apply_member(now, &gid, &before, &member, out);
        // 6. Reconcile this member.
        let assigned_before = self.consumer_groups[&gid].members[&member_id]
            .assigned
            .clone();
        let effective_owned = if r.member_epoch == 0 {
            Some(Assignment::new())
        } else {
            owned.clone()
        };
        self.reconcile_member(
            now,
            &gid,
            &member_id,
            &effective_owned,
            r.member_epoch == 0,
            out,
        );
        // 7. Session timer.
        self.timers.arm(
            TimerKey::ConsumerSession {
                group: gid.clone(),
                member: member_id.clone(),
            },
            now + self.config.consumer_session_timeout_ms as i64,
        );
        // 8. Answer.
        let g = &self.consumer_groups[&gid];
        let m = &g.members[&member_id];
        let full = r.rebalance_timeout_ms != -1
            && (r.subscribed_topic_names.is_some() || r.subscribed_topic_regex.is_some())
            && r.owned.is_some();
        let send_assignment = r.member_epoch == 0 || full || m.assigned != assigned_before;
        Ok(ConsumerGroupHeartbeatResponse {
            error: ErrorCode::NONE,
            error_message: None,
            member_id: Some(member_id.clone()),
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: self.heartbeat_interval(g, m),
            assignment: send_assignment.then(|| {
                to_wire(&m.assigned)
                    .into_iter()
                    .map(|(t, ps)| (TopicId(t), ps))
                    .collect()
            }),
        })
    }

    /// Steps 3-5 of a heartbeat, shared with a classic member's JoinGroup:
    /// record the member's changes, bump the group epoch when the inputs of
    /// the assignment changed, and compute a new target when the epoch is
    /// ahead of it.
    pub(crate) fn apply_member(
        &mut self,
        now: Millis,
        gid: &str,
        before: &ConsumerMember,
        member: &ConsumerMember,
        out: &mut Out,
    ) {
        let gid = gid.to_string();
        let member_id = member.member_id.clone();
        // A new regex changes the assignment only once it is resolved (below,
        // asynchronously); one the group already resolved, or dropping one,
        // changes it now.
        let regex_changed = member.subscribed_topic_regex != before.subscribed_topic_regex;
        let regex_effective = match &member.subscribed_topic_regex {
            None => true,
            Some(re) => self.consumer_groups[&gid].resolved_regexes.contains_key(re),
        };
        let subscription_changed = member.subscribed_topic_names != before.subscribed_topic_names
            || (regex_changed && regex_effective);
        let joining = !self.consumer_groups[&gid].members.contains_key(&member_id);
        if joining || member.metadata_record(&gid) != before.metadata_record(&gid) {
            self.emit(out, Record::ConsumerMember(member.metadata_record(&gid)));
        }
        if regex_changed {
            self.drop_unused_regexes(&gid, out);
        }
        self.maybe_schedule_regex_refresh(now, &gid);
        // 4. Bump the group epoch if the inputs of the assignment changed.
        let g = &self.consumer_groups[&gid];
        let subscribes =
            !member.subscribed_topic_names.is_empty() || member.subscribed_topic_regex.is_some();
        let must_check =
            g.epoch == 0 || (subscription_changed && (subscribes || !joining)) || g.metadata_dirty;
        if must_check {
            let subscription = self.subscription_metadata(&gid);
            let g = &self.consumer_groups[&gid];
            if g.epoch == 0 || subscription_changed || subscription != g.subscription {
                let epoch = self.bump_group_epoch(&gid, subscription, out);
                out.event(Event::RebalanceStarted {
                    group: gid.clone(),
                    generation: epoch,
                    reason: "assignment inputs changed".into(),
                });
            }
            self.consumer_groups.get_mut(&gid).unwrap().metadata_dirty = false;
        }
        // 5. A new target when the epoch is ahead of it.
        self.maybe_compute_target(now, &gid, out);
    }

    /// The interval this member should wait before its next heartbeat. A member
    /// with something to do (revoke, pick up released partitions, move to a new
    /// epoch) comes back soon; a settled one at the stable interval.
    pub(crate) fn heartbeat_interval(&self, g: &ConsumerGroup, m: &ConsumerMember) -> i32 {
        let regex_waiting = self.regex_refresh_pending(&g.group_id)
            || m.subscribed_topic_regex
                .as_ref()
                .is_some_and(|re| !g.resolved_regexes.contains_key(re));
        let settled = m.state == MemberState::Stable
            && m.member_epoch == g.assignment_epoch
            && g.epoch == g.assignment_epoch
            && !regex_waiting;
        let settled_interval = self.settled_interval_ms();
        if settled {
            settled_interval
        } else {
            self.config
                .consumer_reconcile_heartbeat_interval_ms
                .min(settled_interval)
        }
    }

    /// What the heartbeat budget gives a settled member now.
    pub fn settled_interval_ms(&self) -> i32 {
        super::cadence::settled_interval_ms(
            self.consumer_members,
            self.config.consumer_heartbeat_budget_per_s,
            self.config.consumer_heartbeat_interval_floor_ms,
            self.config.consumer_heartbeat_interval_ms,
        )
    }

    /// Finds (or creates, or replaces for a static rejoin) the member, checking
    /// its epoch.
    fn find_member(
        &mut self,
        now: Millis,
        gid: &str,
        member_id: &str,
        r: &ConsumerGroupHeartbeatRequest,
        owned: &Option<Assignment>,
        out: &mut Out,
    ) -> Result<ConsumerMember, Fail> {
        let g = &self.consumer_groups[gid];
        if let Some(instance) = &r.instance_id {
            let mapped = g.static_members.get(instance).cloned();
            if r.member_epoch == 0 {
                match mapped {
                    Some(old) if old != member_id => {
                        let prev = &g.members[&old];
                        // A classic member has no way to release its instance
                        // id: it is replaced at once (Kafka's
                        // getOrMaybeSubscribeStaticConsumerGroupMember).
                        if prev.member_epoch != -2 && !prev.uses_classic_protocol() {
                            return Err((ErrorCode::UNRELEASED_INSTANCE_ID, Some(format!("Static member {old} with instance id {instance} is not released yet."))));
                        }
                        return Ok(
                            self.replace_static_consumer_member(now, gid, &old, member_id, out)
                        );
                    }
                    _ => {}
                }
            } else {
                match mapped {
                    None => {
                        return Err((
                            ErrorCode::UNKNOWN_MEMBER_ID,
                            Some(format!("Instance id {instance} is unknown.")),
                        ))
                    }
                    Some(m) if m != member_id => {
                        return Err((
                            ErrorCode::FENCED_INSTANCE_ID,
                            Some(format!("Instance id {instance} belongs to another member.")),
                        ))
                    }
                    _ => {}
                }
            }
        }
        let g = &self.consumer_groups[gid];
        match g.members.get(member_id) {
            None if r.member_epoch == 0 => Ok(ConsumerMember::new(member_id)),
            None => Err((
                ErrorCode::UNKNOWN_MEMBER_ID,
                Some(format!(
                    "Member {member_id} is not a member of group {gid}."
                )),
            )),
            Some(m) => {
                let (s, p) = (m.member_epoch, m.previous_member_epoch);
                let e = r.member_epoch;
                // A fenced member rejoining with epoch 0 and its member id is
                // accepted; a retried heartbeat at the previous epoch is too, if
                // what it reports is within what it was given.
                let ok = e == 0
                    || e == s
                    || (e < s && e == p && owned.as_ref().is_some_and(|o| subset(o, &m.assigned)));
                if !ok {
                    return Err((ErrorCode::FENCED_MEMBER_EPOCH, Some(format!("The consumer group member has a smaller member epoch ({e}) than the one known by the group coordinator ({s})."))));
                }
                Ok(m.clone())
            }
        }
    }

    /// KIP-848 static replacement: the new member id takes over the old one's
    /// subscription, target and partitions; no rebalance.
    pub(crate) fn replace_static_consumer_member(
        &mut self,
        _now: Millis,
        gid: &str,
        old: &str,
        new: &str,
        out: &mut Out,
    ) -> ConsumerMember {
        let g = &self.consumer_groups[gid];
        let prev = g.members[old].clone();
        let target = g.targets.get(old).cloned().unwrap_or_default();
        self.timers.cancel(&TimerKey::ConsumerSession {
            group: gid.to_string(),
            member: old.to_string(),
        });
        self.timers.cancel(&TimerKey::ConsumerRebalance {
            group: gid.to_string(),
            member: old.to_string(),
        });
        self.emit(
            out,
            Record::ConsumerMemberTombstone {
                group_id: gid.to_string(),
                member_id: old.to_string(),
            },
        );
        let mut m = prev;
        m.member_id = new.to_string();
        m.member_epoch = 0;
        m.previous_member_epoch = 0;
        m.state = MemberState::Stable;
        self.emit(out, Record::ConsumerMember(m.metadata_record(gid)));
        self.emit(
            out,
            Record::ConsumerTarget {
                group_id: gid.to_string(),
                member_id: new.to_string(),
                assignment: to_wire(&target),
            },
        );
        self.emit(out, Record::ConsumerCurrent(m.current_record(gid)));
        m
    }

    /// Moves the group to its next epoch, recording the topic metadata that
    /// epoch's target assignment is computed from. Returns the new epoch.
    pub(crate) fn bump_group_epoch(
        &mut self,
        gid: &str,
        subscription: Vec<(String, [u8; 16], i32)>,
        out: &mut Out,
    ) -> i32 {
        let epoch = self.consumer_groups[gid].epoch + 1;
        self.emit(
            out,
            Record::ConsumerGroupEpoch {
                group_id: gid.to_string(),
                epoch,
                subscription,
            },
        );
        epoch
    }

    /// Topic metadata of everything the group subscribes to, by name or regex.
    pub(crate) fn subscription_metadata(&self, gid: &str) -> Vec<(String, [u8; 16], i32)> {
        let g = &self.consumer_groups[gid];
        let names = self.subscribed_names(g);
        names
            .into_iter()
            .filter_map(|n| {
                self.topics
                    .get(&n)
                    .map(|(id, parts)| (n.clone(), id.0, *parts))
            })
            .collect()
    }

    /// Topic names the group subscribes to: by name, and what its regexes
    /// matched when last resolved.
    pub(crate) fn subscribed_names(&self, g: &ConsumerGroup) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = g.name_subscribers.keys().cloned().collect();
        for r in g.resolved_regexes.values() {
            names.extend(r.topics.iter().cloned());
        }
        names
    }

    fn member_topics(&self, g: &ConsumerGroup, m: &ConsumerMember) -> BTreeSet<TopicId> {
        let resolved = m
            .subscribed_topic_regex
            .as_ref()
            .and_then(|re| g.resolved_regexes.get(re));
        m.subscribed_topic_names
            .iter()
            .chain(resolved.into_iter().flat_map(|r| r.topics.iter()))
            .filter_map(|n| self.topics.get(n).map(|(id, _)| *id))
            .collect()
    }

    /// Computes a new target assignment when the group epoch is ahead of it,
    /// at most once per assignment interval (KIP-1263's batching): within the
    /// interval, a timer computes it when the interval ends.
    pub(crate) fn maybe_compute_target(&mut self, now: Millis, gid: &str, out: &mut Out) {
        let g = &self.consumer_groups[gid];
        if g.epoch <= g.assignment_epoch {
            return;
        }
        let key = TimerKey::ConsumerAssignment {
            group: gid.to_string(),
        };
        if let Some(last) = g.last_assignment_at {
            let due = last + self.config.consumer_assignment_interval_ms;
            if now < due {
                if !self.timers.is_armed(&key) {
                    self.timers.arm(key, due);
                }
                return;
            }
        }
        self.timers.cancel(&key);
        self.consumer_groups
            .get_mut(gid)
            .unwrap()
            .last_assignment_at = Some(now);
        let g = &self.consumer_groups[gid];
        // Members with the same subscription resolve to the same topics:
        // resolve each distinct subscription once.
        let mut resolved: BTreeMap<(&BTreeSet<String>, Option<&String>), BTreeSet<TopicId>> =
            BTreeMap::new();
        let specs: Vec<MemberSpec> = g
            .members
            .values()
            .map(|m| MemberSpec {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                topics: resolved
                    .entry((&m.subscribed_topic_names, m.subscribed_topic_regex.as_ref()))
                    .or_insert_with(|| self.member_topics(g, m))
                    .clone(),
                target: g.targets.get(&m.member_id).cloned().unwrap_or_default(),
            })
            .collect();
        let partitions: BTreeMap<TopicId, i32> = g
            .subscription
            .iter()
            .map(|(_, id, n)| (TopicId(*id), *n))
            .collect();
        let name = g.preferred_assignor(&self.config.consumer_assignors[0]);
        let assignors = cohort_assign::server::builtin();
        let assignor = assignors
            .iter()
            .find(|a| a.name() == name)
            .unwrap_or(&assignors[0]);
        let result = assignor.assign(&GroupSpec {
            members: &specs,
            partitions: &partitions,
        });
        let epoch = g.epoch;
        let changed: Vec<(String, Assignment)> = specs
            .iter()
            .map(|s| {
                (
                    s.member_id.clone(),
                    result.get(&s.member_id).cloned().unwrap_or_default(),
                )
            })
            .filter(|(id, a)| g.targets.get(id) != Some(a) || !g.targets.contains_key(id))
            .collect();
        for (member_id, a) in changed {
            self.emit(
                out,
                Record::ConsumerTarget {
                    group_id: gid.to_string(),
                    member_id,
                    assignment: to_wire(&a),
                },
            );
        }
        self.emit(
            out,
            Record::ConsumerTargetEpoch {
                group_id: gid.to_string(),
                assignment_epoch: epoch,
            },
        );
        out.event(Event::JoinCompleted {
            group: gid.to_string(),
            generation: epoch,
            members: specs.len(),
        });
    }

    pub(crate) fn reconcile_member(
        &mut self,
        now: Millis,
        gid: &str,
        member_id: &str,
        owned: &Option<Assignment>,
        rejoined: bool,
        out: &mut Out,
    ) {
        let g = &self.consumer_groups[gid];
        let m = &g.members[member_id];
        let target = g.targets.get(member_id).cloned().unwrap_or_default();
        let owners = &g.owners;
        let held = |t: &TopicId, p: i32| owners.get(&(*t, p)).is_some_and(|o| o != member_id);
        let next = super::reconcile(
            m.state,
            m.member_epoch,
            m.previous_member_epoch,
            &m.assigned,
            &m.pending_revocation,
            g.assignment_epoch,
            &target,
            owned,
            &held,
            rejoined,
        );
        let changed = next.state != m.state
            || next.member_epoch != m.member_epoch
            || next.previous_member_epoch != m.previous_member_epoch
            || next.assigned != m.assigned
            || next.pending_revocation != m.pending_revocation;
        if changed {
            let mut updated = m.clone();
            updated.state = next.state;
            updated.member_epoch = next.member_epoch;
            updated.previous_member_epoch = next.previous_member_epoch;
            updated.assigned = next.assigned;
            updated.pending_revocation = next.pending_revocation;
            let rebalance_timeout = updated.rebalance_timeout_ms.max(0) as i64;
            self.emit(out, Record::ConsumerCurrent(updated.current_record(gid)));
            let key = TimerKey::ConsumerRebalance {
                group: gid.to_string(),
                member: member_id.to_string(),
            };
            if next.state == MemberState::UnrevokedPartitions {
                self.timers.arm(key, now + rebalance_timeout);
            } else {
                self.timers.cancel(&key);
            }
        }
    }

    fn consumer_leave(
        &mut self,
        now: Millis,
        r: &ConsumerGroupHeartbeatRequest,
        out: &mut Out,
    ) -> Result<ConsumerGroupHeartbeatResponse, Fail> {
        let gid = &r.group_id;
        let Some(g) = self.consumer_groups.get(gid) else {
            return Err((
                ErrorCode::GROUP_ID_NOT_FOUND,
                Some(format!("Group {gid} not found.")),
            ));
        };
        if let Some(instance) = &r.instance_id {
            match g.static_members.get(instance) {
                None => {
                    return Err((
                        ErrorCode::UNKNOWN_MEMBER_ID,
                        Some(format!("Instance id {instance} is unknown.")),
                    ))
                }
                Some(m) if *m != r.member_id => return Err((ErrorCode::FENCED_INSTANCE_ID, None)),
                _ => {}
            }
        }
        let Some(m) = g.members.get(&r.member_id) else {
            return Err((
                ErrorCode::UNKNOWN_MEMBER_ID,
                Some(format!(
                    "Member {} is not a member of group {gid}.",
                    r.member_id
                )),
            ));
        };
        if r.member_epoch == -2 {
            // A static member going away for a moment keeps its partitions (at
            // epoch -2 nobody else can take them); no rebalance. Its session
            // timer keeps running.
            let mut parked = m.clone();
            parked.member_epoch = -2;
            parked.pending_revocation = Assignment::new();
            parked.state = MemberState::Stable;
            self.emit(out, Record::ConsumerCurrent(parked.current_record(gid)));
            self.timers.cancel(&TimerKey::ConsumerRebalance {
                group: gid.clone(),
                member: r.member_id.clone(),
            });
        } else {
            self.fence_member(now, gid, &r.member_id, "left the group", out);
        }
        Ok(ConsumerGroupHeartbeatResponse {
            error: ErrorCode::NONE,
            error_message: None,
            member_id: Some(r.member_id.clone()),
            member_epoch: r.member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        })
    }

    /// Removes a member and bumps the group epoch; its partitions are free.
    pub(crate) fn fence_member(
        &mut self,
        now: Millis,
        gid: &str,
        member_id: &str,
        reason: &str,
        out: &mut Out,
    ) {
        self.timers.cancel(&TimerKey::ConsumerSession {
            group: gid.to_string(),
            member: member_id.to_string(),
        });
        self.timers.cancel(&TimerKey::ConsumerRebalance {
            group: gid.to_string(),
            member: member_id.to_string(),
        });
        if self.may_downgrade(gid, Some(member_id)) {
            return self.downgrade_consumer_group(now, gid, Some(member_id), reason, out);
        }
        self.emit(
            out,
            Record::ConsumerMemberTombstone {
                group_id: gid.to_string(),
                member_id: member_id.to_string(),
            },
        );
        self.drop_unused_regexes(gid, out);
        let subscription = self.subscription_metadata(gid);
        let empty = self.consumer_groups[gid].members.is_empty();
        let epoch = self.bump_group_epoch(gid, subscription, out);
        if empty {
            // Nothing to assign: let the target epoch catch up so the group
            // reads Empty, not Assigning.
            self.emit(
                out,
                Record::ConsumerTargetEpoch {
                    group_id: gid.to_string(),
                    assignment_epoch: epoch,
                },
            );
            self.consumer_groups.get_mut(gid).unwrap().state_timestamp = now;
        }
        out.event(Event::MemberRemoved {
            group: gid.to_string(),
            member: member_id.to_string(),
            reason: reason.to_string(),
        });
    }

    pub(crate) fn consumer_session_expired(
        &mut self,
        now: Millis,
        gid: &str,
        member_id: &str,
        out: &mut Out,
    ) {
        if self
            .consumer_groups
            .get(gid)
            .is_some_and(|g| g.members.contains_key(member_id))
        {
            self.fence_member(now, gid, member_id, "session timed out", out);
        }
    }

    pub(crate) fn consumer_rebalance_expired(
        &mut self,
        now: Millis,
        gid: &str,
        member_id: &str,
        out: &mut Out,
    ) {
        let still_revoking = self
            .consumer_groups
            .get(gid)
            .and_then(|g| g.members.get(member_id))
            .is_some_and(|m| m.state == MemberState::UnrevokedPartitions);
        if still_revoking {
            self.fence_member(
                now,
                gid,
                member_id,
                "did not revoke within its rebalance timeout",
                out,
            );
        }
    }

    /// New topic metadata: groups that subscribe to a changed topic (or use a
    /// regex that a new topic may match) re-check at their next heartbeat.
    pub(crate) fn topics_changed(&mut self, image: BTreeMap<String, (TopicId, i32)>) {
        let old = std::mem::replace(&mut self.topics, image);
        let mut changed: BTreeSet<&String> = BTreeSet::new();
        for (n, v) in &self.topics {
            if old.get(n) != Some(v) {
                changed.insert(n);
            }
        }
        for n in old.keys() {
            if !self.topics.contains_key(n) {
                changed.insert(n);
            }
        }
        if changed.is_empty() {
            return;
        }
        if self.topics.keys().any(|n| !old.contains_key(n)) {
            self.topics_version += 1;
        }
        let dirty: Vec<String> = self
            .consumer_groups
            .values()
            .filter(|g| {
                g.subscription.iter().any(|(n, _, _)| changed.contains(n))
                    || g.members.values().any(|m| {
                        m.subscribed_topic_regex.is_some()
                            || m.subscribed_topic_names.iter().any(|n| changed.contains(n))
                    })
            })
            .map(|g| g.group_id.clone())
            .collect();
        for gid in dirty {
            self.consumer_groups.get_mut(&gid).unwrap().metadata_dirty = true;
        }
    }
}
