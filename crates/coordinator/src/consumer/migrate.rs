//! Moving a live group between the classic and the consumer protocol (Kafka's
//! online migration, `group.consumer.migration.policy`).
//!
//! Upgrade: the first consumer-protocol member to join a non-empty classic
//! group of protocol type "consumer" turns it into a consumer group in the
//! same write as its own join (Kafka's `convertToConsumerGroup` and
//! `ConsumerGroup.fromClassicGroup`). Every classic member becomes a member
//! of the consumer group that still speaks the classic protocol, at epoch =
//! the classic generation, owning what it owned; the group epoch and the
//! target epoch continue from the generation. The joining member's
//! subscription then bumps the epoch, and the classic members are made to
//! rejoin by their heartbeats (`classic_members`).
//!
//! Downgrade: when a member leaves (or is fenced) and every member left
//! speaks the classic protocol, the group turns back into a classic group at
//! generation = the group epoch, each member's assignment its target, and one
//! rebalance starts at once so the members rejoin under their own assignor
//! (Kafka's `convertToClassicGroup` and `ClassicGroup.fromConsumerGroup`).
//!
//! Both conversions are one atomic set of records, so a restart in the middle
//! of a rollout comes back to the same group, epochs and owners.
//!
//! Where Cohort differs from Kafka: it converts a group of a built-in client
//! assignor whose assignments echo user data (librdkafka's
//! cooperative-sticky, see `members_from_classic`), which Kafka refuses; and,
//! for safety, a classic member's
//! partitions are what its last SyncGroup gave it and, when a rebalance
//! voided that (a group caught between JoinGroup and SyncGroup), what its
//! JoinGroup subscription said it still owns, so a cooperative member that
//! keeps consuming through a rebalance is never counted as owning nothing.

use super::{to_wire, ConsumerGroup, ConsumerMember, MemberState};
use crate::classic::{ClassicGroup, GroupState, Member};
use crate::embedded;
use crate::records::{ClassicMemberRecord, Record};
use crate::timers::TimerKey;
use crate::{Coordinator, Event, Out};
use bytes::Bytes;
use cohort_assign::server::Assignment;
use cohort_types::group::{GroupResponse, JoinGroupResponse, SyncGroupResponse};
use cohort_types::{ErrorCode, Millis, TopicId};
use std::collections::{BTreeMap, BTreeSet};

type Fail = (ErrorCode, Option<String>);

/// A classic member's subscription, read from the metadata it sent for the
/// group's protocol (its first protocol when none was chosen yet).
pub(crate) fn member_subscription(
    m: &Member,
    protocol: Option<&str>,
) -> Result<embedded::Subscription, String> {
    let meta = match protocol {
        Some(p) => m.metadata_for(p),
        None => m
            .protocols
            .first()
            .map(|(_, b)| b.clone())
            .unwrap_or_default(),
    };
    embedded::parse_subscription(&meta)
}

/// What a classic member said in its JoinGroup, as its member record keeps it.
pub(crate) fn classic_metadata(
    session_timeout_ms: i32,
    protocols: &[(String, Bytes)],
) -> ClassicMemberRecord {
    ClassicMemberRecord {
        session_timeout_ms,
        protocols: protocols
            .iter()
            .map(|(n, b)| (n.clone(), b.to_vec()))
            .collect(),
    }
}

/// An assignment for a classic member, in the version of the subscription
/// it sent for its first protocol (as Kafka answers).
pub(crate) fn classic_assignment(
    c: &ClassicMemberRecord,
    partitions: &[(String, Vec<i32>)],
) -> Vec<u8> {
    let version = c
        .protocols
        .first()
        .and_then(|(_, b)| embedded::parse_subscription(b).ok())
        .map_or(0, |s| s.version);
    embedded::write_assignment(version, partitions)
}

impl Coordinator {
    /// Topic names to ids for the partitions of an embedded assignment or
    /// subscription; topics this broker does not have are dropped.
    pub(crate) fn by_topic_id(&self, parts: &[(String, Vec<i32>)]) -> Assignment {
        let mut a = Assignment::new();
        for (name, ps) in parts {
            if let Some((id, _)) = self.topics.get(name) {
                a.entry(*id).or_default().extend(ps.iter().copied());
            }
        }
        a.retain(|_, ps| !ps.is_empty());
        a
    }

