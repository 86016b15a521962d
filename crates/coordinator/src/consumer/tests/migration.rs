//! Mixed groups: a live classic group rolled onto the consumer protocol member
//! by member, and back. Each test names the rule it pins and the method of
//! Kafka's GroupMetadataManager (GMM), ConsumerGroup (CG) or ClassicGroup
//! that implements it.

use super::handover::owned_now;
use super::*;
use crate::consumer::MemberState;
use crate::embedded::{self, Subscription};
use crate::MigrationPolicy;
use bytes::Bytes;
use cohort_types::group::{
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetToCommit,
    SyncGroupRequest,
};

fn subscription(owned: &[i32], version: i16) -> Bytes {
    embedded::write_subscription(&Subscription {
        version,
        topics: vec!["t".into()],
        user_data: None,
        owned: if owned.is_empty() {
            vec![]
        } else {
            vec![("t".into(), owned.to_vec())]
        },
        generation: -1,
        rack: None,
    })
    .into()
}

fn classic_join(member: &str, instance: Option<&str>, owned: &[i32]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: "g".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member.into(),
        group_instance_id: instance.map(str::to_string),
        protocol_type: "consumer".into(),
        protocols: vec![
            ("cooperative-sticky".into(), subscription(owned, 3)),
            ("range".into(), subscription(owned, 3)),
        ],
        reason: None,
        requires_known_member_id: false,
        supports_skip_assignment: false,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
    }
}

fn sync(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("cooperative-sticky".into()),
        assignments,
    }
}

fn heartbeat(member: &str, generation: i32) -> GroupRequest {
    GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
    })
}

fn assignment(ps: &[i32]) -> Bytes {
    embedded::write_assignment(3, &[("t".into(), ps.to_vec())]).into()
}

fn assigned_in(bytes: &Bytes) -> Vec<i32> {
    let a = embedded::parse_assignment(bytes).unwrap();
    let mut ps: Vec<i32> = a.partitions.into_iter().flat_map(|(_, ps)| ps).collect();
    ps.sort();
    ps
}

