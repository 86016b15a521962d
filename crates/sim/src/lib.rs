//! Seeded deterministic simulation of one classic consumer group against the
//! real coordinator: hundreds of simulated members, a network that drops,
//! delays and duplicates answers, member crashes, slow revocations, and
//! coordinator restarts by replaying the durable log. Invariants are checked
//! after every step; a failure carries its seed, and the seed replays it.

pub mod client;
pub mod consumer;
mod member;
mod rng;

use client::{Client, Style};
use cohort_coordinator::{Coordinator, CoordinatorConfig, Input, Record, RequestId};
use cohort_types::group::*;
use cohort_types::{ErrorCode, TopicPartition};
use consumer::ConsumerClient;
use member::Member;
use rng::Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub members: usize,
    pub partitions: i32,
    pub style: Style,
    /// Simulated time with faults, then time without, in ms.
    pub fault_ms: i64,
    pub calm_ms: i64,
    pub drop_rate: f64,
    pub duplicate_rate: f64,
    pub max_extra_delay_ms: i64,
    /// Chance per second that some member crashes (and a replacement starts).
    pub crash_rate: f64,
    /// Chance per second that the coordinator restarts.
    pub restart_rate: f64,
    /// Chance per second that some live member's connection breaks: what was
    /// in flight on it is lost, and the member carries on over a new one.
    /// Lost for longer than the disconnect grace, it is removed, and must
    /// be fenced.
    pub reconnect_rate: f64,
    /// Chance that a group commit's write to the coordinator log fails (a
    /// full disk): its records never become durable, its replies are
    /// refused, and the coordinator is rebuilt from its log.
    pub write_failure_rate: f64,
    /// Chance that a restart finds some records written but never synced
    /// (their replies never went out) still in the log after the torn part
    /// is cut: the process died, the page cache did not.
    pub torn_tail_rate: f64,
    /// Chance that a restart finds a durable record corrupted: the log refuses
    /// to load, the coordinator refuses every request until an operator
    /// restores the file (a few seconds later), then it loads.
    pub corruption_rate: f64,
    /// Fraction of members whose revocation takes seconds.
    pub slow_fraction: f64,
    /// Chance per second that some live member is rolled (a rollout between
    /// the protocols): it leaves the group gracefully, and a member speaking
    /// the other protocol starts in its place. The group moves between the
    /// classic and the consumer protocol member by member, and back.
    pub rollout_rate: f64,
    /// A deliberately broken client, to show the checker catches it: eager
    /// members keep their partitions while they rejoin.
    pub bug_eager_keeps_partitions: bool,
    /// The same fault, only in eager members a rollout brought in (they
    /// join while the group is a consumer group).
    pub bug_rolled_in_eager_keeps_partitions: bool,
}

impl SimConfig {
    pub fn new(members: usize, partitions: i32, style: Style) -> SimConfig {
        SimConfig {
            members,
            partitions,
            style,
            fault_ms: 60_000,
            calm_ms: 120_000,
            drop_rate: 0.01,
            duplicate_rate: 0.01,
            max_extra_delay_ms: 200,
            crash_rate: 0.05,
            restart_rate: 0.02,
            reconnect_rate: 0.05,
            write_failure_rate: 0.005,
            torn_tail_rate: 0.5,
            corruption_rate: 0.2,
            slow_fraction: 0.05,
            rollout_rate: 0.0,
            bug_eager_keeps_partitions: false,
            bug_rolled_in_eager_keeps_partitions: false,
        }
    }
}

/// Once faults stop, every member must be stable within this long: a
/// crashed member's session timeout, plus a rebalance timeout for a slow
/// member's barrier, plus a second rebalance timeout (cooperative follow-up
/// round or pending-sync expiry).
pub const CONVERGENCE_BOUND_MS: i64 = client::SESSION_MS as i64 + 2 * client::REBALANCE_MS as i64;

