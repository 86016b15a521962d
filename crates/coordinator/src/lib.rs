//! The group coordinator as a deterministic state machine.
//!
//! `handle(now, input) -> Effects` answers requests and timer ticks,
//! `replay(record)` is the only code that changes durable state (live handling
//! applies its own records through it), and `next_deadline()` says when the
//! driver must tick. There is no clock, no randomness (member ids come from
//! entropy passed in with a request), no I/O and no wire encoding in here.
//!
//! Replies are data: the driver must not release them before every record
//! emitted so far is durable.

mod admin;
pub mod classic;
mod connections;
pub mod consumer;
pub mod embedded;
mod hold;
mod offsets;
pub mod records;
pub mod timers;

use classic::ClassicGroup;
use cohort_types::group::{GroupRequest, GroupResponse};
use cohort_types::Millis;
pub use records::Record;
use std::collections::BTreeMap;
use timers::{TimerKey, Timers};

/// Identifies a request whose answer may come out of a later `handle` call.
pub type RequestId = u64;

/// Identifies the client connection a request came on (the shell numbers
/// them; they are never reused while the coordinator runs).
pub type Connection = u64;

#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// group.initial.rebalance.delay.ms
    pub initial_rebalance_delay_ms: i32,
    /// A new group's first rebalance also ends once this long passes without
    /// another member joining (0: only the delay ends it, as in Kafka).
    pub initial_rebalance_quiet_ms: i64,
    /// group.max.size
    pub max_group_size: usize,
    /// How long a member may sit in its first parked JoinGroup before it is
    /// dropped (Kafka's fixed 5 minutes).
    pub new_member_join_timeout_ms: i64,
    /// offsets.retention.minutes, in ms.
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms
    pub offsets_retention_check_interval_ms: i64,
    /// offset.metadata.max.bytes
    pub offset_metadata_max_bytes: usize,
    /// group.consumer.session.timeout.ms
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms: the longest interval a settled
    /// member of a consumer group is given (Kafka gives every member this).
    pub consumer_heartbeat_interval_ms: i32,
    /// Heartbeats per second settled consumer-protocol members may spend
    /// together; they get the shortest interval it allows, between the floor
    /// and `consumer_heartbeat_interval_ms` (see `consumer::cadence`). 0:
    /// every settled member gets `consumer_heartbeat_interval_ms`. The default,
    /// 2,000, is what 10,000 members send at Kafka's 5 s: Cohort never spends
    /// more on heartbeats than Kafka would for such a fleet. Measured with
    /// `cohort-heartbeat-bench --follow` at 100, 1,000 and 10,000 members:
    /// 16-21% of one core (83-105 us per paced heartbeat).
    pub consumer_heartbeat_budget_per_s: u32,
    /// The shortest interval the budget gives a settled member.
    pub consumer_heartbeat_interval_floor_ms: i32,
    /// The interval given to a member with reconciliation work pending
    /// (partitions to revoke, to pick up, or a new epoch to move to).
    pub consumer_reconcile_heartbeat_interval_ms: i32,
    /// group.consumer.max.size
    pub consumer_max_group_size: usize,
    /// group.consumer.assignment.interval.ms (Kafka 4.3, KIP-1263): a group's
    /// target assignment is computed at most once per interval. The first
    /// change after a quiet interval is assigned at once; changes arriving
    /// closer together (a burst of joins) share one computation at the end
    /// of the interval, so a join costs the same in a group of 10,000 as in
    /// one of 100. 0 computes on every change.
    pub consumer_assignment_interval_ms: i64,
    /// group.consumer.assignors: the first is the default.
    pub consumer_assignors: Vec<String>,
    /// Least time between two regex refreshes of one group (Kafka: a fixed
    /// 10 s), so topics created together are picked up by one rebalance.
    pub consumer_regex_refresh_min_interval_ms: i64,
    /// group.consumer.regex.refresh.interval.ms: re-resolve at least this often
    /// even when no topic was created.
    pub consumer_regex_refresh_interval_ms: i64,
    /// How long past its next expected request a dynamic member whose
    /// connection ended may stay silent before it is removed (see
    /// `connections`); -1 waits for the session timeout, as Kafka does.
    pub member_disconnect_grace_ms: i64,
    /// How long a classic member's Heartbeat answer may be held in a stable
    /// group, to be given the moment a rebalance starts (see `hold`); 0
    /// answers at once, as Kafka does. 2.5 s (the default) stays inside
    /// every tested client's heartbeat timeout at its defaults. While it is
    /// on, commits between JoinGroup and SyncGroup are accepted (`offsets`).
    pub classic_hold_heartbeat_ms: i64,
    /// Hold the SyncGroup answers of members with nothing to do in a
    /// cooperative round that must be followed by another, and carry them
    /// into that round (see `classic::follow_up`). Off by default: members
    /// then see one rebalance callback fewer (the empty assignment of the
    /// first round), which librdkafka's own test 0113 counts.
    pub classic_follow_up_hold: bool,
    /// group.consumer.migration.policy: which live (non-empty) groups may move
    /// between the classic and the consumer protocol. Empty groups always may.
    pub consumer_migration_policy: MigrationPolicy,
}