impl Script {
    fn join_answer(&mut self, r: JoinGroupRequest) -> JoinGroupResponse {
        match self.send(GroupRequest::JoinGroup(r)) {
            GroupResponse::JoinGroup(j) => j,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn sync_answer(&mut self, r: SyncGroupRequest) -> SyncGroupResponse {
        match self.send(GroupRequest::SyncGroup(r)) {
            GroupResponse::SyncGroup(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn beat_classic(&mut self, member: &str, generation: i32) -> ErrorCode {
        match self.send(heartbeat(member, generation)) {
            GroupResponse::Heartbeat(e) => e,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A stable classic group: a owns 0 and 1, b owns 2 and 3, generation 1.
    /// Returns the two member ids.
    fn classic_group(&mut self) -> (String, String) {
        let (ja, _) = self.send_all(GroupRequest::JoinGroup(classic_join("", None, &[])));
        let (jb, _) = self.send_all(GroupRequest::JoinGroup(classic_join("", None, &[])));
        let mut joined = BTreeMap::new();
        for _ in 0..100 {
            self.now += 100;
            let e = self.c.handle(self.now, Input::Tick);
            self.records.extend(e.records);
            for (id, r) in e.replies {
                if let GroupResponse::JoinGroup(j) = r {
                    joined.insert(id, j);
                }
            }
            if joined.len() == 2 {
                break;
            }
        }
        let (a, b) = (joined[&ja].member_id.clone(), joined[&jb].member_id.clone());
        assert_eq!(joined[&ja].leader, a, "the first to join leads");
        let generation = joined[&ja].generation_id;
        let (_, replies) = self.send_all(GroupRequest::SyncGroup(sync(
            &a,
            generation,
            vec![
                (a.clone(), assignment(&[0, 1])),
                (b.clone(), assignment(&[2, 3])),
            ],
        )));
        assert_eq!(replies.len(), 1);
        let (_, replies) = self.send_all(GroupRequest::SyncGroup(sync(&b, generation, vec![])));
        assert_eq!(replies.len(), 1);
        assert!(self
            .c
            .group("g")
            .unwrap()
            .is(crate::classic::GroupState::Stable));
        (a, b)
    }

    fn member(&self, id: &str) -> crate::consumer::ConsumerMember {
        self.c.consumer_group("g").unwrap().members[id].clone()
    }

    fn owned(&self, id: &str) -> Vec<i32> {
        self.member(id)
            .assigned
            .get(&T)
            .map(|ps| ps.iter().copied().collect())
            .unwrap_or_default()
    }

    /// No partition is held by two members (assigned or being revoked).
    fn check_single_owner(&self) {
        let g = self.c.consumer_group("g").unwrap();
        let mut seen = BTreeMap::new();
        for m in g.members.values() {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        if let Some(other) = seen.insert((*t, *p), m.member_id.clone()) {
                            assert_eq!(other, m.member_id, "partition {p} held by two members");
                        }
                    }
                }
            }
        }
    }
}

/// The first consumer-protocol member joins a live classic group: the group
/// becomes a consumer group at epoch = the generation, every classic member a
/// member of it owning exactly what it owned (GMM.convertToConsumerGroup,
/// CG.fromClassicGroup), and the joining member's subscription bumps the epoch.
#[test]
fn upgrade_converts_a_live_classic_group_keeping_every_owner() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    let generation = s.c.group("g").unwrap().generation;
    let r = s.hb(join("c", &["t"]));
    assert_eq!(r.error, ErrorCode::NONE, "{:?}", r.error_message);
    assert!(s.c.group("g").is_none(), "the classic group is gone");
    assert_eq!(s.epoch(), generation + 1);
    assert_eq!(r.member_epoch, generation + 1);
    assert_eq!(parts(&r.assignment), vec![], "everything is still owned");
    assert_eq!(s.owned(&a), vec![0, 1]);
    assert_eq!(s.owned(&b), vec![2, 3]);
    let ma = s.member(&a);
    assert_eq!(
        (ma.member_epoch, ma.previous_member_epoch),
        (generation, generation)
    );
    assert_eq!(ma.classic.as_ref().unwrap().session_timeout_ms, 10_000);
    assert_eq!(
        ma.classic.as_ref().unwrap().protocols[0].0,
        "cooperative-sticky"
    );
    assert!(s
        .records
        .iter()
        .any(|r| matches!(r, Record::ClassicGroupConverted { .. })));
    s.check_single_owner();
    s.check_replay();
}

/// A classic member of a consumer group hears REBALANCE_IN_PROGRESS when it is
/// behind the group epoch or must revoke, rejoins reporting what it owns,
/// gets from SyncGroup only what it keeps, and the new member receives the
/// released partitions only after the classic member rejoined without them
/// (GMM.classicGroupHeartbeatToConsumerGroup, classicGroupJoinToConsumerGroup,
/// classicGroupSyncToConsumerGroup).
#[test]
fn a_cooperative_classic_member_revokes_before_the_new_member_receives() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    s.hb(join("c", &["t"]));
    let epoch = s.epoch();
    for m in [&a, &b] {
        assert_eq!(
            s.beat_classic(m, 1),
            ErrorCode::REBALANCE_IN_PROGRESS,
            "behind the group epoch"
        );
    }
    let mut kept = BTreeMap::new();
    for m in [&a, &b] {
        let owned = s.owned(m);
        let j = s.join_answer(classic_join(m, None, &owned));
        assert_eq!(j.error, ErrorCode::NONE);
        assert_eq!(j.leader, "", "classic members never lead");
        assert!(j.members.is_empty());
        assert_eq!(j.protocol_name.as_deref(), Some("cooperative-sticky"));
        let sy = s.sync_answer(sync(m, j.generation_id, vec![]));
        assert_eq!(sy.error, ErrorCode::NONE);
        kept.insert(m.clone(), assigned_in(&sy.assignment));
        s.check_single_owner();
    }
    let given_up: usize = 4 - kept.values().map(Vec::len).sum::<usize>();
    assert!(given_up >= 1, "c's share is revoked: {kept:?}");
    // Not yet released: c still waits.
    let r = s.hb(beat("c", epoch, &[]));
    assert_eq!(parts(&r.assignment), vec![]);
    // The members revoked and rejoin owning only what they kept.
    for m in [&a, &b] {
        let still = s.member(m);
        if still.state == MemberState::UnrevokedPartitions {
            assert_eq!(
                s.beat_classic(m, still.member_epoch),
                ErrorCode::REBALANCE_IN_PROGRESS,
                "must rejoin to acknowledge"
            );
        }
        let j = s.join_answer(classic_join(m, None, &kept[m]));
        assert_eq!(j.generation_id, epoch, "caught up");
        let sy = s.sync_answer(sync(m, j.generation_id, vec![]));
        assert_eq!(assigned_in(&sy.assignment), kept[m]);
        assert_eq!(s.beat_classic(m, epoch), ErrorCode::NONE, "settled");
    }
    let r = s.hb(beat("c", epoch, &[]));
    assert_eq!(
        parts(&r.assignment)
            .iter()
            .map(|(_, ps)| ps.len())
            .sum::<usize>(),
        given_up
    );
    assert_eq!(s.state(), "Stable");
    s.check_single_owner();
    s.check_replay();
}

/// An eager classic member gives everything up before it rejoins: its
/// JoinGroup owns nothing, and it is handed only partitions nobody else holds.
#[test]
fn an_eager_member_rejoins_owning_nothing_and_gets_back_only_free_partitions() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    s.hb(join("c", &["t"]));
    let j = s.join_answer(classic_join(&a, None, &[]));
    let sy = s.sync_answer(sync(&a, j.generation_id, vec![]));
    let got = assigned_in(&sy.assignment);
    assert!(
        got.iter().all(|p| [0, 1].contains(p)),
        "b's partitions are still b's: {got:?}"
    );
    assert!(s.owned(&b) == vec![2, 3]);
    s.check_single_owner();
    s.check_replay();
}

/// GMM.validateOnlineUpgrade and CG.fromClassicGroup: a live classic group is
/// not converted when the policy forbids it, when it is not a consumer group,
/// or when a member's metadata cannot be carried; the joining member gets
/// GROUP_ID_NOT_FOUND with the reason and nothing is written.
#[test]
fn upgrade_is_refused_by_policy_protocol_type_and_uncarriable_metadata() {
    for policy in [MigrationPolicy::Disabled, MigrationPolicy::Downgrade] {
        let mut s = Script::with(CoordinatorConfig {
            consumer_migration_policy: policy,
            ..config()
        });
        s.classic_group();
        let before = s.records.len();
        let r = s.hb(join("c", &["t"]));
        assert_eq!(r.error, ErrorCode::GROUP_ID_NOT_FOUND);
        assert!(r
            .error_message
            .unwrap()
            .contains("online upgrade is disabled"));
        assert_eq!(s.records.len(), before, "nothing written");
        assert!(s.c.group("g").is_some());
    }
    // A connect group (another protocol type).
    let mut s = Script::new();
    let mut j = classic_join("", None, &[]);
    j.protocol_type = "connect".into();
    s.send_all(GroupRequest::JoinGroup(j));
    s.advance(5_000);
    let r = s.hb(join("c", &["t"]));
    assert_eq!(r.error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert!(r
        .error_message
        .unwrap()
        .contains("does not use the consumer embedded protocol"));
    // Assignment user data (a custom client assignor's state).
    let mut s = Script::new();
    let (a, _) = s.classic_group();
    let g = s.c.groups.get_mut("g").unwrap();
    let mut with_data = embedded::write_assignment(3, &[("t".into(), vec![0, 1])]);
    let n = with_data.len();
    with_data[n - 4..].copy_from_slice(&1i32.to_be_bytes());
    with_data.push(9);
    g.members.get_mut(&a).unwrap().assignment = with_data.into();
    // A built-in assignor's echo of the subscription's user data (what
    // librdkafka's leader writes) loses nothing: converted.
    let mut echo = Script {
        c: Coordinator::new(s.c.config().clone()),
        records: vec![],
        ..Script::new()
    };
    for r in &s.records {
        echo.c.replay(r);
    }
    echo.c.handle(echo.now, Input::Topics(s.topics.clone()));
    let eg = echo.c.groups.get_mut("g").unwrap();
    eg.members.get_mut(&a).unwrap().assignment = s.c.groups["g"].members[&a].assignment.clone();
    assert_eq!(echo.hb(join("c", &["t"])).error, ErrorCode::NONE);
    // A custom assignor's user data would be lost: refused, as Kafka does.
    let g = s.c.groups.get_mut("g").unwrap();
    g.protocol_name = Some("custom".into());
    for m in g.members.values_mut() {
        m.protocols[0].0 = "custom".into();
    }
    let r = s.hb(join("c", &["t"]));
    assert_eq!(r.error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert!(r.error_message.unwrap().contains("custom assignor"));
    // Metadata that does not parse.
    let mut s = Script::new();
    let (a, _) = s.classic_group();
    let g = s.c.groups.get_mut("g").unwrap();
    for (_, meta) in g.members.get_mut(&a).unwrap().protocols.iter_mut() {
        *meta = Bytes::from_static(&[0, 1, 0, 0]);
    }
    let r = s.hb(join("c", &["t"]));
    assert_eq!(r.error, ErrorCode::GROUP_ID_NOT_FOUND);
    assert!(r.error_message.unwrap().contains("malformed"));
}

/// GMM.convertToConsumerGroup: a classic group in the middle of a rebalance
/// is converted too; whoever waits in a JoinGroup hears REBALANCE_IN_PROGRESS
/// and rejoins the consumer group. A member whose assignment the rebalance
/// voided keeps what its JoinGroup says it owns (Cohort: never counted as
/// owning nothing while it consumes).
#[test]
fn a_rebalancing_group_converts_and_waiting_joins_hear_rebalance_in_progress() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    // b rejoins (its subscription changed), a has not yet: PreparingRebalance.
    let (jb, replies) = s.send_all(GroupRequest::JoinGroup(classic_join(&b, None, &[2, 3])));
    assert!(replies.is_empty(), "parked at the join barrier");
    let (_, replies) = s.send_all(GroupRequest::ConsumerGroupHeartbeat(join("c", &["t"])));
    let waiting = replies
        .iter()
        .find(|(id, _)| *id == jb)
        .expect("b's JoinGroup answered");
    assert!(
        matches!(&waiting.1, GroupResponse::JoinGroup(j) if j.error == ErrorCode::REBALANCE_IN_PROGRESS)
    );
    assert_eq!(s.owned(&a), vec![0, 1]);
    assert_eq!(s.owned(&b), vec![2, 3]);
    s.check_single_owner();
    s.check_replay();
}

/// GMM.convertToClassicGroup, ClassicGroup.fromConsumerGroup: when the last
/// consumer-protocol member leaves and the rest speak the classic protocol,
/// the group turns back into a classic group at generation = group epoch,
/// each member's assignment its target, offsets kept, and one rebalance
/// starts at once.
#[test]
fn downgrade_when_the_last_consumer_member_leaves() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    let r = s.hb(join("c", &["t"]));
    let commit = OffsetCommitRequest {
        group_id: "g".into(),
        generation_id: r.member_epoch,
        member_id: "c".into(),
        group_instance_id: None,
        retention_ms: -1,
        offsets: vec![OffsetToCommit {
            partition: TopicPartition {
                topic: "t".into(),
                partition: 0,
            },
            offset: 7,
            leader_epoch: -1,
            metadata: None,
            unknown_partition: false,
        }],
        group_id_not_found_supported: true,
    };
    // c holds nothing yet, and 0 is a's: c's commit of it is refused; a's
    // (a classic member, by generation) is taken.
    let a_commit = OffsetCommitRequest {
        generation_id: s.member(&a).member_epoch,
        member_id: a.clone(),
        group_id_not_found_supported: false,
        ..commit.clone()
    };
    assert!(
        matches!(s.send(GroupRequest::OffsetCommit(a_commit.clone())), GroupResponse::OffsetCommit(v) if v[0].1 == ErrorCode::NONE)
    );
    let stale = OffsetCommitRequest {
        generation_id: 0,
        ..a_commit
    };
    assert!(
        matches!(s.send(GroupRequest::OffsetCommit(stale)), GroupResponse::OffsetCommit(v) if v[0].1 == ErrorCode::ILLEGAL_GENERATION)
    );
    let epoch = s.epoch();
    // What a and b still hold: their targets moved partitions to c, which
    // they have not revoked yet.
    let held = |s: &Script, m: &str| -> Vec<i32> {
        let m = s.member(m);
        let mut ps: Vec<i32> = [&m.assigned, &m.pending_revocation]
            .iter()
            .flat_map(|a| a.get(&T).into_iter().flatten().copied())
            .collect();
        ps.sort();
        ps
    };
    let before: BTreeMap<String, Vec<i32>> = [&a, &b]
        .iter()
        .map(|m| (m.to_string(), held(&s, m)))
        .collect();
    assert_eq!(before[&a], vec![0, 1]);
    assert_eq!(before[&b], vec![2, 3]);
    let left = s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("c", epoch, &[])
    });
    assert_eq!(left.error, ErrorCode::NONE);
    assert!(s.c.consumer_group("g").is_none());
    let g = s.c.group("g").expect("a classic group again");
    assert!(
        g.is(crate::classic::GroupState::PreparingRebalance),
        "the one forced rebalance"
    );
    assert_eq!(g.generation, epoch);
    assert_eq!(g.protocol_name.as_deref(), Some("cooperative-sticky"));
    for m in [&a, &b] {
        // What each still holds, not its target (Kafka writes the target).
        assert_eq!(assigned_in(&g.members[m].assignment), before[m]);
    }
    assert_eq!(s.beat_classic(&a, epoch), ErrorCode::REBALANCE_IN_PROGRESS);
    let fetched = s.c.offset_fetch(cohort_types::group::OffsetFetchRequest {
        groups: vec![("g".into(), None)],
        members: vec![None],
        require_stable: false,
    });
    assert_eq!(
        fetched[0].partitions[0].offset, 7,
        "offsets survive both conversions"
    );
    s.check_replay();
}

