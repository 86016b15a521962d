//! Scripted coordinator traces: inputs and ticks in, replies and records out.
//! Each test names the rule of Kafka's classic protocol it pins.

use crate::classic::GroupState;
use crate::{Coordinator, CoordinatorConfig, Effects, Input, Record, RequestId};
use bytes::Bytes;
use cohort_types::group::*;
use cohort_types::{ErrorCode, TopicPartition};

struct Script {
    c: Coordinator,
    now: i64,
    next_id: RequestId,
    /// The connection the next request comes on.
    connection: u64,
    entropy: u128,
    trace: Vec<String>,
    replies: Vec<(RequestId, GroupResponse)>,
    /// Every record written, in order.
    records: Vec<Record>,
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay_ms: 100,
        // Kafka's answers at once: held heartbeats have traces of their own.
        classic_hold_heartbeat_ms: 0,
        ..CoordinatorConfig::default()
    }
}

impl Script {
    fn new() -> Script {
        Script::with(config())
    }

    fn with(c: CoordinatorConfig) -> Script {
        Script {
            c: Coordinator::new(c),
            now: 0,
            next_id: 1,
            connection: 1,
            entropy: 0,
            trace: vec![],
            replies: vec![],
            records: vec![],
        }
    }

    fn absorb(&mut self, e: Effects) {
        for r in &e.records {
            self.trace.push(format!("record {}", describe(r)));
        }
        self.records.extend(e.records.iter().cloned());
        for (id, r) in e.replies {
            self.trace.push(format!("reply #{id} {r:?}"));
            self.replies.push((id, r));
        }
    }

    fn send(&mut self, request: GroupRequest) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.entropy += 1;
        let e = self.c.handle(
            self.now,
            Input::Request {
                id,
                request,
                entropy: self.entropy,
                connection: self.connection,
            },
        );
        self.absorb(e);
        id
    }

    /// Advances time, ticking at every deadline on the way (as the runtime does).
    fn advance(&mut self, ms: i64) {
        let end = self.now + ms;
        while let Some(at) = self.c.next_deadline().filter(|&at| at <= end) {
            self.now = at.max(self.now);
            let e = self.c.handle(self.now, Input::Tick);
            self.absorb(e);
        }
        self.now = end;
    }

    /// Advances in steps of the initial delay until `id` is answered (each
    /// arrival in the initial window extends it).
    fn settle(&mut self, id: RequestId) {
        for _ in 0..1000 {
            if self.reply(id).is_some() {
                return;
            }
            self.advance(100);
        }
        panic!("#{id} never answered");
    }

    fn reply(&self, id: RequestId) -> Option<&GroupResponse> {
        self.replies.iter().find(|(i, _)| *i == id).map(|(_, r)| r)
    }

    fn join_reply(&self, id: RequestId) -> JoinGroupResponse {
        match self.reply(id) {
            Some(GroupResponse::JoinGroup(j)) => j.clone(),
            other => panic!(
                "no join reply for #{id}: {other:?}\n{}",
                self.trace.join("\n")
            ),
        }
    }

    fn sync_reply(&self, id: RequestId) -> SyncGroupResponse {
        match self.reply(id) {
            Some(GroupResponse::SyncGroup(s)) => s.clone(),
            other => panic!(
                "no sync reply for #{id}: {other:?}\n{}",
                self.trace.join("\n")
            ),
        }
    }

    fn join(&mut self, member_id: &str, protocols: &[(&str, &[u8])]) -> RequestId {
        self.send(GroupRequest::JoinGroup(join_req(
            "g", member_id, None, protocols,
        )))
    }

    fn join_static(
        &mut self,
        member_id: &str,
        instance: &str,
        protocols: &[(&str, &[u8])],
    ) -> RequestId {
        self.send(GroupRequest::JoinGroup(join_req(
            "g",
            member_id,
            Some(instance),
            protocols,
        )))
    }

    /// KIP-394 handshake: first join mints the id, second one parks.
    fn join_new(&mut self) -> (String, RequestId) {
        let first = self.join("", RANGE);
        let id = self.join_reply(first).member_id;
        assert_eq!(self.join_reply(first).error, ErrorCode::MEMBER_ID_REQUIRED);
        let second = self.join(&id, RANGE);
        (id, second)
    }

    fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> RequestId {
        self.send(GroupRequest::SyncGroup(SyncGroupRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: None,
            assignments: assignments
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::copy_from_slice(a)))
                .collect(),
        }))
    }

    fn heartbeat(&mut self, member_id: &str, generation: i32) -> ErrorCode {
        let id = self.send(GroupRequest::Heartbeat(HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member_id.into(),
            group_instance_id: None,
        }));
        match self.reply(id) {
            Some(GroupResponse::Heartbeat(e)) => *e,
            other => panic!("{other:?}"),
        }
    }

    fn state(&self) -> GroupState {
        self.c.group("g").unwrap().state
    }

    /// Live state equals the state rebuilt from the records emitted so far.
    fn check_replay(&self, records: &[Record]) {
        let mut fresh = Coordinator::new(config());
        for r in records {
            fresh.replay(r);
        }
        assert_eq!(fresh.snapshot(), self.c.snapshot());
    }
}