/// Kafka's ConsumerGroupMigrationPolicy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    pub fn upgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }
    pub fn downgrade_enabled(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

impl std::str::FromStr for MigrationPolicy {
    type Err = String;
    /// Case-insensitive, as Kafka parses it.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "bidirectional" => Ok(MigrationPolicy::Bidirectional),
            "upgrade" => Ok(MigrationPolicy::Upgrade),
            "downgrade" => Ok(MigrationPolicy::Downgrade),
            "disabled" => Ok(MigrationPolicy::Disabled),
            _ => Err(format!(
                "{s} is not one of bidirectional, upgrade, downgrade, disabled"
            )),
        }
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3000,
            initial_rebalance_quiet_ms: 0,
            max_group_size: i32::MAX as usize,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            consumer_heartbeat_budget_per_s: 2_000,
            consumer_heartbeat_interval_floor_ms: 50,
            consumer_reconcile_heartbeat_interval_ms: 50,
            consumer_max_group_size: i32::MAX as usize,
            consumer_assignment_interval_ms: 100,
            consumer_assignors: vec!["uniform".into(), "range".into()],
            consumer_regex_refresh_min_interval_ms: 1_000,
            consumer_regex_refresh_interval_ms: 600_000,
            member_disconnect_grace_ms: 500,
            classic_hold_heartbeat_ms: 2_500,
            classic_follow_up_hold: false,
            consumer_migration_policy: MigrationPolicy::Bidirectional,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Input {
    /// A client request. `entropy` seeds any member id the request needs.
    Request {
        id: RequestId,
        request: GroupRequest,
        entropy: u128,
        connection: Connection,
    },
    /// A client connection ended (closed by the client, or by its kernel when
    /// the process died).
    ConnectionClosed(Connection),
    /// A request arrived on this connection while an earlier one is still
    /// unanswered: a held answer ahead of it must go now.
    ConnectionActivity(Connection),
    /// Time has passed; fire whatever is due.
    Tick,
    /// The topics that exist now: name -> (id, partition count). Sent at start
    /// and whenever topics are created, deleted or grow.
    Topics(BTreeMap<String, (cohort_types::TopicId, i32)>),
}

/// Something that happened, for metrics and timelines in the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    RebalanceStarted {
        group: String,
        generation: i32,
        reason: String,
    },
    JoinCompleted {
        group: String,
        generation: i32,
        members: usize,
    },
    Stable {
        group: String,
        generation: i32,
    },
    MemberRemoved {
        group: String,
        member: String,
        reason: String,
    },
    /// A live group moved to the other protocol ("consumer" or "classic").
    GroupConverted {
        group: String,
        to: &'static str,
        members: usize,
    },
    /// A consumer-protocol member could not join a live classic group.
    ConversionRefused {
        group: String,
        reason: String,
    },
}