/// GMM.validateOnlineDowngradeWithFencedMember: with the policy at upgrade
/// only, the group stays a consumer group of classic members.
#[test]
fn downgrade_refused_by_policy_keeps_a_consumer_group_of_classic_members() {
    let mut s = Script::with(CoordinatorConfig {
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..config()
    });
    s.classic_group();
    let r = s.hb(join("c", &["t"]));
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("c", r.member_epoch, &[])
    });
    let g = s.c.consumer_group("g").expect("still a consumer group");
    assert_eq!(g.members.len(), 2);
    assert!(g.members.values().all(|m| m.uses_classic_protocol()));
    s.check_replay();
}

/// A classic member told to rejoin that never does is fenced at its
/// rebalance timeout (GMM.scheduleConsumerGroupJoinTimeoutIfAbsent); one that
/// joins and never syncs likewise (scheduleConsumerGroupSyncTimeout).
#[test]
fn a_classic_member_that_never_rejoins_or_never_syncs_is_fenced() {
    let mut s = Script::with(CoordinatorConfig {
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..config()
    });
    let (a, b) = s.classic_group();
    s.hb(join("c", &["t"]));
    assert_eq!(s.beat_classic(&a, 1), ErrorCode::REBALANCE_IN_PROGRESS);
    let j = s.join_answer(classic_join(&b, None, &[2, 3]));
    assert_eq!(j.error, ErrorCode::NONE);
    // Keep c's and b's sessions alive; a never rejoins, b never syncs.
    s.advance(9_000);
    s.hb(beat("c", s.epoch(), &[]));
    s.advance(21_500);
    let g = s.c.consumer_group("g").unwrap();
    assert!(!g.members.contains_key(&a), "a did not rejoin");
    assert!(!g.members.contains_key(&b), "b did not sync");
    s.check_replay();
}