#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub at_ms: i64,
    pub step: u64,
    /// What the group was when it failed: "classic", "consumer" or "none".
    pub group: &'static str,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at step {} (t={} ms, {} group): {}",
            self.seed, self.step, self.at_ms, self.group, self.message
        )
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub steps: u64,
    pub generations: i32,
    pub crashes: u64,
    /// Members replaced by one speaking the other protocol.
    pub rolled: u64,
    /// The group turned from classic into a consumer group, and back.
    pub upgrades: u64,
    pub downgrades: u64,
    pub restarts: u64,
    pub reconnects: u64,
    pub dropped: u64,
    pub failed_writes: u64,
    /// Restarts that found a corrupted record and stayed offline.
    pub corrupted_loads: u64,
    /// Unacknowledged records a restart found in the log.
    pub unacknowledged_survivors: u64,
    /// From the end of faults until every member was stable, in ms.
    pub converged_after_ms: i64,
    /// SyncGroup answers held for a cooperative follow-up round, and rounds
    /// completed with a member carried into them on one.
    pub held_syncs: u64,
    pub carried_rounds: u64,
}

enum Event {
    ToCoordinator {
        member: usize,
        corr: u64,
        sent_at: i64,
        request: GroupRequest,
        connection: u64,
    },
    ToClient {
        member: usize,
        corr: u64,
        sent_at: i64,
        response: GroupResponse,
    },
    Flush,
    Tick,
}

struct World {
    cfg: SimConfig,
    seed: u64,
    rng: Rng,
    now: i64,
    step: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: HashMap<u64, Event>,
    coordinator: Coordinator,
    /// Replays every record emitted, to compare with the live state.
    shadow: Coordinator,
    durable: Vec<Record>,
    /// Set after a failed write: the next check compares the live state with
    /// a replay of the durable records alone.
    live_from_log_checked: bool,
    /// A restart is due the next time records are written.
    restart_in_flight: bool,
    /// The coordinator's log is damaged: every request is refused until then.
    offline_until: Option<i64>,
    /// Records not yet durable, and the replies that wait for them.
    /// Each input's records are one unit: the log writes a unit in one
    /// batch, so a crash keeps all of it or none.
    pending: Vec<Vec<Record>>,
    held: Vec<(RequestId, GroupResponse)>,
    flush_scheduled: bool,
    routes: HashMap<RequestId, (usize, u64, i64)>,
    /// Each member's current connection (its index and how many times it
    /// reconnected), and the connections that ended: nothing more arrives
    /// on those, and their answers are lost.
    incarnation: HashMap<usize, u64>,
    closed: std::collections::HashSet<u64>,
    /// The connection each routed request came on.
    route_connection: HashMap<RequestId, u64>,
    next_request: RequestId,
    /// Print every request, answer and member state (`COHORT_SIM_TRACE=1`).
    trace: bool,
    members: Vec<Member>,
    /// Which way a rollout is going.
    rolling_to_consumer: bool,
    next_corr: u64,
    /// Largest generation any member was told.
    max_generation_seen: i32,
    /// partition -> largest acknowledged committed offset.
    acked_commits: BTreeMap<i32, i64>,
    commit_in_flight: HashMap<usize, u64>,
    report: Report,
}

fn coordinator_config(seed: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay_ms: 500,
        // Every fourth seed ends a new group's first rebalance once joins
        // pause for 100 ms.
        initial_rebalance_quiet_ms: if seed % 4 == 1 { 100 } else { 0 },
        consumer_session_timeout_ms: consumer::SESSION_MS as i32,
        consumer_heartbeat_interval_ms: 1_000,
        // Every third seed gives every member Kafka's fixed interval; the
        // others spend a budget small enough to move intervals as members
        // come and go.
        consumer_heartbeat_budget_per_s: if seed % 3 == 0 { 0 } else { 20 },
        consumer_heartbeat_interval_floor_ms: 100,
        // Odd seeds hold classic heartbeats, even ones answer at once: the
        // sweep covers both.
        classic_hold_heartbeat_ms: if seed % 2 == 1 { 2_500 } else { 0 },
        // Odd seeds also hold and carry members through cooperative
        // follow-up rounds.
        classic_follow_up_hold: seed % 2 == 1,
        ..CoordinatorConfig::default()
    }
}

/// A rollout starts once the group has formed.
const ROLLOUT_FROM_MS: i64 = 10_000;
const FSYNC_MS: i64 = 2;
const NET_MS: i64 = 1;
const TICK_MS: i64 = 100;