#[derive(Default, Debug)]
pub struct Effects {
    pub replies: Vec<(RequestId, GroupResponse)>,
    pub records: Vec<Record>,
    pub events: Vec<Event>,
}

/// The coordinator for one shard of groups.
pub struct Coordinator {
    pub(crate) config: CoordinatorConfig,
    pub(crate) groups: BTreeMap<String, ClassicGroup>,
    pub(crate) consumer_groups: BTreeMap<String, consumer::ConsumerGroup>,
    /// The broker's topics: name -> (id, partitions).
    pub(crate) topics: BTreeMap<String, (cohort_types::TopicId, i32)>,
    /// group -> (topic, partition) -> committed offset.
    pub(crate) offsets: BTreeMap<String, BTreeMap<(String, i32), records::OffsetRecord>>,
    pub(crate) timers: Timers,
    /// Counts topic images that brought new topic names (regexes may match
    /// them).
    pub(crate) topics_version: u64,
    /// Which connection each member last spoke on (soft state).
    pub(crate) connections: connections::Connections,
    /// Classic heartbeats whose answers are held (soft state).
    pub(crate) held: hold::Held,
    /// Members of every consumer group (the heartbeat budget's divisor).
    pub(crate) consumer_members: usize,
}

/// Collects effects while handling one input; records are applied through
/// `replay` the moment they are emitted.
pub(crate) struct Out {
    pub effects: Effects,
}

impl Out {
    pub fn reply(&mut self, id: RequestId, r: GroupResponse) {
        self.effects.replies.push((id, r));
    }
    pub fn event(&mut self, e: Event) {
        self.effects.events.push(e);
    }
}