    /// The reverse: ids back to names, for an assignment handed to a classic
    /// member.
    pub(crate) fn by_topic_name(&self, a: &Assignment) -> Vec<(String, Vec<i32>)> {
        let names: BTreeMap<TopicId, &String> =
            self.topics.iter().map(|(n, (id, _))| (*id, n)).collect();
        a.iter()
            .filter(|(_, ps)| !ps.is_empty())
            .filter_map(|(id, ps)| {
                names
                    .get(id)
                    .map(|n| (n.to_string(), ps.iter().copied().collect()))
            })
            .collect()
    }

    /// Kafka's `validateOnlineUpgrade`, then the conversion. An error is the
    /// answer the joining consumer-protocol member gets; nothing is written.
    pub(crate) fn upgrade_classic_group(
        &mut self,
        now: Millis,
        gid: &str,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let classic = &self.groups[gid];
        let refuse = |why: &str| {
            Err((
                ErrorCode::GROUP_ID_NOT_FOUND,
                Some(format!(
                    "Cannot upgrade classic group {gid} to consumer group because {why}."
                )),
            ))
        };
        if !self.config.consumer_migration_policy.upgrade_enabled() {
            return refuse("online upgrade is disabled");
        }
        if classic.protocol_type.as_deref() != Some("consumer") {
            return refuse("the group does not use the consumer embedded protocol");
        }
        if classic.members.len() > self.config.consumer_max_group_size {
            return refuse("the group size exceeds the consumer group maximum size");
        }
        let members = self.members_from_classic(classic).map_err(|why| {
            (
                ErrorCode::GROUP_ID_NOT_FOUND,
                Some(format!(
                    "Cannot upgrade classic group {gid} to consumer group because {why}."
                )),
            )
        })?;
        let generation = classic.generation;
        // Whoever waits in a JoinGroup or SyncGroup of the classic group
        // rejoins the consumer group; held heartbeats are answered.
        self.release_group(now, gid, out);
        let classic = &self.groups[gid];
        for m in classic.members.values() {
            if let Some(j) = &m.awaiting_join {
                out.reply(
                    j.request,
                    GroupResponse::JoinGroup(JoinGroupResponse::error(
                        ErrorCode::REBALANCE_IN_PROGRESS,
                        &m.member_id,
                    )),
                );
            }
            if let Some(s) = m.awaiting_sync {
                out.reply(
                    s.request,
                    GroupResponse::SyncGroup(SyncGroupResponse::error(
                        ErrorCode::REBALANCE_IN_PROGRESS,
                    )),
                );
            }
        }
        self.timers.cancel_group(gid);
        self.emit(
            out,
            Record::ClassicGroupConverted {
                group_id: gid.to_string(),
            },
        );
        // Kafka's createConsumerGroupRecords: members, epoch, targets, target
        // epoch, then each member's current assignment.
        let mut g = ConsumerGroup::new(gid);
        g.state_timestamp = now;
        self.consumer_groups.insert(gid.to_string(), g);
        for m in &members {
            self.emit(out, Record::ConsumerMember(m.metadata_record(gid)));
        }
        let subscription = self.subscription_metadata(gid);
        self.emit(
            out,
            Record::ConsumerGroupEpoch {
                group_id: gid.to_string(),
                epoch: generation,
                subscription,
            },
        );
        for m in &members {
            self.emit(
                out,
                Record::ConsumerTarget {
                    group_id: gid.to_string(),
                    member_id: m.member_id.clone(),
                    assignment: to_wire(&m.assigned),
                },
            );
        }
        self.emit(
            out,
            Record::ConsumerTargetEpoch {
                group_id: gid.to_string(),
                assignment_epoch: generation,
            },
        );
        for m in &members {
            self.emit(out, Record::ConsumerCurrent(m.current_record(gid)));
            let session = m
                .classic
                .as_ref()
                .map_or(self.config.consumer_session_timeout_ms, |c| {
                    c.session_timeout_ms
                });
            self.timers.arm(
                TimerKey::ConsumerSession {
                    group: gid.to_string(),
                    member: m.member_id.clone(),
                },
                now + session as i64,
            );
        }
        out.event(Event::GroupConverted {
            group: gid.to_string(),
            to: "consumer",
            members: members.len(),
        });
        Ok(())
    }