/// Kafka's getOrMaybeSubscribeStaticConsumerGroupMember: a static classic
/// member restarting on the consumer protocol with the same instance id
/// takes its place at once (no release needed from a classic member) and gets
/// its partitions back; the others are not rebalanced.
#[test]
fn a_static_classic_member_restarting_on_the_consumer_protocol_keeps_its_partitions() {
    let mut s = Script::with(CoordinatorConfig {
        initial_rebalance_delay_ms: 0,
        ..config()
    });
    let (j, _) = s.send_all(GroupRequest::JoinGroup(classic_join("", Some("i"), &[])));
    s.advance(100);
    let _ = j;
    let old =
        s.c.group("g")
            .unwrap()
            .members
            .keys()
            .next()
            .unwrap()
            .clone();
    let generation = s.c.group("g").unwrap().generation;
    s.send_all(GroupRequest::SyncGroup(SyncGroupRequest {
        group_instance_id: Some("i".into()),
        ..sync(
            &old,
            generation,
            vec![(old.clone(), assignment(&[0, 1, 2, 3]))],
        )
    }));
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".into()),
        ..join("new", &["t"])
    });
    assert_eq!(r.error, ErrorCode::NONE, "{:?}", r.error_message);
    assert_eq!(parts(&r.assignment), vec![(T, vec![0, 1, 2, 3])]);
    let g = s.c.consumer_group("g").unwrap();
    assert!(!g.members.contains_key(&old));
    assert!(!g.members["new"].uses_classic_protocol());
    s.check_single_owner();
    s.check_replay();
}

