//! A consumer-protocol (KIP-848) member as the simulator models it, after the
//! Java client: one ConsumerGroupHeartbeat at the interval the broker gives,
//! and at once after it finishes revoking (to acknowledge) or after a new
//! assignment; revocations finish after the member's revoke delay; fenced or
//! unknown means its partitions are lost and it rejoins with epoch 0 and its
//! own member id. Like the classic model, a member that cannot confirm its
//! membership for a session timeout stops consuming.

use cohort_types::group::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupRequest,
};
use cohort_types::{ErrorCode, TopicId};
use std::collections::BTreeSet;

pub const TOPIC: &str = "t";
pub const TOPIC_ID: TopicId = TopicId([7; 16]);
pub const SESSION_MS: i64 = 10_000;
pub const REBALANCE_MS: i32 = 20_000;
pub const REQUEST_TIMEOUT_MS: i64 = 5_000;

pub struct ConsumerClient {
    pub name: String,
    pub member_id: String,
    pub epoch: i32,
    pub owned: BTreeSet<i32>,
    /// Partitions being revoked: still consumed until `until`.
    pub revoking: Option<(BTreeSet<i32>, i64)>,
    pub revoke_delay_ms: i64,
    pub in_flight: Option<(u64, i64)>,
    pub next_heartbeat: i64,
    /// Send at once (join, acknowledgement) rather than at the interval.
    pub urgent: bool,
    /// Next request carries everything (after joining or an error).
    pub full: bool,
    pub last_ok: i64,
    pub alive: bool,
}

impl ConsumerClient {
    pub fn new(
        name: String,
        member_id: String,
        start: i64,
        revoke_delay_ms: i64,
    ) -> ConsumerClient {
        ConsumerClient {
            name,
            member_id,
            epoch: 0,
            owned: BTreeSet::new(),
            revoking: None,
            revoke_delay_ms,
            in_flight: None,
            next_heartbeat: start,
            urgent: true,
            full: true,
            last_ok: start,
            alive: true,
        }
    }

    /// Whether the member is settled: nothing being revoked, nothing to say.
    pub fn settled(&self) -> bool {
        self.revoking.is_none() && !self.urgent && self.epoch > 0
    }

    /// Its connection broke: a request in flight on it fails at once (a
    /// transport error, as real clients see).
    pub fn connection_lost(&mut self, now: i64) {
        if let Some((corr, _)) = self.in_flight {
            self.in_flight = Some((corr, now));
        }
    }

    pub fn poll(&mut self, now: i64, corr: u64) -> Option<GroupRequest> {
        if !self.alive {
            return None;
        }
        if let Some((parts, until)) = &self.revoking {
            if now >= *until {
                for p in parts.clone() {
                    self.owned.remove(&p);
                }
                self.revoking = None;
                self.urgent = true;
            }
        }
        if !self.owned.is_empty() && now - self.last_ok > SESSION_MS {
            self.owned.clear();
            self.revoking = None;
        }
        if let Some((_, deadline)) = self.in_flight {
            if now < deadline {
                return None;
            }
            self.in_flight = None;
            self.full = true;
            self.urgent = true;
        }
        if !(self.urgent || now >= self.next_heartbeat) {
            return None;
        }
        self.urgent = false;
        self.in_flight = Some((corr, now + REQUEST_TIMEOUT_MS));
        let joining = self.epoch == 0;
        let full = self.full || joining;
        Some(GroupRequest::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatRequest {
                group_id: "g".into(),
                member_id: self.member_id.clone(),
                member_epoch: self.epoch,
                instance_id: None,
                rack_id: None,
                rebalance_timeout_ms: if full { REBALANCE_MS } else { -1 },
                subscribed_topic_names: full.then(|| vec![TOPIC.to_string()]),
                subscribed_topic_regex: None,
                server_assignor: None,
                // What it owns, including what it is still revoking; nothing when
                // (re)joining.
                owned: Some(if joining {
                    vec![]
                } else {
                    vec![(TOPIC_ID, self.owned.iter().copied().collect())]
                }),
                server_generates_member_id: false,
                client_id: self.name.clone(),
                client_host: "/sim".into(),
            },
        ))
    }

    /// The heartbeat that leaves the group (epoch -1), as a closing client
    /// sends it.
    pub fn leave(&self) -> ConsumerGroupHeartbeatRequest {
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: self.member_id.clone(),
            member_epoch: -1,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            owned: None,
            server_generates_member_id: false,
            client_id: self.name.clone(),
            client_host: "/sim".into(),
        }
    }

    pub fn on_response(
        &mut self,
        now: i64,
        corr: u64,
        sent_at: i64,
        r: ConsumerGroupHeartbeatResponse,
    ) {
        match self.in_flight {
            Some((c, _)) if c == corr => self.in_flight = None,
            _ => return,
        }
        match r.error {
            ErrorCode::NONE => {
                self.full = false;
                self.last_ok = self.last_ok.max(sent_at);
                self.epoch = r.member_epoch;
                self.next_heartbeat = now + r.heartbeat_interval_ms.max(1) as i64;
                if let Some(a) = r.assignment {
                    let target: BTreeSet<i32> = a
                        .iter()
                        .filter(|(t, _)| *t == TOPIC_ID)
                        .flat_map(|(_, ps)| ps.iter().copied())
                        .collect();
                    let revoke: BTreeSet<i32> = self.owned.difference(&target).copied().collect();
                    let added = target.difference(&self.owned).count() > 0;
                    // Given partitions are free: their owner revoked them first.
                    self.owned.extend(target.iter().copied());
                    if !revoke.is_empty() {
                        match &mut self.revoking {
                            Some((parts, _)) => parts.extend(revoke),
                            None => self.revoking = Some((revoke, now + self.revoke_delay_ms)),
                        }
                    }
                    if added {
                        self.urgent = true;
                    }
                }
            }
            ErrorCode::FENCED_MEMBER_EPOCH | ErrorCode::UNKNOWN_MEMBER_ID => {
                // Fenced: the partitions are lost; rejoin with the same id.
                self.owned.clear();
                self.revoking = None;
                self.epoch = 0;
                self.full = true;
                self.urgent = true;
            }
            _ => {
                self.full = true;
                self.next_heartbeat = now + 100;
            }
        }
    }
}