impl World {
    fn new(seed: u64, cfg: SimConfig) -> World {
        let mut rng = Rng::new(seed);
        let consumer = cfg.style == Style::Consumer;
        let members = (0..cfg.members)
            .map(|i| {
                let start = rng.below(5000) as i64;
                spawn(&mut rng, &cfg, format!("m{i}"), consumer, start)
            })
            .collect();
        let mut w = World {
            cfg,
            seed,
            rng,
            now: 0,
            step: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            coordinator: Coordinator::new(coordinator_config(seed)),
            shadow: Coordinator::new(coordinator_config(seed)),
            durable: vec![],
            live_from_log_checked: false,
            restart_in_flight: false,
            offline_until: None,
            pending: vec![],
            held: vec![],
            flush_scheduled: false,
            routes: HashMap::new(),
            incarnation: HashMap::new(),
            closed: Default::default(),
            route_connection: HashMap::new(),
            next_request: 1,
            trace: std::env::var_os("COHORT_SIM_TRACE").is_some(),
            members,
            rolling_to_consumer: !consumer,
            next_corr: 1,
            max_generation_seen: 0,
            acked_commits: BTreeMap::new(),
            commit_in_flight: HashMap::new(),
            report: Report::default(),
        };
        w.schedule(0, Event::Tick);
        w.send_topics();
        w
    }

    /// The broker tells the coordinator which topics exist (at start, and
    /// again after every coordinator restart).
    fn send_topics(&mut self) {
        let image = [(
            consumer::TOPIC.to_string(),
            (consumer::TOPIC_ID, self.cfg.partitions),
        )]
        .into_iter()
        .collect();
        self.handle(Input::Topics(image));
    }

    /// Every live member's owned partitions, by name.
    fn owned_sets(&self) -> Vec<(&str, &std::collections::BTreeSet<i32>)> {
        self.members
            .iter()
            .filter(|m| m.alive())
            .map(|m| (m.name(), m.owned()))
            .collect()
    }

    fn faults_on(&self) -> bool {
        self.now < self.cfg.fault_ms
    }

    fn schedule(&mut self, at: i64, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn fail(&self, message: String) -> Failure {
        let group = if self.coordinator.consumer_group("g").is_some() {
            "consumer"
        } else if self.coordinator.group("g").is_some() {
            "classic"
        } else {
            "none"
        };
        Failure {
            seed: self.seed,
            at_ms: self.now,
            step: self.step,
            group,
            message,
        }
    }

    fn connection(&self, member: usize) -> u64 {
        (member as u64) << 20 | self.incarnation.get(&member).copied().unwrap_or(0)
    }

    /// The member's connection ends (its process died, or the network broke
    /// it); a live member opens a new one.
    fn close_connection(&mut self, member: usize) {
        let old = self.break_connection(member);
        self.handle(Input::ConnectionClosed(old));
    }

    /// Ends the member's connection on the client's side (the coordinator
    /// is told separately, or is gone); returns the connection that ended.
    fn break_connection(&mut self, member: usize) -> u64 {
        let old = self.connection(member);
        self.closed.insert(old);
        *self.incarnation.entry(member).or_default() += 1;
        self.fail_in_flight(member);
        old
    }

    /// The member's request in flight fails at once.
    fn fail_in_flight(&mut self, member: usize) {
        self.members[member].connection_lost(self.now);
    }

    fn is_alive(&self, member: usize) -> bool {
        self.members[member].alive()
    }

    fn send_to_coordinator(&mut self, member: usize, corr: u64, request: GroupRequest) {
        let delay = NET_MS
            + if self.faults_on() {
                self.rng.below(self.cfg.max_extra_delay_ms as u64 + 1) as i64
            } else {
                0
            };
        let sent_at = self.now;
        self.schedule(
            self.now + delay,
            Event::ToCoordinator {
                member,
                corr,
                sent_at,
                request,
                connection: self.connection(member),
            },
        );
    }

    fn handle(&mut self, input: Input) {
        let held_before = self.coordinator.held_syncs();
        let effects = self.coordinator.handle(self.now, input);
        let held_after = self.coordinator.held_syncs();
        self.report.held_syncs += held_after.saturating_sub(held_before) as u64;
        for r in &effects.records {
            if self.trace {
                eprintln!("{} record {r:?}", self.now);
            }
            self.shadow.replay(r);
            match r {
                Record::ClassicGroupConverted { .. } => self.report.upgrades += 1,
                Record::ConsumerGroupConverted { .. } => self.report.downgrades += 1,
                Record::Group(g)
                    if !g.assigned && g.members.iter().any(|m| m.told_generation.is_some()) =>
                {
                    self.report.carried_rounds += 1
                }
                _ => {}
            }
        }
        if !effects.records.is_empty() {
            self.pending.push(effects.records);
        }
        self.held.extend(effects.replies);
        if self.restart_in_flight && !self.pending.is_empty() {
            self.restart_in_flight = false;
            self.restart_coordinator();
            return;
        }
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            self.schedule(self.now + FSYNC_MS, Event::Flush);
        }
    }