const RANGE: &[(&str, &[u8])] = &[("range", b"sub")];

fn join_req(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    protocols: &[(&str, &[u8])],
) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m)))
            .collect(),
        reason: None,
        requires_known_member_id: true,
        supports_skip_assignment: false,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn describe(r: &Record) -> String {
    match r {
        Record::Group(g) => format!(
            "group {} gen {} leader {:?} assigned {} members {}",
            g.group_id,
            g.generation,
            g.leader,
            g.assigned,
            g.members.len()
        ),
        other => format!("{other:?}"),
    }
}

/// Brings a group of `n` dynamic members to Stable; returns their ids (leader first).
fn stable_group(s: &mut Script, n: usize) -> Vec<String> {
    let joins: Vec<(String, RequestId)> = (0..n).map(|_| s.join_new()).collect();
    s.settle(joins[0].1);
    let generation = s.join_reply(joins[0].1).generation_id;
    let leader = s.join_reply(joins[0].1).leader.clone();
    let mut ids: Vec<String> = joins.iter().map(|(m, _)| m.clone()).collect();
    ids.sort_by_key(|m| *m != leader);
    let assignment: Vec<(String, Vec<u8>)> = ids
        .iter()
        .map(|m| (m.clone(), format!("a-{m}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = assignment
        .iter()
        .map(|(m, a)| (m.as_str(), a.as_slice()))
        .collect();
    for m in &ids[1..] {
        s.sync(m, generation, &[]);
    }
    s.sync(&ids[0], generation, &refs);
    assert_eq!(s.state(), GroupState::Stable);
    ids
}

#[test]
fn kip394_first_join_mints_an_id_and_starts_no_rebalance() {
    let mut s = Script::new();
    let first = s.join("", RANGE);
    let j = s.join_reply(first);
    assert_eq!(j.error, ErrorCode::MEMBER_ID_REQUIRED);
    assert!(j.member_id.starts_with("client-"));
    assert_eq!(s.state(), GroupState::Empty);
    // A join with an id the group never issued is refused.
    let bogus = s.join("nobody", RANGE);
    assert_eq!(s.join_reply(bogus).error, ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn the_first_rebalance_waits_for_the_initial_delay_even_when_everyone_joined() {
    let mut s = Script::new();
    let (m, j) = s.join_new();
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert!(s.reply(j).is_none(), "parked until the initial delay");
    s.advance(99);
    assert!(s.reply(j).is_none());
    s.advance(1);
    let r = s.join_reply(j);
    assert_eq!(
        (r.error, r.generation_id, r.leader.as_str()),
        (ErrorCode::NONE, 1, m.as_str())
    );
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(
        r.members.len(),
        1,
        "the leader gets every member's metadata"
    );
    assert_eq!(s.state(), GroupState::CompletingRebalance);
}

#[test]
fn each_member_arriving_in_the_initial_window_extends_it() {
    let mut s = Script::new();
    let (_, a) = s.join_new();
    s.advance(90);
    let (_, b) = s.join_new();
    s.advance(10);
    assert!(s.reply(a).is_none(), "extended because b arrived");
    s.advance(100);
    assert_eq!(s.join_reply(a).generation_id, 1);
    assert_eq!(s.join_reply(b).generation_id, 1);
    assert_eq!(
        s.join_reply(b).members.len() + s.join_reply(a).members.len(),
        2
    );
}

#[test]
fn eager_cycle_leader_sync_hands_every_member_its_assignment() {
    let mut s = Script::new();
    let (a, ja) = s.join_new();
    let (b, jb) = s.join_new();
    s.settle(ja);
    let gen = s.join_reply(ja).generation_id;
    let leader = s.join_reply(ja).leader.clone();
    assert_eq!(s.join_reply(jb).leader, leader);
    let follower = if leader == a { b.clone() } else { a.clone() };
    let fs = s.sync(&follower, gen, &[]);
    assert!(s.reply(fs).is_none(), "followers wait for the leader");
    let ls = s.sync(&leader, gen, &[(&leader, b"L"), (&follower, b"F")]);
    assert_eq!(s.sync_reply(fs).assignment.as_ref(), b"F");
    assert_eq!(s.sync_reply(ls).assignment.as_ref(), b"L");
    assert_eq!(s.state(), GroupState::Stable);
    assert!(s
        .trace
        .iter()
        .any(|t| t.contains("assigned true members 2")));
}

#[test]
fn heartbeats_answer_by_state_generation_and_membership() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 2);
    assert_eq!(s.heartbeat(&ids[0], 1), ErrorCode::NONE);
    assert_eq!(s.heartbeat(&ids[0], 0), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(s.heartbeat("stranger", 1), ErrorCode::UNKNOWN_MEMBER_ID);
    // Leader rejoining in Stable always starts a rebalance (how it forces one).
    s.join(&ids[0], RANGE);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert_eq!(s.heartbeat(&ids[1], 1), ErrorCode::REBALANCE_IN_PROGRESS);
}

#[test]
fn a_follower_rejoining_in_stable_with_the_same_protocols_gets_the_current_generation() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 2);
    let j = s.join(&ids[1], RANGE);
    let r = s.join_reply(j);
    assert_eq!((r.error, r.generation_id), (ErrorCode::NONE, 1));
    assert!(r.members.is_empty());
    assert_eq!(s.state(), GroupState::Stable);
    // With different metadata it triggers a rebalance.
    s.join(&ids[1], &[("range", b"other")]);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
}

#[test]
fn an_expired_session_removes_the_member_and_rebalances_the_rest() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 2);
    for _ in 0..5 {
        s.advance(4000);
        s.heartbeat(&ids[0], 1);
    }
    assert_eq!(
        s.state(),
        GroupState::PreparingRebalance,
        "ids[1] went silent for 20 s"
    );
    assert!(s.c.group("g").unwrap().members.get(&ids[1]).is_none());
    let j = s.join(&ids[0], RANGE);
    let r = s.join_reply(j);
    assert_eq!((r.generation_id, r.members.len()), (2, 1));
}

