//! Classic groups (JoinGroup / SyncGroup / Heartbeat / LeaveGroup): the state
//! Kafka keeps per group and member, and the helpers every handler shares.
//! The rules follow Kafka's ClassicGroup and GroupMetadataManager.

mod expire;
pub mod follow_up;
mod join;
mod leave;
mod sync;

pub(crate) use join::join_error;

use crate::records::{GroupRecord, MemberRecord};
use crate::{Connection, RequestId};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A parked JoinGroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwaitingJoin {
    pub request: RequestId,
    pub supports_skip_assignment: bool,
}

/// A parked SyncGroup, and the connection it came on (its answer must not
/// fall behind a later request's when it is held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwaitingSync {
    pub request: RequestId,
    pub connection: Connection,
}

#[derive(Clone, Debug)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<AwaitingJoin>,
    pub awaiting_sync: Option<AwaitingSync>,
    /// Added by a join that has not completed yet.
    pub is_new: bool,
    /// The generation this member was last told, when it is older than the
    /// group's: it was carried through later rounds on a held SyncGroup
    /// (see `follow_up`) and was never answered a JoinGroup of theirs. Its
    /// requests carry that generation, which stays valid for it.
    pub told_generation: Option<i32>,
    /// Counted as joined in the current round on its held SyncGroup.
    pub carried: bool,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// The first protocol in this member's list that is a candidate.
    fn vote(&self, candidates: &BTreeSet<String>) -> Option<&str> {
        self.protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| candidates.contains(*n))
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    fn record(&self) -> MemberRecord {
        MemberRecord {
            member_id: self.member_id.clone(),
            group_instance_id: self.group_instance_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            session_timeout_ms: self.session_timeout_ms,
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            protocols: self
                .protocols
                .iter()
                .map(|(n, m)| (n.clone(), m.to_vec()))
                .collect(),
            assignment: self.assignment.to_vec(),
            told_generation: self.told_generation,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    pub previous_state: GroupState,
    pub state_timestamp: i64,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    /// Members in the order they joined (leader succession and vote ties follow it).
    pub members: BTreeMap<String, Member>,
    pub join_order: Vec<String>,
    pub static_members: BTreeMap<String, String>,
    pub pending_join: BTreeSet<String>,
    pub pending_sync: BTreeSet<String>,
    pub new_member_added: bool,
    /// The initial-rebalance window: (current delay, remaining budget).
    pub initial_delay: Option<(i64, i64)>,
    /// Members of the last completed round whose SyncGroup answers wait for
    /// its certain follow-up round (soft state; see `follow_up`).
    pub follow_up_hold: BTreeSet<String>,
    /// What the last record said: the durable state.
    pub durable: GroupRecord,
}

impl ClassicGroup {
    pub fn new(group_id: &str, now: i64) -> ClassicGroup {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Empty,
            state_timestamp: now,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            join_order: Vec::new(),
            static_members: BTreeMap::new(),
            pending_join: BTreeSet::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            initial_delay: None,
            follow_up_hold: BTreeSet::new(),
            durable: GroupRecord {
                group_id: group_id.to_string(),
                protocol_type: None,
                generation: 0,
                protocol_name: None,
                leader: None,
                assigned: false,
                state_timestamp: now,
                members: vec![],
            },
        }
    }

    pub fn transition(&mut self, to: GroupState, now: i64) {
        self.previous_state = self.state;
        self.state = to;
        self.state_timestamp = now;
    }

    pub fn is(&self, s: GroupState) -> bool {
        self.state == s
    }

    pub fn awaiting_join_count(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    /// Everyone known has a parked JoinGroup (or is carried on its held
    /// SyncGroup) and no minted id is outstanding.
    pub fn all_joined(&self) -> bool {
        let carried = self.members.values().filter(|m| m.carried).count();
        self.members.len() == self.awaiting_join_count() + carried && self.pending_join.is_empty()
    }

    /// Whether `generation` is one `member_id` may speak for: the group's,
    /// or the one a carried member was last told.
    pub fn generation_ok(&self, member_id: &str, generation: i32) -> bool {
        generation == self.generation
            || self
                .members
                .get(member_id)
                .is_some_and(|m| m.told_generation == Some(generation))
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// Protocol names every member supports.
    fn candidates(&self) -> BTreeSet<String> {
        let mut iter = self.members.values();
        let Some(first) = iter.next() else {
            return BTreeSet::new();
        };
        let mut set: BTreeSet<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in iter {
            let theirs: BTreeSet<&str> = m.protocols.iter().map(|(n, _)| n.as_str()).collect();
            set.retain(|n| theirs.contains(n.as_str()));
        }
        set
    }

    /// Kafka's vote: each member votes for its first candidate, most votes win;
    /// a tie goes to the candidate first voted for in join order.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: Vec<(String, usize)> = Vec::new();
        for id in &self.join_order {
            let Some(m) = self.members.get(id) else {
                continue;
            };
            if let Some(v) = m.vote(&candidates) {
                match votes.iter_mut().find(|(n, _)| n == v) {
                    Some(e) => e.1 += 1,
                    None => votes.push((v.to_string(), 1)),
                }
            }
        }
        let mut best: Option<(String, usize)> = None;
        for (n, c) in votes {
            if best.as_ref().map_or(true, |(_, bc)| c > *bc) {
                best = Some((n, c));
            }
        }
        best.map(|(n, _)| n)
    }

    /// Whether a member offering these protocols may join (Kafka's
    /// supportsProtocols).
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.is(GroupState::Empty) || self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidates();
        protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.join_order.push(member.member_id.clone());
        self.members.insert(member.member_id.clone(), member);
    }

    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let m = self.members.remove(member_id)?;
        self.join_order.retain(|id| id != member_id);
        if let Some(instance) = &m.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_sync.remove(member_id);
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.join_order.first().cloned();
        }
        Some(m)
    }

    /// Kafka's validateMember: instance id first, then member id.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), cohort_types::ErrorCode> {
        use cohort_types::ErrorCode;
        if let Some(instance) = instance {
            match self.static_members.get(instance) {
                None => return Err(ErrorCode::UNKNOWN_MEMBER_ID),
                Some(mapped) if mapped != member_id => return Err(ErrorCode::FENCED_INSTANCE_ID),
                Some(_) => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ErrorCode::UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    /// This group's durable state as a record.
    pub fn to_record(&self, assigned: bool) -> GroupRecord {
        GroupRecord {
            group_id: self.group_id.clone(),
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            assigned,
            state_timestamp: self.state_timestamp,
            members: self
                .join_order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(Member::record)
                .collect(),
        }
    }
}

/// Applies a group record. Live, the record mirrors the in-memory group, so this
/// only stores it and the assignments it carries; on restart it creates the
/// group and its members from scratch.
pub(crate) fn replay_group(groups: &mut BTreeMap<String, ClassicGroup>, rec: &GroupRecord) {
    let g = groups
        .entry(rec.group_id.clone())
        .or_insert_with(|| ClassicGroup::new(&rec.group_id, rec.state_timestamp));
    g.durable = rec.clone();
    g.protocol_type = rec.protocol_type.clone();
    g.generation = rec.generation;
    g.protocol_name = rec.protocol_name.clone();
    g.leader = rec.leader.clone();
    let keep: BTreeSet<&str> = rec.members.iter().map(|m| m.member_id.as_str()).collect();
    let stale: Vec<String> = g
        .members
        .keys()
        .filter(|k| !keep.contains(k.as_str()))
        .cloned()
        .collect();
    for id in stale {
        g.remove_member(&id);
    }
    g.leader = rec.leader.clone();
    for mr in &rec.members {
        match g.members.get_mut(&mr.member_id) {
            Some(m) => {
                if rec.assigned {
                    m.assignment = Bytes::from(mr.assignment.clone());
                }
                m.told_generation = mr.told_generation;
            }
            None => {
                let m = Member {
                    member_id: mr.member_id.clone(),
                    group_instance_id: mr.group_instance_id.clone(),
                    client_id: mr.client_id.clone(),
                    client_host: mr.client_host.clone(),
                    session_timeout_ms: mr.session_timeout_ms,
                    rebalance_timeout_ms: mr.rebalance_timeout_ms,
                    protocol_type: rec.protocol_type.clone().unwrap_or_default(),
                    protocols: mr
                        .protocols
                        .iter()
                        .map(|(n, b)| (n.clone(), Bytes::from(b.clone())))
                        .collect(),
                    assignment: Bytes::from(mr.assignment.clone()),
                    awaiting_join: None,
                    awaiting_sync: None,
                    is_new: false,
                    told_generation: mr.told_generation,
                    carried: false,
                };
                let leader = g.leader.clone();
                g.add_member(m);
                g.leader = leader;
            }
        }
    }
}

/// The topics a "consumer" group's members subscribe to, read from each
/// member's ConsumerProtocolSubscription (version i16, then an array of
/// topic-name strings). This is the one place Kafka looks inside the metadata,
/// for OffsetDelete; anything that does not parse counts as no topics.
pub fn subscribed_topics(g: &ClassicGroup) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Some(protocol) = g.protocol_name.as_deref() else {
        return out;
    };
    if g.protocol_type.as_deref() != Some("consumer") {
        return out;
    }
    for m in g.members.values() {
        let meta = m.metadata_for(protocol);
        let b = meta.as_ref();
        if b.len() < 6 {
            continue;
        }
        let count = i32::from_be_bytes([b[2], b[3], b[4], b[5]]);
        let mut at = 6;
        for _ in 0..count.max(0) {
            if at + 2 > b.len() {
                break;
            }
            let len = i16::from_be_bytes([b[at], b[at + 1]]).max(0) as usize;
            at += 2;
            if at + len > b.len() {
                break;
            }
            out.insert(String::from_utf8_lossy(&b[at..at + len]).into_owned());
            at += len;
        }
    }
    out
}
