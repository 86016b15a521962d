//! Failure detection by connection. A member killed by a signal or by the
//! out-of-memory killer has its sockets closed by the kernel, so the broker
//! sees its connection end long before its session times out (45 s by
//! default). Kafka ignores that and waits for the session timeout.
//!
//! A closed connection alone does not prove the member is gone: a client
//! whose connection broke reconnects, and until it hears otherwise it keeps
//! consuming its partitions. Giving them to another member while it does
//! would give them two owners. So Cohort removes a dynamic member only when
//! its last connection has ended and it has also missed its next heartbeat:
//! a consumer-protocol member's next heartbeat is due after the interval its
//! last answer gave it; a classic member's after the gap between its last two
//! Heartbeat requests (its heartbeat.interval.ms, which the broker is never
//! told). It is removed once that cadence plus `member_disconnect_grace_ms`
//! has passed since its last heartbeat (and the grace since its connection
//! closed) without a request from it on any connection.
//! A member that reconnects and keeps its cadence is never removed; one that
//! is removed anyway (it was silent for a whole interval and the grace) is
//! fenced by its generation or member epoch like any member whose session
//! expired. A member seen only once has no cadence yet and waits for its
//! session timeout. Static members keep their session timeout: they are
//! meant to come back.
//!
//! Which connection each member last spoke on is soft state: it is not in the
//! log, and a coordinator rebuilt from its log starts without it (members are
//! then found again by their next request).

use crate::timers::TimerKey;
use crate::{Connection, Coordinator, Out};
use cohort_types::group::{GroupRequest, GroupResponse};
use cohort_types::{ErrorCode, Millis};

use std::collections::{BTreeSet, HashMap};

type MemberKey = (String, String);

#[derive(Debug, Clone, Copy)]
struct Spoke {
    /// The connection it last spoke on; None once that ended.
    connection: Option<Connection>,
    /// When its last heartbeat came.
    heartbeat_at: Option<Millis>,
    /// How long after that its next one is due.
    cadence: Option<Millis>,
}

/// What a request says of when the member speaks next.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cadence {
    /// A classic Heartbeat: the gap since its previous one.
    Observed,
    /// A consumer-protocol heartbeat answered with this interval.
    Given(Millis),
    /// Another request: says nothing of the heartbeat cadence.
    Unchanged,
}

#[derive(Default, Debug)]
pub struct Connections {
    by_member: HashMap<MemberKey, Spoke>,
    members: HashMap<Connection, BTreeSet<MemberKey>>,
}

impl Connections {
    /// `member` of `group` spoke on `connection`.
    fn spoke(&mut self, key: MemberKey, connection: Connection, now: Millis, cadence: Cadence) {
        let before = self.by_member.get(&key).copied();
        let (heartbeat_at, cadence) = match (cadence, before) {
            (Cadence::Given(ms), _) => (Some(now), Some(ms)),
            (
                Cadence::Observed,
                Some(Spoke {
                    heartbeat_at: Some(last),
                    ..
                }),
            ) if now > last => (Some(now), Some(now - last)),
            (Cadence::Observed, b) => (Some(now), b.and_then(|b| b.cadence)),
            (Cadence::Unchanged, b) => (b.and_then(|b| b.heartbeat_at), b.and_then(|b| b.cadence)),
        };
        self.by_member.insert(
            key.clone(),
            Spoke {
                connection: Some(connection),
                heartbeat_at,
                cadence,
            },
        );
        if let Some(old) = before.and_then(|b| b.connection) {
            if old != connection {
                if let Some(set) = self.members.get_mut(&old) {
                    set.remove(&key);
                    if set.is_empty() {
                        self.members.remove(&old);
                    }
                }
            }
        }
        self.members.entry(connection).or_default().insert(key);
    }

    /// The members whose last request came on `connection`, which ended,
    /// with when each one's next heartbeat is due (None: not known yet).
    fn closed(&mut self, connection: Connection) -> Vec<(MemberKey, Option<Millis>)> {
        let members = self.members.remove(&connection).unwrap_or_default();
        members
            .into_iter()
            .filter_map(|key| {
                let s = self.by_member.get_mut(&key)?;
                s.connection = None;
                let due = s.heartbeat_at.zip(s.cadence).map(|(at, c)| at + c);
                Some((key, due))
            })
            .collect()
    }

    fn is_connected(&self, key: &MemberKey) -> bool {
        self.by_member
            .get(key)
            .is_some_and(|s| s.connection.is_some())
    }