#[test]
fn batch_leave_removes_members_and_unknown_ones_get_errors() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 3);
    let id = s.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![
            (ids[1].clone(), None),
            (ids[2].clone(), None),
            ("ghost".into(), None),
        ],
    }));
    let Some(GroupResponse::LeaveGroup(r)) = s.reply(id) else {
        panic!()
    };
    let errors: Vec<ErrorCode> = r.members.iter().map(|m| m.2).collect();
    assert_eq!(
        errors,
        vec![
            ErrorCode::NONE,
            ErrorCode::NONE,
            ErrorCode::UNKNOWN_MEMBER_ID
        ]
    );
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    // The remaining member alone completes the join at once (not initial).
    let j = s.join(&ids[0], RANGE);
    assert_eq!(s.join_reply(j).generation_id, 2);
}

#[test]
fn the_protocol_vote_takes_each_members_first_common_choice() {
    let mut s = Script::new();
    let a = s.join("", &[("roundrobin", b""), ("range", b"")]);
    let a_id = s.join_reply(a).member_id;
    let ja = s.join(&a_id, &[("roundrobin", b""), ("range", b"")]);
    let b = s.join("", &[("range", b"")]);
    let b_id = s.join_reply(b).member_id;
    let jb = s.join(&b_id, &[("range", b"")]);
    s.settle(ja);
    assert_eq!(s.join_reply(ja).protocol_name.as_deref(), Some("range"));
    assert_eq!(s.join_reply(jb).protocol_name.as_deref(), Some("range"));
    // A member offering nothing in common is refused.
    let c = s.join("", &[("sticky", b"")]);
    assert_eq!(
        s.join_reply(c).error,
        ErrorCode::INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn a_static_member_restarting_in_stable_takes_its_place_without_a_rebalance() {
    let mut s = Script::new();
    let a = s.join_static("", "i-a", RANGE);
    let b = s.join_static("", "i-b", RANGE);
    s.settle(a);
    let (ra, rb) = (s.join_reply(a), s.join_reply(b));
    let (leader, follower) = if ra.leader == ra.member_id {
        (ra, rb)
    } else {
        (rb, ra)
    };
    s.sync(&follower.member_id, 1, &[]);
    s.sync(
        &leader.member_id,
        1,
        &[(&leader.member_id, b"L"), (&follower.member_id, b"F")],
    );
    let follower_instance = if follower.member_id.starts_with("i-a") {
        "i-a"
    } else {
        "i-b"
    };
    // The follower restarts: new member id, same instance id.
    let j = s.join_static("", follower_instance, RANGE);
    let r = s.join_reply(j);
    assert_eq!((r.error, r.generation_id), (ErrorCode::NONE, 1));
    assert_ne!(r.member_id, follower.member_id);
    assert_eq!(s.state(), GroupState::Stable, "no rebalance");
    let sr = s.sync(&r.member_id, 1, &[]);
    assert_eq!(
        s.sync_reply(sr).assignment.as_ref(),
        b"F",
        "inherits the old assignment"
    );
    // The old incarnation is fenced.
    let hb = s.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: follower.member_id.clone(),
        group_instance_id: Some(follower_instance.into()),
    }));
    assert_eq!(
        s.reply(hb),
        Some(&GroupResponse::Heartbeat(ErrorCode::FENCED_INSTANCE_ID))
    );
}

