//! A classic-protocol consumer as the simulator models it: librdkafka-like
//! join / sync / heartbeat, eager (range) or cooperative (cooperative-sticky),
//! with request timeouts and retries, and the client-side rule that keeps a
//! cut-off member from consuming: no successful heartbeat for a session timeout
//! means its partitions are lost.

use crate::consumer::TOPIC;
use bytes::Bytes;
use cohort_coordinator::embedded;
use cohort_types::group::*;
use cohort_types::ErrorCode;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Eager,
    Cooperative,
    /// The KIP-848 consumer protocol (see `consumer`).
    Consumer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Must (re)join; `at` is when the client will send (a slow member's
    /// revocation delays it).
    NeedJoin {
        at: i64,
    },
    Joining,
    Syncing,
    Stable,
}

pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 20_000;
pub const HEARTBEAT_MS: i64 = 1_000;
/// How long a client waits for any answer before giving up on it.
pub const REQUEST_TIMEOUT_MS: i64 = 30_000;

pub struct Client {
    pub name: String,
    pub style: Style,
    pub member_id: String,
    pub generation: i32,
    pub phase: Phase,
    /// What the application consumes right now.
    pub owned: BTreeSet<i32>,
    /// The request the client waits on: (correlation, kind, deadline).
    pub in_flight: Option<(u64, &'static str, i64)>,
    pub next_heartbeat: i64,
    /// Send time of the last heartbeat (or sync) that succeeded.
    pub last_ok: i64,
    /// How long this member takes to revoke (slow members take seconds).
    pub revoke_delay_ms: i64,
    /// Partitions being revoked: still consumed until the revocation finishes.
    pub revoking: Option<(BTreeSet<i32>, i64)>,
    /// What the last JoinGroup said this member owns.
    pub claimed: BTreeSet<i32>,
    pub alive: bool,
    /// Test-only fault: an eager member that does not revoke before rejoining.
    pub bug_keep_partitions: bool,
}

/// What a client wants sent.
pub struct Send {
    pub corr: u64,
    pub request: GroupRequest,
}

/// A subscription as a client embeds it in its JoinGroup (the consumer
/// protocol's ConsumerProtocolSubscription, version 1: topics and owned
/// partitions), so the coordinator can carry it into a consumer group.
pub fn subscription(owned: &BTreeSet<i32>) -> Bytes {
    Bytes::from(embedded::write_subscription(&embedded::Subscription {
        version: 1,
        topics: vec![TOPIC.to_string()],
        user_data: None,
        owned: vec![(TOPIC.to_string(), owned.iter().copied().collect())],
        generation: -1,
        rack: None,
    }))
}

/// The partitions a subscription says its member owns (empty if it does
/// not parse).
pub fn subscribed_owned(b: &[u8]) -> BTreeSet<i32> {
    embedded::parse_subscription(b)
        .map(|s| s.owned.into_iter().flat_map(|(_, ps)| ps).collect())
        .unwrap_or_default()
}

pub fn assignment(ps: &BTreeSet<i32>) -> Bytes {
    Bytes::from(embedded::write_assignment(
        1,
        &[(TOPIC.to_string(), ps.iter().copied().collect())],
    ))
}

/// The partitions an assignment gives (empty if it does not parse).
pub fn assigned(b: &[u8]) -> BTreeSet<i32> {
    embedded::parse_assignment(b)
        .map(|a| a.partitions.into_iter().flat_map(|(_, ps)| ps).collect())
        .unwrap_or_default()
}

impl Client {
    pub fn new(name: String, style: Style, now: i64, revoke_delay_ms: i64) -> Client {
        Client {
            name,
            style,
            member_id: String::new(),
            generation: -1,
            phase: Phase::NeedJoin { at: now },
            owned: BTreeSet::new(),
            in_flight: None,
            next_heartbeat: now,
            last_ok: now,
            revoke_delay_ms,
            revoking: None,
            claimed: BTreeSet::new(),
            alive: true,
            bug_keep_partitions: false,
        }
    }

    fn protocol(&self) -> &'static str {
        match self.style {
            Style::Eager => "range",
            Style::Cooperative | Style::Consumer => "cooperative-sticky",
        }
    }