    fn forget(&mut self, key: &MemberKey) {
        self.by_member.remove(key);
    }

    /// Members on an open connection.
    pub fn len(&self) -> usize {
        self.by_member
            .values()
            .filter(|s| s.connection.is_some())
            .count()
    }
}

/// The member a group request speaks for, if it names one.
pub(crate) fn speaker(request: &GroupRequest) -> Option<MemberKey> {
    let (group, member) = match request {
        GroupRequest::JoinGroup(r) => (&r.group_id, &r.member_id),
        GroupRequest::SyncGroup(r) => (&r.group_id, &r.member_id),
        GroupRequest::Heartbeat(r) => (&r.group_id, &r.member_id),
        GroupRequest::OffsetCommit(r) => (&r.group_id, &r.member_id),
        GroupRequest::ConsumerGroupHeartbeat(r) => (&r.group_id, &r.member_id),
        _ => return None,
    };
    (!member.is_empty()).then(|| (group.clone(), member.clone()))
}

impl Coordinator {
    /// After a request was handled: if it spoke for a member that (still or
    /// now) belongs to its group, that member is alive on `connection`.
    pub(crate) fn note_speaker(
        &mut self,
        now: Millis,
        request_speaker: Option<(MemberKey, Cadence)>,
        connection: Connection,
    ) {
        let Some((key, cadence)) = request_speaker else {
            return;
        };
        if !self.is_member(&key.0, &key.1) {
            self.connections.forget(&key);
            return;
        }
        self.timers.cancel(&TimerKey::Disconnected {
            group: key.0.clone(),
            member: key.1.clone(),
        });
        self.connections.spoke(key, connection, now, cadence);
    }

    /// What a request's answer (None while it is held) says of the
    /// member's cadence. A classic Heartbeat counts whatever it was answered
    /// (clients heartbeat on their interval even through a rebalance, and a
    /// held one has no answer yet); a consumer heartbeat's answer names the
    /// interval.
    pub(crate) fn cadence(classic_heartbeat: bool, reply: Option<&GroupResponse>) -> Cadence {
        match reply {
            _ if classic_heartbeat => Cadence::Observed,
            Some(GroupResponse::ConsumerGroupHeartbeat(h)) if h.error == ErrorCode::NONE => {
                Cadence::Given(h.heartbeat_interval_ms.max(0) as Millis)
            }
            _ => Cadence::Unchanged,
        }
    }

    fn is_member(&self, group: &str, member: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.members.contains_key(member))
            || self
                .consumer_groups
                .get(group)
                .is_some_and(|g| g.members.contains_key(member))
    }

    /// Static members are never removed for a closed connection.
    fn is_dynamic(&self, group: &str, member: &str) -> bool {
        if let Some(m) = self.groups.get(group).and_then(|g| g.members.get(member)) {
            return m.group_instance_id.is_none();
        }
        if let Some(m) = self
            .consumer_groups
            .get(group)
            .and_then(|g| g.members.get(member))
        {
            return m.instance_id.is_none();
        }
        false
    }

    /// A connection ended: each dynamic member that last spoke on it is
    /// removed once it misses its next request by the grace, unless it speaks
    /// again (see the module's comment).
    pub(crate) fn connection_closed(&mut self, now: Millis, connection: Connection) {
        let grace = self.config.member_disconnect_grace_ms;
        if grace < 0 {
            return;
        }
        for ((group, member), due) in self.connections.closed(connection) {
            let Some(due) = due else { continue };
            if self.is_dynamic(&group, &member) {
                self.timers.arm(
                    TimerKey::Disconnected { group, member },
                    due.max(now) + grace,
                );
            }
        }
    }

    /// The grace is up: remove the member unless it spoke again meanwhile.
    pub(crate) fn disconnect_grace_elapsed(
        &mut self,
        now: Millis,
        group: &str,
        member: &str,
        out: &mut Out,
    ) {
        let key = (group.to_string(), member.to_string());
        if self.connections.is_connected(&key) || !self.is_dynamic(group, member) {
            return;
        }
        if self
            .groups
            .get(group)
            .is_some_and(|g| g.members.contains_key(member))
        {
            self.remove_lost_member(now, group, member, "connection closed", out);
        } else {
            self.fence_member(now, group, member, "connection closed", out);
        }
    }

    /// What the coordinator knows of connections (for tests and the simulator).
    pub fn connected_members(&self) -> usize {
        self.connections.len()
    }
}