#[test]
fn a_pending_member_holds_the_barrier_until_its_session_timeout() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 1);
    // Someone asks for an id and never comes back.
    let ghost = s.join("", RANGE);
    assert_eq!(s.join_reply(ghost).error, ErrorCode::MEMBER_ID_REQUIRED);
    let j = s.join(&ids[0], RANGE); // leader rejoin: rebalance
    s.advance(5000);
    assert!(s.reply(j).is_none(), "blocked by the pending id");
    for _ in 0..3 {
        s.advance(2000);
    }
    assert_eq!(
        s.join_reply(j).generation_id,
        2,
        "released when the pending id expired"
    );
}

#[test]
fn members_that_never_sync_are_removed_at_the_rebalance_timeout() {
    let mut s = Script::new();
    let (a, ja) = s.join_new();
    let (b, _jb) = s.join_new();
    s.settle(ja);
    let leader = s.join_reply(ja).leader.clone();
    let other = if leader == a { b } else { a };
    // Only the leader syncs; the follower never does.
    s.sync(&leader, 1, &[(&leader, b"x")]);
    assert_eq!(s.state(), GroupState::Stable);
    for _ in 0..8 {
        s.advance(4000);
        s.heartbeat(&leader, s.c.group("g").unwrap().generation);
    }
    let g = s.c.group("g").unwrap();
    assert!(!g.members.contains_key(&other));
    assert_eq!(g.state, GroupState::PreparingRebalance);
}

#[test]
fn offset_commits_are_checked_against_member_and_generation() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 1);
    let commit = |s: &mut Script, gen: i32, member: &str| {
        let id = s.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: gen,
            member_id: member.into(),
            group_instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition::new("t", 0),
                offset: 42,
                leader_epoch: 0,
                metadata: Some("m".into()),
                unknown_partition: false,
            }],
            group_id_not_found_supported: true,
        }));
        match s.reply(id) {
            Some(GroupResponse::OffsetCommit(r)) => r[0].1,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(commit(&mut s, 1, &ids[0]), ErrorCode::NONE);
    assert_eq!(commit(&mut s, 0, &ids[0]), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(commit(&mut s, 1, "x"), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(
        commit(&mut s, -1, ""),
        ErrorCode::UNKNOWN_MEMBER_ID,
        "no identity in a non-empty group"
    );
    let f = s.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![(
            "g".into(),
            Some(vec![
                TopicPartition::new("t", 0),
                TopicPartition::new("t", 1),
            ]),
        )],
        require_stable: true,
        members: vec![None],
    }));
    let Some(GroupResponse::OffsetFetch(r)) = s.reply(f) else {
        panic!()
    };
    let offsets: Vec<i64> = r[0].partitions.iter().map(|p| p.offset).collect();
    assert_eq!(offsets, vec![42, -1]);
    // A simple commit creates a group with no protocol.
    let id = s.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
        group_id: "simple".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_ms: -1,
        offsets: vec![],
        group_id_not_found_supported: true,
    }));
    assert!(s.reply(id).is_some());
    assert_eq!(s.c.group("simple").unwrap().state, GroupState::Empty);
}