    /// Group commit: everything pending becomes durable; then replies go out.
    /// Or the write fails: nothing pending becomes durable, this round's
    /// replies are refused, and the coordinator is rebuilt from its log (as
    /// the broker's runtime does), so its state is never ahead of the log.
    fn flush(&mut self) {
        self.flush_scheduled = false;
        if self.faults_on() && self.rng.chance(self.cfg.write_failure_rate) {
            self.report.failed_writes += 1;
            self.pending.clear();
            for (id, response) in std::mem::take(&mut self.held) {
                if let Some((member, corr, sent_at)) = self.routes.remove(&id) {
                    let response = response.with_error(ErrorCode::COORDINATOR_NOT_AVAILABLE);
                    self.schedule(
                        self.now + NET_MS,
                        Event::ToClient {
                            member,
                            corr,
                            sent_at,
                            response,
                        },
                    );
                }
            }
            // Parked requests belonged to the discarded state: the broker
            // answers them COORDINATOR_NOT_AVAILABLE, so their clients see
            // them fail now.
            let parked: Vec<usize> = self.routes.values().map(|(member, _, _)| *member).collect();
            for member in parked {
                self.fail_in_flight(member);
            }
            self.routes.clear();
            self.route_connection.clear();
            self.reload();
            self.live_from_log_checked = true;
            return;
        }
        self.durable.extend(self.pending.drain(..).flatten());
        for (id, response) in std::mem::take(&mut self.held) {
            let Some((member, corr, sent_at)) = self.routes.remove(&id) else {
                continue;
            };
            if self
                .route_connection
                .remove(&id)
                .is_some_and(|c| self.closed.contains(&c))
            {
                self.report.dropped += 1;
                continue;
            }
            if let GroupResponse::JoinGroup(j) = &response {
                self.max_generation_seen = self.max_generation_seen.max(j.generation_id);
            }
            if self.faults_on() && self.rng.chance(self.cfg.drop_rate) {
                self.report.dropped += 1;
                continue;
            }
            let delay = NET_MS
                + if self.faults_on() {
                    self.rng.below(self.cfg.max_extra_delay_ms as u64 + 1) as i64
                } else {
                    0
                };
            let dup = self.faults_on() && self.rng.chance(self.cfg.duplicate_rate);
            if dup {
                self.schedule(
                    self.now + delay + 5,
                    Event::ToClient {
                        member,
                        corr,
                        sent_at,
                        response: response.clone(),
                    },
                );
            }
            self.schedule(
                self.now + delay,
                Event::ToClient {
                    member,
                    corr,
                    sent_at,
                    response,
                },
            );
        }
    }