/// An empty consumer group gives way to a classic JoinGroup (Kafka's
/// maybeDeleteEmptyConsumerGroup); with migration disabled, a classic member
/// may not join a live consumer group (KAFKA-20640).
#[test]
fn classic_joins_replace_an_empty_consumer_group_and_are_refused_when_migration_is_disabled() {
    let mut s = Script::new();
    let r = s.hb(join("c", &["t"]));
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("c", r.member_epoch, &[])
    });
    assert!(s.c.consumer_group("g").unwrap().members.is_empty());
    s.send_all(GroupRequest::JoinGroup(classic_join("", None, &[])));
    assert!(s.c.consumer_group("g").is_none());
    assert!(s.c.group("g").is_some());
    s.check_replay();

    let mut s = Script::with(CoordinatorConfig {
        consumer_migration_policy: MigrationPolicy::Disabled,
        ..config()
    });
    s.hb(join("c", &["t"]));
    let j = s.join_answer(classic_join("", None, &[]));
    assert_eq!(j.error, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    assert!(
        s.c.group("g").is_none(),
        "no classic group beside the consumer group"
    );
}

/// A mixed group restarts from its log: same group, epochs and owners.
#[test]
fn a_restart_in_the_middle_of_a_rollout_comes_back_to_the_same_group() {
    let mut s = Script::new();
    let (a, _) = s.classic_group();
    s.hb(join("c", &["t"]));
    let j = s.join_answer(classic_join(&a, None, &s.owned(&a)));
    assert_eq!(j.error, ErrorCode::NONE);
    let mut fresh = Coordinator::new(s.c.config().clone());
    for r in &s.records {
        fresh.replay(r);
    }
    fresh.loaded(s.now);
    assert_eq!(fresh.snapshot(), s.c.snapshot());
    let g = fresh.consumer_group("g").unwrap();
    assert!(g.members[&a].uses_classic_protocol());
    // Records carrying classic members survive the log's encoding.
    for r in &s.records {
        let (key, value) = r.encode();
        assert_eq!(&Record::decode(Some(&key), &value).unwrap(), r);
    }
}