impl Coordinator {
    pub fn new(config: CoordinatorConfig) -> Coordinator {
        Coordinator {
            config,
            groups: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            topics: BTreeMap::new(),
            offsets: BTreeMap::new(),
            timers: Timers::default(),
            topics_version: 0,
            connections: Default::default(),
            held: Default::default(),
            consumer_members: 0,
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Emits a record: applies it to the durable state and queues it for the log.
    pub(crate) fn emit(&mut self, out: &mut Out, record: Record) {
        self.replay(&record);
        out.effects.records.push(record);
    }

    pub fn handle(&mut self, now: Millis, input: Input) -> Effects {
        let mut out = Out {
            effects: Effects::default(),
        };
        if !self.timers.is_armed(&TimerKey::OffsetExpiry) {
            self.timers.arm(
                TimerKey::OffsetExpiry,
                now + self.config.offsets_retention_check_interval_ms,
            );
        }
        match input {
            Input::Tick => {
                while let Some(key) = self.timers.pop_due(now) {
                    self.fire(now, key, &mut out);
                }
            }
            Input::Request {
                id,
                request,
                entropy,
                connection,
            } => {
                let speaker = connections::speaker(&request);
                let classic_heartbeat = matches!(request, GroupRequest::Heartbeat(_));
                // Answers go out in request order: whatever is held on this
                // connection goes first, or this request's answer would wait
                // behind it.
                self.release_connection(now, connection, &mut out);
                self.request(now, id, request, entropy, connection, &mut out);
                let speaker = speaker.map(|key| {
                    let reply = out
                        .effects
                        .replies
                        .iter()
                        .rev()
                        .find(|(r, _)| *r == id)
                        .map(|(_, r)| r);
                    (key, Self::cadence(classic_heartbeat, reply))
                });
                self.note_speaker(now, speaker, connection);
            }
            Input::ConnectionClosed(connection) => {
                self.release_connection(now, connection, &mut out);
                self.connection_closed(now, connection);
            }
            Input::ConnectionActivity(connection) => {
                self.release_connection(now, connection, &mut out)
            }
            Input::Topics(image) => self.topics_changed(image),
        }
        self.release_changed_consumer_groups(now, &mut out);
        out.effects
    }

    fn request(
        &mut self,
        now: Millis,
        id: RequestId,
        request: GroupRequest,
        entropy: u128,
        connection: Connection,
        out: &mut Out,
    ) {
        match request {
            GroupRequest::JoinGroup(r) => self.join_group(now, id, r, entropy, out),
            GroupRequest::SyncGroup(r) => self.sync_group(now, id, r, connection, out),
            GroupRequest::Heartbeat(r) => self.heartbeat_or_hold(now, id, r, connection, out),
            GroupRequest::LeaveGroup(r) => {
                let resp = self.leave_group(now, r, out);
                out.reply(id, GroupResponse::LeaveGroup(resp));
            }
            GroupRequest::OffsetCommit(r) => {
                let resp = self.offset_commit(now, r, out);
                out.reply(id, GroupResponse::OffsetCommit(resp));
            }
            GroupRequest::OffsetFetch(r) => {
                out.reply(id, GroupResponse::OffsetFetch(self.offset_fetch(r)))
            }
            GroupRequest::OffsetDelete(r) => {
                let resp = self.offset_delete(now, r, out);
                out.reply(id, GroupResponse::OffsetDelete(resp));
            }
            GroupRequest::ListGroups(r) => {
                out.reply(id, GroupResponse::ListGroups(self.list_groups(r)))
            }
            GroupRequest::DescribeGroups(ids) => {
                out.reply(id, GroupResponse::DescribeGroups(self.describe_groups(ids)))
            }
            GroupRequest::DeleteGroups(ids) => {
                let resp = self.delete_groups(ids, out);
                out.reply(id, GroupResponse::DeleteGroups(resp));
            }
            GroupRequest::ConsumerGroupHeartbeat(r) => {
                let resp = self.consumer_heartbeat(now, r, entropy, out);
                out.reply(id, GroupResponse::ConsumerGroupHeartbeat(resp));
            }
            GroupRequest::ConsumerGroupDescribe(ids) => out.reply(
                id,
                GroupResponse::ConsumerGroupDescribe(self.consumer_group_describe(ids)),
            ),
        }
    }

    fn fire(&mut self, now: Millis, key: TimerKey, out: &mut Out) {
        match key {
            TimerKey::Heartbeat { group, member } => self.expire_member(now, &group, &member, out),
            TimerKey::PendingMember { group, member } => {
                self.expire_pending(now, &group, &member, out)
            }
            TimerKey::Join { group } => self.join_timeout(now, &group, out),
            TimerKey::InitialDelay { group } => self.initial_delay_elapsed(now, &group, out),
            TimerKey::InitialQuiet { group } => self.initial_quiet_elapsed(now, &group, out),
            TimerKey::Sync { group } => self.sync_timeout(now, &group, out),
            TimerKey::ConsumerSession { group, member } => {
                self.consumer_session_expired(now, &group, &member, out)
            }
            TimerKey::ConsumerRebalance { group, member } => {
                self.consumer_rebalance_expired(now, &group, &member, out)
            }
            TimerKey::ConsumerClassicJoin { group, member } => self.classic_member_timed_out(
                now,
                &group,
                &member,
                "did not rejoin within its rebalance timeout",
                out,
            ),
            TimerKey::ConsumerClassicSync { group, member } => self.classic_member_timed_out(
                now,
                &group,
                &member,
                "did not sync within its rebalance timeout",
                out,
            ),
            TimerKey::RegexRefresh { group } => self.refresh_regexes(now, &group, out),
            TimerKey::HeldHeartbeat { request } => self.answer_held(now, request, out),
            TimerKey::HeldSync { request } => self.answer_held_sync(request, out),
            TimerKey::Disconnected { group, member } => {
                self.disconnect_grace_elapsed(now, &group, &member, out)
            }
            TimerKey::ConsumerAssignment { group } => {
                if self.consumer_groups.contains_key(&group) {
                    self.maybe_compute_target(now, &group, out);
                }
            }
            TimerKey::OffsetExpiry => {
                self.expire_offsets(now, out);
                self.timers.arm(
                    TimerKey::OffsetExpiry,
                    now + self.config.offsets_retention_check_interval_ms,
                );
            }
        }
    }

    /// When the driver must next call `handle(_, Tick)`.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.timers.next_deadline()
    }

    /// Applies one durable record. Live handling calls this for every record it
    /// emits; a restart calls it for every record in the log, then `loaded`.
    pub fn replay(&mut self, record: &Record) {
        match record {
            Record::Group(g) => classic::replay_group(&mut self.groups, g),
            Record::GroupTombstone { group_id } => {
                self.groups.remove(group_id);
                self.offsets.remove(group_id);
            }
            Record::Offset(o) => {
                self.offsets
                    .entry(o.group_id.clone())
                    .or_default()
                    .insert((o.topic.clone(), o.partition), o.clone());
            }
            Record::OffsetTombstone {
                group_id,
                topic,
                partition,
            } => {
                if let Some(g) = self.offsets.get_mut(group_id) {
                    g.remove(&(topic.clone(), *partition));
                    if g.is_empty() {
                        self.offsets.remove(group_id);
                    }
                }
            }
            Record::ClassicGroupConverted { group_id } => {
                self.groups.remove(group_id);
            }
            Record::ConsumerGroupTombstone { group_id } => {
                if let Some(g) = self.consumer_groups.remove(group_id) {
                    self.consumer_members -= g.members.len();
                }
                self.offsets.remove(group_id);
            }
            Record::ConsumerGroupConverted { group_id } => {
                if let Some(g) = self.consumer_groups.remove(group_id) {
                    self.consumer_members -= g.members.len();
                }
            }
            other => {
                let joined = consumer::replay(&mut self.consumer_groups, other);
                self.consumer_members = self.consumer_members.saturating_add_signed(joined);
            }
        }
    }

    /// After a restart's replay: rebuild soft state (group states and timers).
    /// A group whose last record carries its assignment resumes Stable with every
    /// member's session timer fresh, so a broker restart causes no rebalance.
    pub fn loaded(&mut self, now: Millis) {
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            self.resume_after_load(now, &id);
        }
        // Consumer groups: fresh session timers, rebalance timers for members
        // still revoking, and a metadata re-check at the first heartbeat.
        let session = self.config.consumer_session_timeout_ms as i64;
        for g in self.consumer_groups.values_mut() {
            g.metadata_dirty = true;
            g.state_timestamp = now;
            for m in g.members.values() {
                // A classic member keeps the session timeout it joined with.
                let session = m
                    .classic
                    .as_ref()
                    .map_or(session, |c| c.session_timeout_ms as i64);
                self.timers.arm(
                    TimerKey::ConsumerSession {
                        group: g.group_id.clone(),
                        member: m.member_id.clone(),
                    },
                    now + session,
                );
                if m.state == consumer::MemberState::UnrevokedPartitions {
                    self.timers.arm(
                        TimerKey::ConsumerRebalance {
                            group: g.group_id.clone(),
                            member: m.member_id.clone(),
                        },
                        now + m.rebalance_timeout_ms.max(0) as i64,
                    );
                }
            }
        }
    }

    /// The durable state, as records that would rebuild it: what a compacted
    /// log holds, and what "live equals replayed" compares.
    pub fn snapshot(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for g in self.groups.values() {
            out.push(Record::Group(g.durable.clone()));
        }
        for g in self.consumer_groups.values() {
            consumer::snapshot(g, &mut out);
        }
        for offsets in self.offsets.values() {
            for o in offsets.values() {
                out.push(Record::Offset(o.clone()));
            }
        }
        out
    }

    /// Read-only view for tests, the simulator and admin tools.
    pub fn group(&self, id: &str) -> Option<&ClassicGroup> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &ClassicGroup> {
        self.groups.values()
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    pub fn consumer_group(&self, id: &str) -> Option<&consumer::ConsumerGroup> {
        self.consumer_groups.get(id)
    }
}

/// Formats entropy as the random part of a member id, UUID-shaped like Kafka's.
pub(crate) fn uuid_from(entropy: u128) -> String {
    let h = format!("{entropy:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests;