    /// Starts a rejoin: eager members give up everything first.
    pub fn rejoin(&mut self, now: i64) {
        if matches!(self.phase, Phase::NeedJoin { .. } | Phase::Joining) {
            return;
        }
        let delay =
            if self.style == Style::Eager && !self.owned.is_empty() && !self.bug_keep_partitions {
                // onPartitionsRevoked runs (slowly) before the JoinGroup goes out.
                self.revoking = Some((self.owned.clone(), now + self.revoke_delay_ms));
                self.revoke_delay_ms
            } else {
                0
            };
        self.phase = Phase::NeedJoin { at: now + delay };
        self.in_flight = None;
    }

    fn lose_everything(&mut self, now: i64, reset_member: bool) {
        self.owned.clear();
        self.revoking = None;
        if reset_member {
            self.member_id.clear();
        }
        self.generation = -1;
        self.phase = Phase::NeedJoin { at: now };
        self.in_flight = None;
    }

    /// What to send now, if anything.
    /// Its connection broke: a request in flight on it fails at once (a
    /// transport error, as real clients see), and the client goes on over a
    /// new connection as its own rules say.
    pub fn connection_lost(&mut self, now: i64) {
        if let Some((corr, kind, _)) = self.in_flight {
            self.in_flight = Some((corr, kind, now));
        }
    }

    pub fn poll(&mut self, now: i64, corr: u64, topic_partitions: i32) -> Option<Send> {
        if !self.alive {
            return None;
        }
        let _ = topic_partitions;
        if let Some((parts, until)) = &self.revoking {
            if now >= *until {
                for p in parts.clone() {
                    self.owned.remove(&p);
                }
                self.revoking = None;
            }
        }
        // A member that cannot confirm its membership stops consuming, and
        // (as librdkafka and the Java client do) rejoins: the coordinator may
        // still count it a member with those partitions.
        if !self.owned.is_empty() && now - self.last_ok > SESSION_MS as i64 {
            self.owned.clear();
            self.revoking = None;
            if self.phase == Phase::Stable {
                self.phase = Phase::NeedJoin { at: now };
            }
        }
        if let Some((_, _, deadline)) = self.in_flight {
            if now < deadline {
                return None;
            }
            // Timed out: start over with a fresh join (keeping the member id).
            self.in_flight = None;
            if self.phase != Phase::Stable {
                self.phase = Phase::NeedJoin { at: now };
            }
        }
        match self.phase {
            Phase::NeedJoin { at } if now >= at => {
                self.phase = Phase::Joining;
                // An eager member revoked everything before rejoining, and
                // reports nothing owned (as the Java client and librdkafka
                // do); a cooperative one reports what it still owns.
                let metadata = match self.style {
                    Style::Eager => subscription(&BTreeSet::new()),
                    Style::Cooperative | Style::Consumer => subscription(&self.owned),
                };
                self.claimed = self.owned.clone();
                self.in_flight = Some((corr, "join", now + REBALANCE_MS as i64 + 5000));
                Some(Send {
                    corr,
                    request: GroupRequest::JoinGroup(JoinGroupRequest {
                        group_id: "g".into(),
                        session_timeout_ms: SESSION_MS,
                        rebalance_timeout_ms: REBALANCE_MS,
                        member_id: self.member_id.clone(),
                        group_instance_id: None,
                        protocol_type: "consumer".into(),
                        protocols: vec![(self.protocol().into(), metadata)],
                        reason: None,
                        requires_known_member_id: true,
                        supports_skip_assignment: false,
                        client_id: self.name.clone(),
                        client_host: "/sim".into(),
                    }),
                })
            }
            Phase::Stable if now >= self.next_heartbeat => {
                self.next_heartbeat = now + HEARTBEAT_MS;
                self.in_flight = Some((
                    corr,
                    "heartbeat",
                    now + REQUEST_TIMEOUT_MS.min(SESSION_MS as i64),
                ));
                Some(Send {
                    corr,
                    request: GroupRequest::Heartbeat(HeartbeatRequest {
                        group_id: "g".into(),
                        generation_id: self.generation,
                        member_id: self.member_id.clone(),
                        group_instance_id: None,
                    }),
                })
            }
            _ => None,
        }
    }