    /// The coordinator process dies: parked requests are forgotten, and a new
    /// one replays the log. What was not durable is gone, except (a torn
    /// tail) a prefix of the records written but not yet synced, in whole
    /// units, whose replies never went out.
    fn restart_coordinator(&mut self) {
        self.report.restarts += 1;
        self.offline_until = None;
        if !self.pending.is_empty() {
            // Whole units only: each was written as one batch.
            let kept = self.rng.below(self.pending.len() as u64 + 1) as usize;
            let survivors: Vec<Record> = self.pending.drain(..kept).flatten().collect();
            self.report.unacknowledged_survivors += survivors.len() as u64;
            self.durable.extend(survivors);
        }
        self.pending.clear();
        self.held.clear();
        self.routes.clear();
        self.route_connection.clear();
        // The process went down: every client's connection to it ended, and
        // each sees its request in flight fail at once.
        for member in 0..self.members.len() {
            if self.is_alive(member) {
                self.break_connection(member);
            }
        }
        if !self.durable.is_empty() && self.rng.chance(self.cfg.corruption_rate) {
            // The load finds a record that does not decode: no state is
            // served from the part before it; every request is refused until
            // the file is restored.
            self.report.corrupted_loads += 1;
            self.offline_until = Some(self.now + 1000 + self.rng.below(4000) as i64);
            return;
        }
        self.reload();
    }

    /// A fresh coordinator from the durable records (and a fresh shadow).
    fn reload(&mut self) {
        let mut c = Coordinator::new(coordinator_config(self.seed));
        let mut shadow = Coordinator::new(coordinator_config(self.seed));
        for r in &self.durable {
            c.replay(r);
            shadow.replay(r);
        }
        c.loaded(self.now);
        self.coordinator = c;
        self.shadow = shadow;
        self.send_topics();
    }

    fn tick(&mut self) {
        // Faults.
        if self.faults_on() {
            let per_tick = TICK_MS as f64 / 1000.0;
            if self.rng.chance(self.cfg.crash_rate * per_tick) {
                let victim = self.rng.below(self.members.len() as u64) as usize;
                if self.members[victim].alive() {
                    self.report.crashes += 1;
                    self.members[victim].stop();
                    self.close_connection(victim);
                    // Its replacement speaks the same protocol.
                    let consumer = matches!(self.members[victim], Member::Consumer(_));
                    self.replace(consumer);
                }
            }
            if self.now >= ROLLOUT_FROM_MS && self.rng.chance(self.cfg.rollout_rate * per_tick) {
                self.roll_next();
            }
            if self.rng.chance(self.cfg.reconnect_rate * per_tick) {
                let member = self.rng.below(self.members.len() as u64) as usize;
                if self.is_alive(member) {
                    self.report.reconnects += 1;
                    self.close_connection(member);
                }
            }
            if self.rng.chance(self.cfg.restart_rate * per_tick) {
                if self.rng.chance(self.cfg.torn_tail_rate) {
                    // While a group commit is in flight: the next records
                    // written die with the process, or survive in part.
                    self.restart_in_flight = true;
                } else {
                    self.restart_coordinator();
                }
            }
        }
        if let Some(until) = self.offline_until {
            if self.now >= until {
                // The operator restored the file: the log loads whole.
                self.offline_until = None;
                self.reload();
            }
        }
        // Timers due in the coordinator.
        if self.offline_until.is_none()
            && self
                .coordinator
                .next_deadline()
                .is_some_and(|at| at <= self.now)
        {
            self.handle(Input::Tick);
        }
        // Clients act.
        for i in 0..self.members.len() {
            let corr = self.next_corr;
            let send = match &mut self.members[i] {
                Member::Consumer(c) => c.poll(self.now, corr).map(|r| (corr, r)),
                Member::Classic(c) => c
                    .poll(self.now, corr, self.cfg.partitions)
                    .map(|s| (s.corr, s.request)),
            };
            if let Some((corr, request)) = send {
                self.next_corr += 1;
                self.send_to_coordinator(i, corr, request);
            }
            self.maybe_commit(i);
        }
        self.schedule(self.now + TICK_MS, Event::Tick);
    }

    /// A member starts in place of one that ended, a little later.
    fn replace(&mut self, consumer: bool) -> usize {
        let name = format!("m{}", self.members.len());
        let start = self.now + self.rng.below(3000) as i64;
        let m = spawn(&mut self.rng, &self.cfg, name, consumer, start);
        self.members.push(m);
        self.members.len() - 1
    }