#[test]
fn a_restart_resumes_a_stable_group_without_a_rebalance() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 2);
    let records = s.c.snapshot();
    s.check_replay(&records);
    let mut restarted = Coordinator::new(config());
    for r in &records {
        restarted.replay(r);
    }
    restarted.loaded(s.now);
    let g = restarted.group("g").unwrap();
    assert_eq!((g.state, g.generation), (GroupState::Stable, 1));
    assert!(ids.iter().all(|m| g.members.contains_key(m)));
    s.c = restarted;
    assert_eq!(s.heartbeat(&ids[1], 1), ErrorCode::NONE);
    let sr = s.sync(&ids[1], 1, &[]);
    assert_eq!(
        s.sync_reply(sr).assignment.as_ref(),
        format!("a-{}", ids[1]).as_bytes()
    );
}

#[test]
fn live_state_equals_replayed_records_through_a_full_cycle() {
    let mut all = Vec::new();
    // Every record emitted through join, initial delay and sync, replayed into
    // a fresh coordinator, yields the same durable state.
    let mut c = Coordinator::new(config());
    let mut now = 0;
    let mut entropy = 0;
    let mut id = 0;
    let mut send = |c: &mut Coordinator, now: i64, r: GroupRequest, all: &mut Vec<Record>| {
        id += 1;
        entropy += 1;
        let e = c.handle(
            now,
            Input::Request {
                id,
                request: r,
                entropy,
                connection: 1,
            },
        );
        all.extend(e.records);
        e.replies
    };
    let replies = send(
        &mut c,
        now,
        GroupRequest::JoinGroup(join_req("h", "", None, RANGE)),
        &mut all,
    );
    let GroupResponse::JoinGroup(j) = &replies[0].1 else {
        panic!()
    };
    let m = j.member_id.clone();
    send(
        &mut c,
        now,
        GroupRequest::JoinGroup(join_req("h", &m, None, RANGE)),
        &mut all,
    );
    now += 100;
    all.extend(c.handle(now, Input::Tick).records);
    send(
        &mut c,
        now,
        GroupRequest::SyncGroup(SyncGroupRequest {
            group_id: "h".into(),
            generation_id: 1,
            member_id: m.clone(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(m.clone(), Bytes::from_static(b"x"))],
        }),
        &mut all,
    );
    let mut fresh = Coordinator::new(config());
    for r in &all {
        fresh.replay(r);
    }
    assert_eq!(fresh.snapshot(), c.snapshot());
}

#[test]
fn group_max_size_refuses_the_member_past_the_limit() {
    let mut s = Script::with(CoordinatorConfig {
        max_group_size: 1,
        initial_rebalance_delay_ms: 100,
        ..CoordinatorConfig::default()
    });
    stable_group(&mut s, 1);
    let (id, second) = {
        let first = s.join("", RANGE);
        (s.join_reply(first).member_id, ())
    };
    let _ = second;
    let j = s.join(&id, RANGE);
    assert_eq!(s.join_reply(j).error, ErrorCode::GROUP_MAX_SIZE_REACHED);
}

#[test]
fn delete_groups_refuses_non_empty_groups_and_unknown_ones() {
    let mut s = Script::new();
    stable_group(&mut s, 1);
    let id = s.send(GroupRequest::DeleteGroups(vec!["g".into(), "nope".into()]));
    assert_eq!(
        s.reply(id),
        Some(&GroupResponse::DeleteGroups(vec![
            ("g".into(), ErrorCode::NON_EMPTY_GROUP),
            ("nope".into(), ErrorCode::GROUP_ID_NOT_FOUND)
        ]))
    );
}

#[test]
fn session_timeouts_outside_the_broker_bounds_are_refused() {
    let mut s = Script::new();
    let mut r = join_req("g", "", None, RANGE);
    r.session_timeout_ms = 1000;
    let id = s.send(GroupRequest::JoinGroup(r));
    assert_eq!(s.join_reply(id).error, ErrorCode::INVALID_SESSION_TIMEOUT);
}

mod disconnect;
mod follow_up;
mod hold;
mod quiet;
