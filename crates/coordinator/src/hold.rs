//! Held heartbeats for the classic protocol: a long poll. A classic member
//! hears of a rebalance only in the answer to its next Heartbeat, sent every
//! heartbeat.interval.ms (3 s by default), so every rebalance costs up to an
//! interval before anyone rejoins. With `classic_hold_heartbeat_ms` set, the
//! answer to a member of a stable group is kept back (a parked request, as a
//! JoinGroup is parked) and given the moment anything changes:
//!
//! - a rebalance starts in the group (the member must rejoin now);
//! - another request arrives on the same connection (answers go out in order,
//!   so a commit or a leave must never wait behind a held heartbeat);
//! - the connection ends;
//! - the hold is up.
//!
//! Each release answers what a Heartbeat would get at that moment (it re-runs
//! the check), so a member removed meanwhile hears UNKNOWN_MEMBER_ID and one
//! whose group is rebalancing hears REBALANCE_IN_PROGRESS.
//!
//! The same setting bounds a held SyncGroup answer: a member with nothing to
//! do in a cooperative round that must be followed by another hears of that
//! round in its SyncGroup answer (see `classic::follow_up`). It is released
//! by the same events, and answers what a SyncGroup of its round gets then.
//!
//! How long a client tolerates a held heartbeat (read from each client's
//! source): librdkafka times a classic Heartbeat out after session.timeout.ms;
//! the Java client after request.timeout.ms (30 s), and it sends the next one
//! every interval even while one is out, which releases the first; kafka-python
//! 3.x after request_timeout_ms (30 s), 2.x effectively after about 7 s;
//! franz-go after 10 s. The hold is also kept below every member's session
//! timeout by a margin.

use crate::classic::AwaitingSync;
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{Connection, Coordinator, Out, RequestId};
use cohort_types::group::{GroupResponse, HeartbeatRequest};
use cohort_types::{ErrorCode, Millis};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(crate) struct HeldHeartbeat {
    request: HeartbeatRequest,
    connection: Connection,
}

/// A SyncGroup answer kept back until the follow-up round starts.
#[derive(Debug, Clone)]
pub(crate) struct HeldSync {
    group_id: String,
    member_id: String,
    instance_id: Option<String>,
    generation: i32,
    connection: Connection,
    /// Counted as joined in the follow-up round (see `carry_held_syncs`).
    carried: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Held {
    by_request: BTreeMap<RequestId, HeldHeartbeat>,
    syncs: BTreeMap<RequestId, HeldSync>,
}

impl Held {
    pub fn len(&self) -> usize {
        self.by_request.len()
    }
}

/// A held answer leaves at least this long before the member's session ends.
const SESSION_MARGIN_MS: Millis = 1_000;

impl Coordinator {
    /// Answers a classic Heartbeat now, or parks it (see the module comment).
    pub(crate) fn heartbeat_or_hold(
        &mut self,
        now: Millis,
        id: RequestId,
        r: HeartbeatRequest,
        connection: Connection,
        out: &mut Out,
    ) {
        let e = self.heartbeat(now, r.clone());
        let hold = self.classic_hold_ms(&r);
        if e != ErrorCode::NONE || hold <= 0 {
            out.reply(id, GroupResponse::Heartbeat(e));
            return;
        }
        self.held.by_request.insert(
            id,
            HeldHeartbeat {
                request: r,
                connection,
            },
        );
        self.timers
            .arm(TimerKey::HeldHeartbeat { request: id }, now + hold);
    }

    /// How long this member's heartbeat may be held: only in a stable group
    /// (or as a classic member of a consumer group with nothing to do), and
    /// well inside its session.
    fn classic_hold_ms(&self, r: &HeartbeatRequest) -> Millis {
        if let Some(g) = self.consumer_groups.get(&r.group_id) {
            let session = g
                .members
                .get(&r.member_id)
                .map_or(0, Self::classic_session_ms);
            return self
                .config
                .classic_hold_heartbeat_ms
                .min(session - SESSION_MARGIN_MS);
        }
        let Some(g) = self.groups.get(&r.group_id) else {
            return 0;
        };
        if !g.is(crate::classic::GroupState::Stable) {
            return 0;
        }
        let session = g
            .members
            .get(&r.member_id)
            .map_or(0, |m| m.session_timeout_ms as Millis);
        self.config
            .classic_hold_heartbeat_ms
            .min(session - SESSION_MARGIN_MS)
    }