/// GMM.classicGroupLeaveToConsumerGroup: a classic member's LeaveGroup
/// removes it like a consumer-protocol leave (the epoch moves on, its
/// partitions are free); a consumer-protocol member cannot be removed by
/// member id through LeaveGroup.
#[test]
fn a_classic_leave_removes_the_member_and_frees_its_partitions() {
    let mut s = Script::new();
    let (a, _) = s.classic_group();
    s.hb(join("c", &["t"]));
    let epoch = s.epoch();
    let leave = |m: &str| {
        GroupRequest::LeaveGroup(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![(m.to_string(), None)],
        })
    };
    match s.send(leave(&a)) {
        GroupResponse::LeaveGroup(l) => assert_eq!(l.members[0].2, ErrorCode::NONE),
        other => panic!("{other:?}"),
    }
    assert!(s.epoch() > epoch);
    assert!(!s.c.consumer_group("g").unwrap().members.contains_key(&a));
    match s.send(leave("c")) {
        GroupResponse::LeaveGroup(l) => assert_eq!(l.members[0].2, ErrorCode::UNKNOWN_MEMBER_ID),
        other => panic!("{other:?}"),
    }
    s.check_single_owner();
    s.check_replay();
}

/// KAFKA-17317 (GMM.validateOnlineDowngradeWithReplacedMemberId): a static
/// member restarting on the classic protocol in the place of the last
/// consumer-protocol member turns the group back into a classic group, with
/// everyone's assignment and no rebalance; it syncs and gets its partitions.
#[test]
fn a_classic_static_member_replacing_the_last_consumer_member_downgrades_without_a_rebalance() {
    let mut s = Script::new();
    let (a, _) = s.classic_group();
    let r = s.hb(ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".into()),
        ..join("c", &["t"])
    });
    let epoch = r.member_epoch;
    // Everyone settles: the classic members rejoin, c picks up what is free.
    for _ in 0..3 {
        for m in s.c.consumer_group("g").unwrap().members.clone().values() {
            if m.uses_classic_protocol() {
                let j = s.join_answer(classic_join(&m.member_id, None, &s.owned(&m.member_id)));
                s.sync_answer(sync(&m.member_id, j.generation_id, vec![]));
            } else {
                let owned = s
                    .member("c")
                    .assigned
                    .iter()
                    .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                    .collect::<Vec<_>>();
                s.hb(ConsumerGroupHeartbeatRequest {
                    instance_id: Some("i".into()),
                    ..beat("c", s.member("c").member_epoch, &owned)
                });
            }
        }
    }
    assert_eq!(s.state(), "Stable");
    let c_owns = s.owned("c");
    assert!(!c_owns.is_empty());
    let j = s.join_answer(classic_join("", Some("i"), &[]));
    assert_eq!(j.error, ErrorCode::NONE);
    let g = s.c.group("g").expect("a classic group again");
    assert!(g.is(crate::classic::GroupState::Stable), "no rebalance");
    assert!(g.members.contains_key(&a));
    assert_eq!(j.generation_id, g.generation);
    assert!(epoch <= g.generation);
    let sy = s.sync_answer(SyncGroupRequest {
        group_instance_id: Some("i".into()),
        ..sync(&j.member_id, j.generation_id, vec![])
    });
    assert_eq!(sy.error, ErrorCode::NONE);
    assert_eq!(
        assigned_in(&sy.assignment),
        c_owns,
        "the new instance gets what the old one owned"
    );
    s.check_replay();
}

