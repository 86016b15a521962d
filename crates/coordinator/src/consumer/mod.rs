//! Consumer groups (KIP-848, `group.protocol=consumer`): group epoch, target
//! assignment epoch and member epochs; the broker computes the target with a
//! server-side assignor and moves each member toward it on its own (revoke
//! first, then assign what others have released).

pub mod cadence;
mod classic_members;
mod heartbeat;
mod migrate;
mod reconcile;
mod regex;

use crate::records::{ClassicMemberRecord, ConsumerCurrentRecord, ConsumerMemberRecord, Record};
use cohort_assign::server::Assignment;
use cohort_types::{Millis, TopicId};
use std::collections::{BTreeMap, BTreeSet};

pub use reconcile::{reconcile, MemberState, Reconciled};
pub use regex::{compile_regex, ResolvedRegex};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: BTreeSet<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub state: MemberState,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Set for a member that speaks the classic protocol (a mixed group).
    pub classic: Option<ClassicMemberRecord>,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> ConsumerMember {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: -1,
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            state: MemberState::Stable,
            member_epoch: 0,
            previous_member_epoch: -1,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
        }
    }

    pub fn uses_classic_protocol(&self) -> bool {
        self.classic.is_some()
    }

    pub fn metadata_record(&self, group_id: &str) -> ConsumerMemberRecord {
        ConsumerMemberRecord {
            group_id: group_id.to_string(),
            member_id: self.member_id.clone(),
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            subscribed_topic_names: self.subscribed_topic_names.iter().cloned().collect(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            server_assignor: self.server_assignor.clone(),
            classic: self.classic.clone(),
        }
    }

    pub fn current_record(&self, group_id: &str) -> ConsumerCurrentRecord {
        ConsumerCurrentRecord {
            group_id: group_id.to_string(),
            member_id: self.member_id.clone(),
            state: self.state as u8,
            member_epoch: self.member_epoch,
            previous_member_epoch: self.previous_member_epoch,
            assigned: to_wire(&self.assigned),
            pending_revocation: to_wire(&self.pending_revocation),
        }
    }

    /// Partitions this member holds: assigned, or still being revoked.
    pub fn holds(&self, t: &TopicId, p: i32) -> bool {
        self.assigned.get(t).is_some_and(|s| s.contains(&p))
            || self
                .pending_revocation
                .get(t)
                .is_some_and(|s| s.contains(&p))
    }
}

pub fn to_wire(a: &Assignment) -> Vec<([u8; 16], Vec<i32>)> {
    a.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (t.0, ps.iter().copied().collect()))
        .collect()
}

pub fn from_wire(w: &[([u8; 16], Vec<i32>)]) -> Assignment {
    w.iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(t, ps)| (TopicId(*t), ps.iter().copied().collect()))
        .collect()
}