    /// Handles an answer; returns a follow-up request (SyncGroup) if one is due.
    pub fn on_response(
        &mut self,
        now: i64,
        corr: u64,
        sent_at: i64,
        resp: GroupResponse,
        partitions: i32,
        next_corr: u64,
    ) -> Option<Send> {
        match self.in_flight {
            Some((c, _, _)) if c == corr => self.in_flight = None,
            // A duplicate, or the answer to a request given up on.
            _ => return None,
        }
        match resp {
            GroupResponse::JoinGroup(j) => self.on_join(now, j, partitions, next_corr),
            GroupResponse::SyncGroup(s) => {
                self.on_sync(now, sent_at, s);
                None
            }
            GroupResponse::Heartbeat(e) => {
                match e {
                    ErrorCode::NONE => self.last_ok = self.last_ok.max(sent_at),
                    ErrorCode::REBALANCE_IN_PROGRESS => {
                        self.last_ok = self.last_ok.max(sent_at);
                        self.rejoin(now);
                    }
                    ErrorCode::ILLEGAL_GENERATION => self.lose_everything(now, false),
                    _ => self.lose_everything(now, true),
                }
                None
            }
            _ => None,
        }
    }

    fn on_join(
        &mut self,
        now: i64,
        j: JoinGroupResponse,
        partitions: i32,
        corr: u64,
    ) -> Option<Send> {
        match j.error {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                self.member_id = j.member_id;
                self.phase = Phase::NeedJoin { at: now };
                return None;
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::FENCED_INSTANCE_ID => {
                self.lose_everything(now, true);
                return None;
            }
            _ => {
                self.phase = Phase::NeedJoin { at: now + 100 };
                return None;
            }
        }
        self.member_id = j.member_id.clone();
        self.generation = j.generation_id;
        self.phase = Phase::Syncing;
        let assignments = if j.leader == self.member_id {
            let plan = match self.style {
                Style::Eager => {
                    let ids: Vec<String> = j.members.iter().map(|m| m.member_id.clone()).collect();
                    cohort_assign::range(&ids, partitions)
                }
                Style::Cooperative | Style::Consumer => {
                    let owned: BTreeMap<String, BTreeSet<i32>> = j
                        .members
                        .iter()
                        .map(|m| (m.member_id.clone(), subscribed_owned(&m.metadata)))
                        .collect();
                    cohort_assign::cooperative_sticky(&owned, partitions)
                }
            };
            plan.into_iter()
                .map(|(m, ps)| (m, assignment(&ps)))
                .collect()
        } else {
            vec![]
        };
        self.in_flight = Some((corr, "sync", now + REBALANCE_MS as i64 + 5000));
        Some(Send {
            corr,
            request: GroupRequest::SyncGroup(SyncGroupRequest {
                group_id: "g".into(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some(self.protocol().into()),
                assignments,
            }),
        })
    }

    fn on_sync(&mut self, now: i64, sent_at: i64, s: SyncGroupResponse) {
        match s.error {
            ErrorCode::NONE => {
                let assigned = assigned(&s.assignment);
                self.last_ok = self.last_ok.max(sent_at);
                self.next_heartbeat = now + HEARTBEAT_MS;
                match self.style {
                    Style::Eager => {
                        if self.bug_keep_partitions {
                            self.owned.extend(assigned);
                        } else {
                            self.owned = assigned;
                        }
                        self.phase = Phase::Stable;
                    }
                    Style::Cooperative | Style::Consumer => {
                        let revoked: BTreeSet<i32> =
                            self.owned.difference(&assigned).copied().collect();
                        // Claimed in the JoinGroup but not assigned: the leader
                        // withheld it to move it. If this member has meanwhile
                        // lost it (its session ran out during the rebalance),
                        // there is nothing to revoke, but it must still rejoin
                        // so a follow-up round hands the partition on.
                        let withheld = self.claimed.difference(&assigned).next().is_some();
                        // Newly assigned partitions are free: their old owner
                        // revoked them before this round.
                        self.owned.extend(assigned.iter().copied());
                        self.phase = Phase::Stable;
                        if !revoked.is_empty() {
                            // KIP-429: finish revoking, then rejoin so the
                            // partitions can go to their new owner.
                            let until = now + self.revoke_delay_ms;
                            self.revoking = Some((revoked, until));
                            self.phase = Phase::NeedJoin { at: until };
                        } else if withheld {
                            self.phase = Phase::NeedJoin { at: now };
                        }
                    }
                }
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.phase = Phase::Stable;
                self.rejoin(now);
            }
            ErrorCode::ILLEGAL_GENERATION => self.lose_everything(now, false),
            _ => self.lose_everything(now, true),
        }
    }
}