    /// Each classic member as a consumer-group member (Kafka's
    /// `ConsumerGroup.fromClassicGroup`), or why the group cannot be carried.
    fn members_from_classic(&self, classic: &ClassicGroup) -> Result<Vec<ConsumerMember>, String> {
        let protocol = classic.protocol_name.as_deref();
        let voided = !classic.is(GroupState::Stable);
        // Kafka refuses a member whose assignment carries user data ("userData
        // from a custom assignor would be lost"). librdkafka's leader copies
        // each member's subscription user data into its assignment, so a
        // librdkafka cooperative-sticky group is refused by Kafka after its
        // first rebalance, and the new member fails with a fatal
        // GROUP_ID_NOT_FOUND. The built-in assignors keep their state in the
        // subscription, which every member sends again: nothing is lost, and
        // Cohort converts. A custom assignor's user data is refused as Kafka
        // refuses it.
        let builtin = matches!(
            protocol,
            Some("range" | "roundrobin" | "sticky" | "cooperative-sticky")
        );
        let mut claimed: BTreeSet<(TopicId, i32)> = BTreeSet::new();
        let mut out = Vec::new();
        let mut owned_claims = Vec::new();
        for id in &classic.join_order {
            let Some(cm) = classic.members.get(id) else {
                continue;
            };
            let sub = member_subscription(cm, protocol).map_err(|e| {
                format!("the embedded consumer protocol is malformed (member {id}: {e})")
            })?;
            let assignment = embedded::parse_assignment(&cm.assignment).map_err(|e| {
                format!("the embedded consumer protocol is malformed (member {id}: {e})")
            })?;
            if assignment.user_data.as_ref().is_some_and(|u| !u.is_empty()) && !builtin {
                return Err("an unsupported custom assignor is in use. Please refer to the documentation or switch to a default assignor before re-attempting the upgrade".into());
            }
            let mut m = ConsumerMember::new(id);
            m.instance_id = cm.group_instance_id.clone();
            m.rack_id = sub.rack.clone();
            m.client_id = cm.client_id.clone();
            m.client_host = cm.client_host.clone();
            m.rebalance_timeout_ms = cm.rebalance_timeout_ms;
            m.subscribed_topic_names = sub.topics.iter().cloned().collect();
            // A member carried through a cooperative follow-up round still
            // speaks for the generation it was told (`classic::follow_up`):
            // that is its epoch, so its next Heartbeat is behind the group's
            // and it rejoins owning what it owns, instead of being fenced.
            let epoch = cm.told_generation.unwrap_or(classic.generation);
            m.member_epoch = epoch;
            m.previous_member_epoch = epoch;
            m.state = MemberState::Stable;
            m.classic = Some(classic_metadata(cm.session_timeout_ms, &cm.protocols));
            // What its last SyncGroup gave it comes first.
            let mut assigned = self.by_topic_id(&assignment.partitions);
            for (t, ps) in assigned.iter_mut() {
                ps.retain(|p| claimed.insert((*t, *p)));
            }
            assigned.retain(|_, ps| !ps.is_empty());
            m.assigned = assigned;
            if voided {
                owned_claims.push((out.len(), self.by_topic_id(&sub.owned)));
            }
            out.push(m);
        }
        // Then, in a group that is rebalancing, what each says it still owns.
        for (i, owned) in owned_claims {
            for (t, ps) in owned {
                for p in ps {
                    if claimed.insert((t, p)) {
                        out[i].assigned.entry(t).or_default().insert(p);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Kafka's `validateOnlineDowngradeWith{FencedMember,ReplacedMemberId}`:
    /// whether the group, without `leaving` (a member about to be removed, or
    /// None after a static replacement), should turn back into a classic
    /// group: someone is left, everyone left speaks the classic protocol, and
    /// the policy and the classic group size allow it.
    pub(crate) fn may_downgrade(&self, gid: &str, leaving: Option<&str>) -> bool {
        let Some(g) = self.consumer_groups.get(gid) else {
            return false;
        };
        let left: Vec<&ConsumerMember> = g
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != leaving)
            .collect();
        !left.is_empty()
            && left.iter().all(|m| m.uses_classic_protocol())
            && self.config.consumer_migration_policy.downgrade_enabled()
            && left.len() <= self.config.max_group_size
    }

    /// Turns the consumer group back into a classic group without `leaving`;
    /// a leave starts the one rebalance Kafka forces (a static replacement,
    /// `leaving` None, does not).
    pub(crate) fn downgrade_consumer_group(
        &mut self,
        now: Millis,
        gid: &str,
        leaving: Option<&str>,
        reason: &str,
        out: &mut Out,
    ) {
        let g = self.consumer_groups[gid].clone();
        // Each member's classic assignment is what it may still hold (its
        // assigned partitions and those it has not yet revoked), not its
        // target as Kafka's ClassicGroup.fromConsumerGroup writes: a target
        // can name a partition another member still holds, and a consumer
        // member joining during the forced rebalance would convert the group
        // back (CG.fromClassicGroup takes these as what each member owns)
        // and give that partition to two members at once. Where what members
        // hold differs from their targets, the rebalance is forced even
        // without a leave, so partitions nobody holds are handed out.
        let mut reconciled = true;
        let mut classic = ClassicGroup::new(gid, now);
        classic.state = GroupState::Stable;
        classic.generation = g.epoch;
        classic.protocol_type = Some("consumer".into());
        for m in g
            .members
            .values()
            .filter(|m| Some(m.member_id.as_str()) != leaving)
        {
            let c = m
                .classic
                .clone()
                .expect("every remaining member speaks the classic protocol");
            let target = g.targets.get(&m.member_id).cloned().unwrap_or_default();
            let mut held = m.assigned.clone();
            for (t, ps) in &m.pending_revocation {
                held.entry(*t).or_default().extend(ps.iter().copied());
            }
            held.retain(|_, ps| !ps.is_empty());
            let mut wanted = target.clone();
            wanted.retain(|_, ps| !ps.is_empty());
            reconciled &= held == wanted;
            let assignment = classic_assignment(&c, &self.by_topic_name(&held));
            classic.add_member(Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: c.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocol_type: "consumer".into(),
                protocols: c
                    .protocols
                    .iter()
                    .map(|(n, b)| (n.clone(), Bytes::from(b.clone())))
                    .collect(),
                assignment: Bytes::from(assignment),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                told_generation: None,
                carried: false,
            });
        }
        classic.protocol_name = classic.select_protocol();
        self.timers.cancel_group(gid);
        self.emit(
            out,
            Record::ConsumerGroupConverted {
                group_id: gid.to_string(),
            },
        );
        let members: Vec<(String, i64)> = classic
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.session_timeout_ms as i64))
            .collect();
        let rec = classic.to_record(true);
        self.groups.insert(gid.to_string(), classic);
        self.emit(out, Record::Group(rec));
        for (member, session) in members {
            self.timers.arm(
                TimerKey::Heartbeat {
                    group: gid.to_string(),
                    member,
                },
                now + session,
            );
        }
        out.event(Event::GroupConverted {
            group: gid.to_string(),
            to: "classic",
            members: self.groups[gid].members.len(),
        });
        if let Some(leaving) = leaving {
            out.event(Event::MemberRemoved {
                group: gid.to_string(),
                member: leaving.to_string(),
                reason: reason.to_string(),
            });
        }
        if leaving.is_some() || !reconciled {
            self.prepare_rebalance(
                now,
                gid,
                &format!("Downgrade group {gid} from consumer to classic."),
                out,
            );
        }
    }
}