#[derive(Clone, Debug, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub targets: BTreeMap<String, Assignment>,
    /// Topic metadata the subscriptions resolved to at the last bump.
    pub subscription: Vec<(String, [u8; 16], i32)>,
    /// Each regex in use, as last resolved.
    pub resolved_regexes: BTreeMap<String, ResolvedRegex>,
    // Soft state, derived from the above.
    pub static_members: BTreeMap<String, String>,
    /// Which member holds each partition (assigned or pending revocation).
    pub owners: BTreeMap<(TopicId, i32), String>,
    /// Topic metadata may have changed since the last bump.
    pub metadata_dirty: bool,
    /// When the group last became empty (for offset expiry), or created.
    pub state_timestamp: i64,
    /// The coordinator's topic-creation count at the last regex refresh (0
    /// after a restart, so the first heartbeat re-resolves).
    pub regex_topics_version: u64,
    /// How many members subscribe with each regex, so a heartbeat need not
    /// look at every member to know which regexes are in use.
    pub regex_subscribers: BTreeMap<String, usize>,
    /// How many members subscribe to each topic by name, for the same reason.
    pub name_subscribers: BTreeMap<String, usize>,
    /// When the target assignment was last computed (None after a restart).
    pub last_assignment_at: Option<Millis>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> ConsumerGroup {
        ConsumerGroup {
            group_id: group_id.to_string(),
            assignment_epoch: -1,
            ..Default::default()
        }
    }

    /// Kafka's group states, derived in this order.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.state != MemberState::Stable || m.member_epoch != self.assignment_epoch)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The assignor most members name, else the broker default.
    pub fn preferred_assignor(&self, default: &str) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *counts.entry(a.as_str()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(n, c)| (*c, std::cmp::Reverse(*n)))
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| default.to_string())
    }

    fn index_member(&mut self, m: &ConsumerMember, add: bool) {
        for a in [&m.assigned, &m.pending_revocation] {
            for (t, ps) in a {
                for p in ps {
                    if add {
                        self.owners.insert((*t, *p), m.member_id.clone());
                    } else if self.owners.get(&(*t, *p)) == Some(&m.member_id) {
                        self.owners.remove(&(*t, *p));
                    }
                }
            }
        }
    }
}

/// The group a record belongs to, created by its first record.
fn group<'a>(
    groups: &'a mut BTreeMap<String, ConsumerGroup>,
    group_id: &str,
) -> &'a mut ConsumerGroup {
    groups
        .entry(group_id.to_string())
        .or_insert_with(|| ConsumerGroup::new(group_id))
}

/// Counts one more (or one fewer) member subscribing with `key` (a regex, or
/// a topic name).
fn count_subscribers(counts: &mut BTreeMap<String, usize>, key: Option<&str>, delta: isize) {
    let Some(key) = key else { return };
    let n = counts.entry(key.to_string()).or_default();
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        counts.remove(key);
    }
}