/// Held heartbeats reach classic members of a mixed group too: a classic
/// member's Heartbeat with nothing to do is held, and answered
/// REBALANCE_IN_PROGRESS in the round that bumps the group epoch (a member
/// joined), so it rejoins at once instead of at its next interval. Kafka has
/// no hold; its answer at the next Heartbeat is the same
/// (GMM.classicGroupHeartbeatToConsumerGroup).
#[test]
fn a_held_classic_heartbeat_in_a_mixed_group_is_answered_when_the_epoch_moves() {
    let mut s = Script::with(CoordinatorConfig {
        classic_hold_heartbeat_ms: 2_500,
        ..config()
    });
    let (a, b) = s.classic_group();
    s.hb(join("c", &["t"]));
    // Both classic members catch up with the consumer group.
    for m in [&a, &b] {
        assert_eq!(s.beat_classic(m, 1), ErrorCode::REBALANCE_IN_PROGRESS);
    }
    for _ in 0..4 {
        for m in [a.clone(), b.clone()] {
            let owned = s.owned(&m);
            let j = s.join_answer(classic_join(&m, None, &owned));
            s.sync_answer(sync(&m, j.generation_id, vec![]));
        }
        let epoch = s.epoch();
        let owned = owned_now(&s, "c");
        s.hb(beat("c", epoch, &owned));
    }
    let g = s.c.consumer_group("g").unwrap();
    assert!(
        g.members
            .values()
            .all(|m| m.member_epoch == g.epoch && m.state == MemberState::Stable),
        "settled"
    );
    let epoch = s.epoch();
    // a's heartbeat, with nothing to do, is held.
    s.connection = 21;
    let (held, replies) = s.send_all(heartbeat(&a, epoch));
    assert!(replies.is_empty(), "held: {replies:?}");
    assert_eq!(s.c.held_heartbeats(), 1);
    // Another consumer-protocol member joins: the epoch moves, a hears now.
    s.connection = 22;
    let (_, replies) = s.send_all(GroupRequest::ConsumerGroupHeartbeat(join("d", &["t"])));
    let to_a: Vec<&GroupResponse> = replies
        .iter()
        .filter(|(id, _)| *id == held)
        .map(|(_, r)| r)
        .collect();
    assert!(
        matches!(
            to_a[..],
            [GroupResponse::Heartbeat(ErrorCode::REBALANCE_IN_PROGRESS)]
        ),
        "{replies:?}"
    );
    assert_eq!(s.c.held_heartbeats(), 0);
    s.check_replay();
}