    /// The next step of a rollout, as an operator rolls one: a live member
    /// still on the old protocol is rolled; once none is left, the rollout
    /// turns around.
    fn roll_next(&mut self) {
        let on_old = |w: &World| -> Vec<usize> {
            (0..w.members.len())
                .filter(|&i| {
                    w.members[i].alive()
                        && matches!(w.members[i], Member::Consumer(_)) != w.rolling_to_consumer
                })
                .collect()
        };
        let mut candidates = on_old(self);
        if candidates.is_empty() {
            self.rolling_to_consumer = !self.rolling_to_consumer;
            candidates = on_old(self);
        }
        if candidates.is_empty() {
            return;
        }
        let member = candidates[self.rng.below(candidates.len() as u64) as usize];
        self.report.rolled += 1;
        self.roll(member);
    }

    /// One step of a rollout: the member finishes revoking, leaves the group
    /// (LeaveGroup, or a heartbeat at epoch -1) and exits; a member of the
    /// other protocol starts in its place.
    fn roll(&mut self, member: usize) {
        let leave = match &self.members[member] {
            Member::Classic(c) if !c.member_id.is_empty() => {
                Some(GroupRequest::LeaveGroup(LeaveGroupRequest {
                    group_id: "g".into(),
                    members: vec![(c.member_id.clone(), None)],
                }))
            }
            Member::Consumer(c) => Some(GroupRequest::ConsumerGroupHeartbeat(c.leave())),
            Member::Classic(_) => None,
        };
        let consumer = matches!(self.members[member], Member::Consumer(_));
        self.members[member].stop();
        if let Some(request) = leave {
            let corr = self.next_corr;
            self.next_corr += 1;
            self.send_to_coordinator(member, corr, request);
        }
        let new = self.replace(!consumer);
        if let Member::Classic(c) = &mut self.members[new] {
            c.bug_keep_partitions |= self.cfg.bug_rolled_in_eager_keeps_partitions;
        }
    }