/// Applies one consumer-group record; returns by how much it changed the
/// number of members (of every group).
pub(crate) fn replay(groups: &mut BTreeMap<String, ConsumerGroup>, record: &Record) -> isize {
    let mut joined = 0;
    match record {
        Record::ConsumerGroupEpoch {
            group_id,
            epoch,
            subscription,
        } => {
            let g = group(groups, group_id);
            g.epoch = *epoch;
            g.subscription = subscription.clone();
        }
        Record::ConsumerGroupTombstone { group_id } => {
            if let Some(g) = groups.remove(group_id) {
                joined -= g.members.len() as isize;
            }
        }
        Record::ConsumerMember(r) => {
            let g = group(groups, &r.group_id);
            let m = g.members.entry(r.member_id.clone()).or_insert_with(|| {
                joined += 1;
                ConsumerMember::new(&r.member_id)
            });
            if let Some(old) = &m.instance_id {
                if Some(old) != r.instance_id.as_ref()
                    && g.static_members.get(old) == Some(&r.member_id)
                {
                    g.static_members.remove(old);
                }
            }
            m.instance_id = r.instance_id.clone();
            m.rack_id = r.rack_id.clone();
            m.client_id = r.client_id.clone();
            m.client_host = r.client_host.clone();
            m.rebalance_timeout_ms = r.rebalance_timeout_ms;
            let names: BTreeSet<String> = r.subscribed_topic_names.iter().cloned().collect();
            if m.subscribed_topic_names != names {
                let old = std::mem::replace(&mut m.subscribed_topic_names, names);
                for name in &old {
                    count_subscribers(&mut g.name_subscribers, Some(name), -1);
                }
                for name in &m.subscribed_topic_names {
                    count_subscribers(&mut g.name_subscribers, Some(name), 1);
                }
            }
            if m.subscribed_topic_regex != r.subscribed_topic_regex {
                let old = std::mem::replace(
                    &mut m.subscribed_topic_regex,
                    r.subscribed_topic_regex.clone(),
                );
                count_subscribers(&mut g.regex_subscribers, old.as_deref(), -1);
                count_subscribers(
                    &mut g.regex_subscribers,
                    r.subscribed_topic_regex.as_deref(),
                    1,
                );
            }
            m.server_assignor = r.server_assignor.clone();
            m.classic = r.classic.clone();
            if let Some(i) = &r.instance_id {
                g.static_members.insert(i.clone(), r.member_id.clone());
            }
        }
        Record::ConsumerMemberTombstone {
            group_id,
            member_id,
        } => {
            if let Some(g) = groups.get_mut(group_id) {
                if let Some(m) = g.members.remove(member_id) {
                    joined -= 1;
                    g.index_member(&m, false);
                    count_subscribers(
                        &mut g.regex_subscribers,
                        m.subscribed_topic_regex.as_deref(),
                        -1,
                    );
                    for name in &m.subscribed_topic_names {
                        count_subscribers(&mut g.name_subscribers, Some(name), -1);
                    }
                    if let Some(i) = &m.instance_id {
                        if g.static_members.get(i) == Some(member_id) {
                            g.static_members.remove(i);
                        }
                    }
                }
                g.targets.remove(member_id);
            }
        }
        Record::ConsumerTarget {
            group_id,
            member_id,
            assignment,
        } => {
            let g = group(groups, group_id);
            g.targets.insert(member_id.clone(), from_wire(assignment));
        }
        Record::ConsumerTargetEpoch {
            group_id,
            assignment_epoch,
        } => {
            let g = group(groups, group_id);
            g.assignment_epoch = *assignment_epoch;
        }
        Record::ConsumerCurrent(r) => {
            let g = group(groups, &r.group_id);
            let mut m = g.members.remove(&r.member_id).unwrap_or_else(|| {
                joined += 1;
                ConsumerMember::new(&r.member_id)
            });
            g.index_member(&m, false);
            m.state = MemberState::from_u8(r.state);
            m.member_epoch = r.member_epoch;
            m.previous_member_epoch = r.previous_member_epoch;
            m.assigned = from_wire(&r.assigned);
            m.pending_revocation = from_wire(&r.pending_revocation);
            g.index_member(&m, true);
            g.members.insert(r.member_id.clone(), m);
        }
        Record::ConsumerRegex {
            group_id,
            regex,
            topics,
            timestamp,
        } => {
            let g = group(groups, group_id);
            g.resolved_regexes.insert(
                regex.clone(),
                ResolvedRegex {
                    topics: topics.iter().cloned().collect(),
                    timestamp: *timestamp,
                },
            );
        }
        Record::ConsumerRegexTombstone { group_id, regex } => {
            if let Some(g) = groups.get_mut(group_id) {
                g.resolved_regexes.remove(regex);
            }
        }
        _ => {}
    }
    joined
}

/// The records that rebuild one consumer group (for snapshots and compaction).
pub(crate) fn snapshot(g: &ConsumerGroup, out: &mut Vec<Record>) {
    out.push(Record::ConsumerGroupEpoch {
        group_id: g.group_id.clone(),
        epoch: g.epoch,
        subscription: g.subscription.clone(),
    });
    for m in g.members.values() {
        out.push(Record::ConsumerMember(m.metadata_record(&g.group_id)));
        out.push(Record::ConsumerCurrent(m.current_record(&g.group_id)));
    }
    for (member_id, a) in &g.targets {
        out.push(Record::ConsumerTarget {
            group_id: g.group_id.clone(),
            member_id: member_id.clone(),
            assignment: to_wire(a),
        });
    }
    out.push(Record::ConsumerTargetEpoch {
        group_id: g.group_id.clone(),
        assignment_epoch: g.assignment_epoch,
    });
    for (regex, r) in &g.resolved_regexes {
        out.push(Record::ConsumerRegex {
            group_id: g.group_id.clone(),
            regex: regex.clone(),
            topics: r.topics.iter().cloned().collect(),
            timestamp: r.timestamp,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests;