/// Classic requests naming a consumer-protocol member of a mixed group: a
/// Heartbeat, a SyncGroup and a LeaveGroup each get UNKNOWN_MEMBER_ID and
/// change nothing (GMM.throwIfMemberDoesNotUseClassicProtocol, called by
/// classicGroup{Heartbeat,Sync,Leave}ToConsumerGroup). A classic JoinGroup
/// with that id may take the member over, as Kafka's
/// classicGroupJoinToConsumerGroup allows; that is a rejoin, covered above.
#[test]
fn classic_requests_naming_a_consumer_protocol_member_are_refused() {
    let mut s = Script::new();
    let (a, _b) = s.classic_group();
    let r = s.hb(join("c", &["t"]));
    let epoch = r.member_epoch;
    let before = s.c.snapshot();
    let records = s.records.len();
    assert_eq!(s.beat_classic("c", epoch), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(
        s.sync_answer(sync("c", epoch, vec![("c".into(), assignment(&[0]))]))
            .error,
        ErrorCode::UNKNOWN_MEMBER_ID
    );
    match s.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![("c".into(), None), (a.clone(), None)],
    })) {
        GroupResponse::LeaveGroup(l) => {
            assert_eq!(l.members[0].2, ErrorCode::UNKNOWN_MEMBER_ID, "{l:?}");
            assert_eq!(
                l.members[1].2,
                ErrorCode::NONE,
                "the classic member in the same request leaves"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let g = s.c.consumer_group("g").unwrap();
    assert!(g.members.contains_key("c") && !g.members["c"].uses_classic_protocol());
    assert!(!g.members.contains_key(&a));
    // Only a's leave wrote anything; c's state is as it was.
    assert!(s.records.len() > records);
    let c_before: Vec<&Record> = before
        .iter()
        .filter(|r| matches!(r, Record::ConsumerMember(m) if m.member_id == "c"))
        .collect();
    let after = s.c.snapshot();
    let c_after: Vec<&Record> = after
        .iter()
        .filter(|r| matches!(r, Record::ConsumerMember(m) if m.member_id == "c"))
        .collect();
    assert_eq!(c_before, c_after);
    s.check_replay();
}

/// A downgrade and, during its forced rebalance, an upgrade again: the
/// consumer group rebuilt from the classic assignments (CG.fromClassicGroup
/// takes them as owned) must not hand a partition a member still holds to
/// anyone else. Kafka's ClassicGroup.fromConsumerGroup writes each member's
/// target, which names partitions others have not revoked; Cohort writes what
/// each member holds. Found by the simulator (a rollout of 12 members over 48
/// partitions, seed 7202).
#[test]
fn an_upgrade_right_after_a_downgrade_gives_nobody_a_partition_still_held() {
    let mut s = Script::new();
    let (a, b) = s.classic_group();
    s.hb(join("c", &["t"]));
    // c's target takes a partition from a and one from b; neither has
    // revoked (they have not rejoined): a holds 0 and 1, b 2 and 3.
    let epoch = s.epoch();
    s.hb(ConsumerGroupHeartbeatRequest {
        member_epoch: -1,
        ..beat("c", epoch, &[])
    });
    assert!(s.c.group("g").is_some(), "downgraded");
    // d speaks the consumer protocol and joins during the forced rebalance.
    let r = s.hb(join("d", &["t"]));
    assert_eq!(r.error, ErrorCode::NONE);
    assert!(s.c.consumer_group("g").is_some(), "upgraded again");
    s.check_single_owner();
    let mut owned_by_d: Vec<i32> = parts(&r.assignment)
        .into_iter()
        .flat_map(|(_, ps)| ps)
        .collect();
    let epoch = s.epoch();
    for _ in 0..3 {
        let r = s.hb(beat("d", epoch, &[]));
        owned_by_d.extend(parts(&r.assignment).into_iter().flat_map(|(_, ps)| ps));
    }
    assert!(
        owned_by_d.is_empty(),
        "a and b still hold 0..3 until they revoke; d was given {owned_by_d:?}"
    );
    assert_eq!(
        s.owned(&a).len()
            + s.member(&a)
                .pending_revocation
                .values()
                .map(|p| p.len())
                .sum::<usize>(),
        2
    );
    assert_eq!(
        s.owned(&b).len()
            + s.member(&b)
                .pending_revocation
                .values()
                .map(|p| p.len())
                .sum::<usize>(),
        2
    );
    s.check_replay();
}