    /// Answers the held heartbeats that match, with what a Heartbeat gets now.
    fn release_held(&mut self, now: Millis, out: &mut Out, which: impl Fn(&HeldHeartbeat) -> bool) {
        let ids: Vec<RequestId> = self
            .held
            .by_request
            .iter()
            .filter(|(_, h)| which(h))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.answer_held(now, id, out);
        }
    }

    /// A rebalance started (or the group otherwise changed): its members
    /// hear now.
    pub(crate) fn release_group(&mut self, now: Millis, group: &str, out: &mut Out) {
        // Carried SyncGroups wait for their round (or their deadline).
        self.release_syncs(out, |h| h.group_id == group && !h.carried);
        if self.held.by_request.is_empty() {
            return;
        }
        self.release_held(now, out, |h| h.request.group_id == group);
    }

    /// A member left or was removed: its held SyncGroup is answered now.
    pub(crate) fn release_member_sync(&mut self, group: &str, member: &str, out: &mut Out) {
        self.release_syncs(out, |h| h.group_id == group && h.member_id == member);
    }

    fn release_syncs(&mut self, out: &mut Out, which: impl Fn(&HeldSync) -> bool) {
        if self.held.syncs.is_empty() {
            return;
        }
        let ids: Vec<RequestId> = self
            .held
            .syncs
            .iter()
            .filter(|(_, h)| which(h))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.answer_held_sync(id, out);
        }
    }

    /// Answers a completed round's SyncGroup now, or holds it while a
    /// follow-up round is certain and this member has nothing to do in the
    /// meantime (see `classic::follow_up`).
    pub(crate) fn answer_sync_or_hold(
        &mut self,
        now: Millis,
        group_id: &str,
        member_id: &str,
        parked: AwaitingSync,
        out: &mut Out,
    ) {
        let g = &self.groups[group_id];
        let m = &g.members[member_id];
        let hold = if g.follow_up_hold.contains(member_id) {
            self.config
                .classic_hold_heartbeat_ms
                .min(m.session_timeout_ms as Millis - SESSION_MARGIN_MS)
        } else {
            0
        };
        if hold <= 0 {
            let resp = self.completed_sync_answer(
                group_id,
                member_id,
                m.group_instance_id.as_deref(),
                g.generation,
            );
            out.reply(parked.request, GroupResponse::SyncGroup(resp));
            return;
        }
        self.held.syncs.insert(
            parked.request,
            HeldSync {
                group_id: group_id.to_string(),
                member_id: member_id.to_string(),
                instance_id: m.group_instance_id.clone(),
                generation: g.generation,
                connection: parked.connection,
                carried: false,
            },
        );
        self.timers.arm(
            TimerKey::HeldSync {
                request: parked.request,
            },
            now + hold,
        );
    }

    /// Answers a held SyncGroup with what it gets now: its assignment if no
    /// round followed within the hold, REBALANCE_IN_PROGRESS once one began
    /// (a member carried into that round is no longer counted as joined: it
    /// must now rejoin itself).
    pub(crate) fn answer_held_sync(&mut self, request: RequestId, out: &mut Out) {
        if let Some(h) = self.held.syncs.remove(&request) {
            self.timers.cancel(&TimerKey::HeldSync { request });
            if h.carried {
                if let Some(m) = self
                    .groups
                    .get_mut(&h.group_id)
                    .and_then(|g| g.members.get_mut(&h.member_id))
                {
                    m.carried = false;
                }
            }
            let resp = self.completed_sync_answer(
                &h.group_id,
                &h.member_id,
                h.instance_id.as_deref(),
                h.generation,
            );
            out.reply(request, GroupResponse::SyncGroup(resp));
        }
    }

    /// The follow-up round started: members whose SyncGroup answers are held
    /// are counted as joined with what they said in their last JoinGroup
    /// (what they own is unchanged since), so the round need not wait for
    /// them to hear of it and rejoin. Their held SyncGroup is answered with
    /// the assignment of that round (see `classic::follow_up`).
    pub(crate) fn carry_held_syncs(&mut self, group: &str) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        for h in self.held.syncs.values_mut() {
            if h.group_id != group || h.carried {
                continue;
            }
            if let Some(m) = g.members.get_mut(&h.member_id) {
                if m.awaiting_join.is_none() {
                    m.carried = true;
                    h.carried = true;
                }
            }
        }
    }

    /// The round a member was carried into completed: its held SyncGroup
    /// becomes an ordinary parked one, answered with this round's
    /// assignment when the leader's SyncGroup comes.
    pub(crate) fn take_carried_sync(&mut self, group: &str, member: &str) -> Option<AwaitingSync> {
        let request = self
            .held
            .syncs
            .iter()
            .find(|(_, h)| h.carried && h.group_id == group && h.member_id == member)
            .map(|(id, _)| *id)?;
        let h = self.held.syncs.remove(&request)?;
        self.timers.cancel(&TimerKey::HeldSync { request });
        Some(AwaitingSync {
            request,
            connection: h.connection,
        })
    }

    /// A round completed with nobody who really joined: its carried members
    /// hear REBALANCE_IN_PROGRESS and rejoin themselves.
    pub(crate) fn uncarry_group(&mut self, group: &str, out: &mut Out) {
        let ids: Vec<RequestId> = self
            .held
            .syncs
            .iter()
            .filter(|(_, h)| h.carried && h.group_id == group)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.answer_held_sync(id, out);
        }
    }

    /// Classic members of a consumer group hear when their group changed in
    /// a way that makes them rejoin: its epoch moved, they must revoke, or
    /// partitions they wait for were released. Every such change is a record
    /// of the group, so only groups with records in this round are checked.
    pub(crate) fn release_changed_consumer_groups(&mut self, now: Millis, out: &mut Out) {
        if self.held.by_request.is_empty() {
            return;
        }
        let changed: BTreeSet<&str> = out
            .effects
            .records
            .iter()
            .filter_map(consumer_group_of)
            .collect();
        if changed.is_empty() {
            return;
        }
        let due: Vec<RequestId> = self
            .held
            .by_request
            .iter()
            .filter(|(_, h)| {
                changed.contains(h.request.group_id.as_str()) && !self.still_held(&h.request)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.answer_held(now, id, out);
        }
    }

    /// Whether a held heartbeat of a (possibly former) consumer group would
    /// still be answered NONE.
    fn still_held(&self, r: &HeartbeatRequest) -> bool {
        let Some(g) = self.consumer_groups.get(&r.group_id) else {
            return false;
        };
        match g.members.get(&r.member_id) {
            Some(m) => {
                m.member_epoch == r.generation_id && !self.classic_must_rejoin(&r.group_id, m)
            }
            None => false,
        }
    }

    /// Another request came on `connection`, or it ended.
    pub(crate) fn release_connection(
        &mut self,
        now: Millis,
        connection: Connection,
        out: &mut Out,
    ) {
        self.release_syncs(out, |h| h.connection == connection);
        if self.held.by_request.is_empty() {
            return;
        }
        self.release_held(now, out, |h| h.connection == connection);
    }

    /// Answers a held heartbeat with what a Heartbeat gets now: its hold is
    /// up, or something released it.
    pub(crate) fn answer_held(&mut self, now: Millis, request: RequestId, out: &mut Out) {
        if let Some(h) = self.held.by_request.remove(&request) {
            self.timers.cancel(&TimerKey::HeldHeartbeat { request });
            let e = self.heartbeat(now, h.request);
            out.reply(request, GroupResponse::Heartbeat(e));
        }
    }

    /// Heartbeats held right now (for tests and the simulator).
    pub fn held_heartbeats(&self) -> usize {
        self.held.len()
    }

    /// SyncGroup answers held right now (for tests and the simulator).
    pub fn held_syncs(&self) -> usize {
        self.held.syncs.len()
    }
}

/// The consumer group a record changes in a way a classic member's heartbeat
/// answer depends on.
fn consumer_group_of(r: &Record) -> Option<&str> {
    match r {
        Record::ConsumerGroupEpoch { group_id, .. }
        | Record::ConsumerMemberTombstone { group_id, .. }
        | Record::ConsumerGroupConverted { group_id }
        | Record::ConsumerGroupTombstone { group_id } => Some(group_id),
        Record::ConsumerCurrent(c) => Some(&c.group_id),
        _ => None,
    }
}