    /// Stable members commit the current time as the offset of what they own,
    /// one commit at a time, so acknowledged values only grow per partition.
    fn maybe_commit(&mut self, i: usize) {
        let Some((generation, member_id)) = self.members[i].commit_identity() else {
            return;
        };
        if self.commit_in_flight.contains_key(&i) {
            return;
        }
        if self.rng.below(10) != 0 {
            return;
        }
        let owned = self.members[i].owned().clone();
        let corr = self.next_corr;
        self.next_corr += 1;
        let request = GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id,
            group_instance_id: None,
            retention_ms: -1,
            offsets: owned
                .iter()
                .map(|p| OffsetToCommit {
                    partition: TopicPartition::new(consumer::TOPIC, *p),
                    offset: self.now,
                    leader_epoch: 0,
                    metadata: None,
                    unknown_partition: false,
                })
                .collect(),
            group_id_not_found_supported: true,
        });
        self.commit_in_flight.insert(i, corr);
        self.send_to_coordinator(i, corr, request);
    }

    fn deliver_to_client(
        &mut self,
        member: usize,
        corr: u64,
        sent_at: i64,
        response: GroupResponse,
    ) {
        if !self.members[member].alive() {
            return;
        }
        if let GroupResponse::OffsetCommit(results) = &response {
            if self.commit_in_flight.get(&member) == Some(&corr) {
                self.commit_in_flight.remove(&member);
                for (tp, e) in results {
                    if *e == ErrorCode::NONE {
                        let v = self.acked_commits.entry(tp.partition).or_insert(i64::MIN);
                        *v = (*v).max(sent_at);
                    }
                }
            }
            return;
        }
        let next = self.next_corr;
        let send = match (&mut self.members[member], response) {
            (Member::Consumer(c), GroupResponse::ConsumerGroupHeartbeat(r)) => {
                self.max_generation_seen = self.max_generation_seen.max(r.member_epoch);
                c.on_response(self.now, corr, sent_at, r);
                None
            }
            (Member::Classic(c), response) => {
                c.on_response(self.now, corr, sent_at, response, self.cfg.partitions, next)
            }
            _ => None,
        };
        if let Some(send) = send {
            self.next_corr += 1;
            self.send_to_coordinator(member, send.corr, send.request);
        }
    }

    fn check(&self) -> Result<(), String> {
        // Never two owners of a partition at the same time.
        let mut owner: BTreeMap<i32, &str> = BTreeMap::new();
        for (name, owned) in self.owned_sets() {
            for p in owned {
                if let Some(other) = owner.insert(*p, name) {
                    return Err(format!("partition {p} owned by {other} and {name} at once"));
                }
            }
        }
        // Generations (member epochs) never go backwards: nobody was told one
        // the coordinator no longer has.
        let generation = self.generation();
        if generation < self.max_generation_seen {
            return Err(format!(
                "generation {generation} is behind {} already handed out",
                self.max_generation_seen
            ));
        }
        // Live state equals the state replayed from the records.
        if self.coordinator.snapshot() != self.shadow.snapshot() {
            return Err("live coordinator state differs from its replayed records".into());
        }
        // The heartbeat budget divides by the members there are.
        if self.coordinator.settled_interval_ms() != self.shadow.settled_interval_ms() {
            return Err(format!(
                "settled interval {} ms live, {} ms replayed",
                self.coordinator.settled_interval_ms(),
                self.shadow.settled_interval_ms()
            ));
        }
        // After a failed write, the live state is exactly the log's.
        if self.live_from_log_checked {
            let mut from_log = Coordinator::new(coordinator_config(self.seed));
            for r in &self.durable {
                from_log.replay(r);
            }
            if from_log.snapshot() != self.coordinator.snapshot() {
                return Err("after a failed write the live state is ahead of the log".into());
            }
        }
        // Acknowledged commits survive.
        let fetched = self.coordinator.snapshot();
        for (p, acked) in &self.acked_commits {
            let have = fetched.iter().find_map(|r| match r {
                Record::Offset(o) if o.group_id == "g" && o.partition == *p => Some(o.offset),
                _ => None,
            });
            if have.map_or(true, |h| h < *acked) {
                return Err(format!(
                    "acknowledged commit {acked} for partition {p} lost (have {have:?})"
                ));
            }
        }
        Ok(())
    }

    /// The group's epoch (a consumer group) or generation (a classic one):
    /// one sequence, carried over by every conversion.
    fn generation(&self) -> i32 {
        match self.coordinator.consumer_group("g") {
            Some(g) => g.epoch,
            None => self.coordinator.group("g").map_or(0, |g| g.generation),
        }
    }

    /// The group and its live members, for a failure report.
    fn describe(&self) -> String {
        let live: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.alive())
            .map(Member::describe)
            .collect();
        if let Some(g) = self.coordinator.consumer_group("g") {
            return format!(
                "consumer group {} epoch {}/{}, {} members; live: {}",
                g.state(),
                g.epoch,
                g.assignment_epoch,
                g.members.len(),
                live.join("; ")
            );
        }
        let g = self.coordinator.group("g");
        let assigned: Vec<String> = g
            .map(|g| {
                g.durable
                    .members
                    .iter()
                    .map(|m| {
                        let claimed = m
                            .protocols
                            .first()
                            .map(|p| client::subscribed_owned(&p.1))
                            .unwrap_or_default();
                        format!(
                            "{}={:?}(claimed {:?})",
                            &m.client_id,
                            client::assigned(&m.assignment),
                            claimed
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "group {:?} gen {:?} (assigned: {}), {} members, offline {:?}; live: {}",
            g.map(|g| g.state),
            g.map(|g| g.generation),
            assigned.join(" "),
            g.map_or(0, |g| g.members.len()),
            self.offline_until,
            live.join("; ")
        )
    }

    /// Every live member settled on one assignment that covers every
    /// partition, whichever protocol the group and its members speak.
    fn converged(&self) -> bool {
        let live: Vec<&Member> = self.members.iter().filter(|m| m.alive()).collect();
        let settled = if let Some(g) = self.coordinator.consumer_group("g") {
            if g.state() != "Stable" || g.members.len() != live.len() {
                return false;
            }
            live.iter().all(|m| m.settled_at(g.assignment_epoch))
        } else {
            let Some(g) = self.coordinator.group("g") else {
                return false;
            };
            if g.state != cohort_coordinator::classic::GroupState::Stable
                || g.members.len() != live.len()
                || live.iter().any(|m| matches!(m, Member::Consumer(_)))
            {
                return false;
            }
            live.iter().all(|m| m.settled_in(g))
        };
        let mut all: Vec<i32> = live
            .iter()
            .flat_map(|m| m.owned().iter().copied())
            .collect();
        all.sort();
        settled && all == (0..self.cfg.partitions).collect::<Vec<_>>()
    }

    fn run(mut self) -> Result<Report, Failure> {
        let end = self.cfg.fault_ms + self.cfg.calm_ms;
        let mut converged_at = None;
        while let Some(Reverse((at, id))) = self.queue.pop() {
            if at > end {
                break;
            }
            self.now = at;
            self.step += 1;
            let event = self.events.remove(&id).expect("scheduled event");
            match event {
                // Nothing arrives on a connection that ended.
                Event::ToCoordinator { connection, .. } if self.closed.contains(&connection) => {
                    self.report.dropped += 1;
                }
                Event::ToCoordinator {
                    member,
                    corr,
                    sent_at,
                    request,
                    ..
                } if self.offline_until.is_some() => {
                    let response = request.refused(ErrorCode::COORDINATOR_NOT_AVAILABLE);
                    self.schedule(
                        self.now + NET_MS,
                        Event::ToClient {
                            member,
                            corr,
                            sent_at,
                            response,
                        },
                    );
                }
                Event::ToCoordinator {
                    member,
                    corr,
                    sent_at,
                    request,
                    connection,
                } => {
                    if self.trace {
                        eprintln!(
                            "{} {} -> {request:?}",
                            self.now,
                            self.members[member].name()
                        );
                    }
                    let rid = self.next_request;
                    self.next_request += 1;
                    self.routes.insert(rid, (member, corr, sent_at));
                    self.route_connection.insert(rid, connection);
                    let entropy = (self.rng.next() as u128) << 64 | self.rng.next() as u128;
                    // As the broker's shell does: a request behind an
                    // unanswered one releases what is held on the connection.
                    self.handle(Input::ConnectionActivity(connection));
                    self.handle(Input::Request {
                        id: rid,
                        request,
                        entropy,
                        connection,
                    });
                }
                Event::ToClient {
                    member,
                    corr,
                    sent_at,
                    response,
                } => {
                    if self.trace {
                        eprintln!(
                            "{} {} <- {response:?}",
                            self.now,
                            self.members[member].name()
                        );
                    }
                    self.deliver_to_client(member, corr, sent_at, response);
                    if self.trace {
                        eprintln!("{} {}", self.now, self.members[member].describe());
                    }
                }
                Event::Flush => self.flush(),
                Event::Tick => self.tick(),
            }
            self.check().map_err(|m| self.fail(m))?;
            self.live_from_log_checked = false;
            if !self.faults_on() && converged_at.is_none() && self.converged() {
                converged_at = Some(self.now);
            }
        }
        self.report.steps = self.step;
        self.report.generations = self.generation();
        match converged_at {
            Some(t) => {
                self.report.converged_after_ms = t - self.cfg.fault_ms;
                Ok(self.report)
            }
            None => Err(self.fail(format!(
                "not stable {} ms after faults stopped: {}",
                self.cfg.calm_ms,
                self.describe()
            ))),
        }
    }
}

/// Runs one seed.
pub fn run(seed: u64, cfg: SimConfig) -> Result<Report, Failure> {
    World::new(seed, cfg).run()
}

/// A new member of the given protocol, starting at `start`; a few revoke
/// slowly.
fn spawn(rng: &mut Rng, cfg: &SimConfig, name: String, consumer: bool, start: i64) -> Member {
    let slow = rng.chance(cfg.slow_fraction);
    let revoke_delay = if slow {
        3000 + rng.below(4000) as i64
    } else {
        0
    };
    if consumer {
        let id = format!("{:016x}{:016x}", rng.next(), rng.next());
        return Member::Consumer(ConsumerClient::new(name, id, start, revoke_delay));
    }
    // Classic members of a consumer-protocol run (rolled back) are
    // cooperative.
    let style = if cfg.style == Style::Consumer {
        Style::Cooperative
    } else {
        cfg.style
    };
    let mut c = Client::new(name, style, start, revoke_delay);
    c.bug_keep_partitions = cfg.bug_eager_keeps_partitions;
    Member::Classic(c)
}
