//! Held SyncGroup answers in a cooperative round that must be followed by
//! another (see `classic::follow_up`): each rule that releases one.

use super::*;
use crate::embedded::{write_assignment, write_subscription, Subscription};
use std::collections::BTreeMap;

const COOP: &str = "cooperative-sticky";

fn holding() -> Script {
    Script::with(CoordinatorConfig {
        classic_hold_heartbeat_ms: 2_500,
        classic_follow_up_hold: true,
        ..config()
    })
}

fn sub(owned: &[i32]) -> Vec<u8> {
    write_subscription(&Subscription {
        version: 1,
        topics: vec!["t".into()],
        user_data: None,
        owned: vec![("t".into(), owned.to_vec())],
        generation: -1,
        rack: None,
    })
}

fn asg(ps: &[i32]) -> Vec<u8> {
    write_assignment(1, &[("t".into(), ps.to_vec())])
}

/// A cooperative member's JoinGroup, reporting what it owns, on `connection`.
fn join(s: &mut Script, member: &str, owned: &[i32], connection: u64) -> RequestId {
    s.connection = connection;
    let meta = sub(owned);
    s.join(member, &[(COOP, meta.as_slice())])
}

fn sync_on(
    s: &mut Script,
    member: &str,
    generation: i32,
    assignments: &[(&str, Vec<u8>)],
    connection: u64,
) -> RequestId {
    s.connection = connection;
    let refs: Vec<(&str, &[u8])> = assignments
        .iter()
        .map(|(m, a)| (*m, a.as_slice()))
        .collect();
    s.sync(member, generation, &refs)
}

fn error(s: &Script, id: RequestId) -> Option<ErrorCode> {
    s.reply(id).map(|_| s.sync_reply(id).error)
}

/// A and B own t-0..2 and t-3..5 (stable, generation `g`); C has joined and
/// the first cooperative round is complete: A was asked to give t-2 up; B's
/// and C's SyncGroups are what the test looks at. Returns (ids [A, B, C],
/// generation, B's SyncGroup, C's SyncGroup, A's SyncGroup).
struct Round {
    a: String,
    b: String,
    c: String,
    generation: i32,
    sync_a: RequestId,
    sync_b: RequestId,
    sync_c: RequestId,
}

fn first_round(s: &mut Script) -> Round {
    // Two members, one cooperative round each owning three partitions.
    let a0 = join(s, "", &[], 1);
    let a = s.join_reply(a0).member_id;
    let b0 = join(s, "", &[], 2);
    let b = s.join_reply(b0).member_id;
    let ja = join(s, &a, &[], 1);
    let jb = join(s, &b, &[], 2);
    s.settle(ja);
    let generation = s.join_reply(ja).generation_id;
    let (leader, follower) = if s.join_reply(ja).leader == a {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    };
    assert!(s.reply(jb).is_some());
    let plan = [(a.as_str(), asg(&[0, 1, 2])), (b.as_str(), asg(&[3, 4, 5]))];
    let conn = |m: &str| if m == a { 1 } else { 2 };
    sync_on(s, &follower, generation, &[], conn(&follower));
    let done = sync_on(s, &leader, generation, &plan, conn(&leader));
    assert_eq!(error(s, done), Some(ErrorCode::NONE));
    assert_eq!(s.state(), GroupState::Stable);
    assert_eq!(s.c.held_syncs(), 0, "nobody lost a partition");

    // C joins; A and B hear it and rejoin, reporting what they own.
    let c0 = join(s, "", &[], 3);
    let c = s.join_reply(c0).member_id;
    let jc = join(s, &c, &[], 3);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    let ja = join(s, &a, &[0, 1, 2], 1);
    let jb = join(s, &b, &[3, 4, 5], 2);
    s.settle(ja);
    for j in [ja, jb, jc] {
        assert_eq!(s.join_reply(j).error, ErrorCode::NONE);
    }
    let generation = s.join_reply(ja).generation_id;
    let leader = s.join_reply(ja).leader;
    // The leader takes t-2 from A and gives it to nobody yet.
    let plan = [
        (a.as_str(), asg(&[0, 1])),
        (b.as_str(), asg(&[3, 4, 5])),
        (c.as_str(), asg(&[])),
    ];
    let conns = [(a.clone(), 1), (b.clone(), 2), (c.clone(), 3)];
    let mut syncs = BTreeMap::new();
    for (m, conn) in conns.iter().filter(|(m, _)| *m != leader) {
        syncs.insert(m.clone(), sync_on(s, m, generation, &[], *conn));
    }
    let (_, conn) = conns.iter().find(|(m, _)| *m == leader).unwrap();
    syncs.insert(
        leader.clone(),
        sync_on(s, &leader, generation, &plan, *conn),
    );
    assert_eq!(s.state(), GroupState::Stable);
    Round {
        sync_a: syncs[&a],
        sync_b: syncs[&b],
        sync_c: syncs[&c],
        a,
        b,
        c,
        generation,
    }
}

/// A Heartbeat's answer; a held one is released by the next request on
/// its connection.
fn heartbeat(s: &mut Script, member: &str, generation: i32, connection: u64) -> ErrorCode {
    s.connection = connection;
    let id = s.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
    }));
    let e = s.c.handle(s.now, Input::ConnectionActivity(connection));
    s.absorb(e);
    match s.reply(id) {
        Some(GroupResponse::Heartbeat(e)) => *e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn members_with_nothing_to_do_are_carried_into_the_follow_up_round_without_rejoining() {
    let mut s = holding();
    let r = first_round(&mut s);
    let a = s.sync_reply(r.sync_a);
    assert_eq!(a.error, ErrorCode::NONE);
    assert_eq!(a.assignment.as_ref(), asg(&[0, 1]).as_slice());
    assert_eq!(error(&s, r.sync_b), None, "B keeps what it owns: held");
    assert_eq!(error(&s, r.sync_c), None, "C gets nothing yet: held");
    assert_eq!(s.c.held_syncs(), 2);

    // A revokes t-2 and rejoins. B and C count as joined with what they
    // said before (it is still true), so the round completes at once and A
    // leads it.
    let ja = join(&mut s, &r.a, &[0, 1], 1);
    let j = s.join_reply(ja);
    assert_eq!(j.error, ErrorCode::NONE);
    assert_eq!(j.generation_id, r.generation + 1);
    assert_eq!(
        j.leader, r.a,
        "a carried member cannot lead: it has no JoinGroup to answer"
    );
    assert_eq!(
        j.members.len(),
        3,
        "the leader sees every member's subscription"
    );
    assert_eq!(error(&s, r.sync_b), None);
    assert_eq!(error(&s, r.sync_c), None);
    let pending = &s.c.group("g").unwrap().pending_sync;
    assert!(
        !pending.contains(&r.b) && !pending.contains(&r.c),
        "their SyncGroups are parked already: the sync timeout must not remove them"
    );

    // The leader gives t-2 to C; B and C hear this round's assignment in
    // the answer to the SyncGroup they sent for the previous one.
    let plan = [
        (r.a.as_str(), asg(&[0, 1])),
        (r.b.as_str(), asg(&[3, 4, 5])),
        (r.c.as_str(), asg(&[2])),
    ];
    sync_on(&mut s, &r.a, r.generation + 1, &plan, 1);
    assert_eq!(s.state(), GroupState::Stable);
    assert_eq!(
        s.sync_reply(r.sync_b).assignment.as_ref(),
        asg(&[3, 4, 5]).as_slice()
    );
    assert_eq!(s.sync_reply(r.sync_c).error, ErrorCode::NONE);
    assert_eq!(
        s.sync_reply(r.sync_c).assignment.as_ref(),
        asg(&[2]).as_slice()
    );
    assert_eq!(s.c.held_syncs(), 0);

    // C was told generation g (its last JoinGroup answer) and speaks for it;
    // that stays valid for C, and only for C.
    assert_eq!(heartbeat(&mut s, &r.c, r.generation, 3), ErrorCode::NONE);
    assert_eq!(
        heartbeat(&mut s, &r.a, r.generation, 1),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut s, &r.a, r.generation + 1, 1),
        ErrorCode::NONE
    );
    assert_eq!(
        heartbeat(&mut s, &r.c, r.generation - 1, 3),
        ErrorCode::ILLEGAL_GENERATION
    );
}

#[test]
fn a_carried_member_that_rejoins_learns_the_new_generation_and_loses_the_old_one() {
    let mut s = holding();
    let r = first_round(&mut s);
    join(&mut s, &r.a, &[0, 1], 1);
    let plan = [
        (r.a.as_str(), asg(&[0, 1])),
        (r.b.as_str(), asg(&[3, 4, 5])),
        (r.c.as_str(), asg(&[2])),
    ];
    sync_on(&mut s, &r.a, r.generation + 1, &plan, 1);
    // C rejoins (say its subscription changed): a round of its own.
    let jc = join(&mut s, &r.c, &[2], 3);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    let ja = join(&mut s, &r.a, &[0, 1], 1);
    let jb = join(&mut s, &r.b, &[3, 4, 5], 2);
    for j in [ja, jb, jc] {
        assert_eq!(s.join_reply(j).generation_id, r.generation + 2);
    }
    let plan = [
        (r.a.as_str(), asg(&[0, 1])),
        (r.b.as_str(), asg(&[3, 4, 5])),
        (r.c.as_str(), asg(&[2])),
    ];
    let leader = s.join_reply(ja).leader;
    for (m, conn) in [(&r.a, 1), (&r.b, 2), (&r.c, 3)] {
        let given: &[(&str, Vec<u8>)] = if *m == leader { &plan } else { &[] };
        sync_on(&mut s, m, r.generation + 2, given, conn);
    }
    assert_eq!(
        heartbeat(&mut s, &r.c, r.generation, 3),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut s, &r.c, r.generation + 2, 3),
        ErrorCode::NONE
    );
}

#[test]
fn a_carried_member_whose_round_does_not_complete_within_the_hold_must_rejoin_itself() {
    let mut s = holding();
    let r = first_round(&mut s);
    // A new member D starts a round before A has rejoined: B and C are
    // carried, A is still revoking.
    let d0 = join(&mut s, "", &[], 4);
    let d = s.join_reply(d0).member_id;
    let jd = join(&mut s, &d, &[], 4);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert_eq!(error(&s, r.sync_b), None, "carried");
    s.advance(2_500);
    assert_eq!(error(&s, r.sync_b), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert_eq!(error(&s, r.sync_c), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert_eq!(
        s.state(),
        GroupState::PreparingRebalance,
        "the round waits for B and C now"
    );
    let ja = join(&mut s, &r.a, &[0, 1], 1);
    let jb = join(&mut s, &r.b, &[3, 4, 5], 2);
    assert!(s.reply(ja).is_none(), "C has not rejoined yet");
    let jc = join(&mut s, &r.c, &[], 3);
    for j in [ja, jb, jc, jd] {
        assert_eq!(s.join_reply(j).error, ErrorCode::NONE);
        assert_eq!(s.join_reply(j).generation_id, r.generation + 1);
    }
}

#[test]
fn a_round_with_only_carried_members_asks_them_to_rejoin_themselves() {
    let mut s = holding();
    let r = first_round(&mut s);
    // A leaves instead of rejoining: B and C are carried, and nobody has a
    // JoinGroup that could lead the round.
    s.connection = 1;
    s.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![(r.a.clone(), None)],
    }));
    assert_eq!(error(&s, r.sync_b), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert_eq!(error(&s, r.sync_c), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    let jb = join(&mut s, &r.b, &[3, 4, 5], 2);
    let jc = join(&mut s, &r.c, &[], 3);
    assert_eq!(s.join_reply(jb).generation_id, r.generation + 1);
    assert_eq!(s.join_reply(jc).error, ErrorCode::NONE);
}

#[test]
fn a_held_sync_gets_its_assignment_when_no_round_follows_within_the_hold() {
    let mut s = holding();
    let r = first_round(&mut s);
    s.advance(2_499);
    assert_eq!(error(&s, r.sync_b), None);
    s.advance(1);
    let b = s.sync_reply(r.sync_b);
    assert_eq!(b.error, ErrorCode::NONE);
    assert_eq!(b.assignment.as_ref(), asg(&[3, 4, 5]).as_slice());
    assert_eq!(b.protocol_name.as_deref(), Some(COOP));
    assert_eq!(error(&s, r.sync_c), Some(ErrorCode::NONE));
    assert_eq!(s.c.held_syncs(), 0);
    // The session is not harmed by the wait: heartbeats of that generation
    // are answered normally (and held again).
    assert_eq!(s.state(), GroupState::Stable);
}

#[test]
fn a_later_request_on_the_same_connection_releases_the_held_sync_first() {
    let mut s = holding();
    let r = first_round(&mut s);
    let e = s.c.handle(s.now, Input::ConnectionActivity(2));
    s.absorb(e);
    assert_eq!(error(&s, r.sync_b), Some(ErrorCode::NONE));
    assert_eq!(error(&s, r.sync_c), None, "another connection's stays held");
}

#[test]
fn a_closed_connection_releases_its_held_sync() {
    let mut s = holding();
    let r = first_round(&mut s);
    let e = s.c.handle(s.now, Input::ConnectionClosed(3));
    s.absorb(e);
    assert_eq!(error(&s, r.sync_c), Some(ErrorCode::NONE));
    assert_eq!(error(&s, r.sync_b), None);
}

#[test]
fn a_member_leaving_while_its_sync_is_held_hears_it_is_unknown() {
    let mut s = holding();
    let r = first_round(&mut s);
    // B's LeaveGroup comes on another connection (its held answer would
    // otherwise be released by the request itself).
    s.connection = 9;
    s.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![(r.b.clone(), None)],
    }));
    assert_eq!(error(&s, r.sync_b), Some(ErrorCode::UNKNOWN_MEMBER_ID));
    // The leave starts a round: C is carried into it, A rejoins and leads.
    assert_eq!(error(&s, r.sync_c), None);
    let ja = join(&mut s, &r.a, &[0, 1], 1);
    assert_eq!(s.join_reply(ja).leader, r.a);
    let plan = [
        (r.a.as_str(), asg(&[0, 1, 3])),
        (r.c.as_str(), asg(&[4, 5])),
    ];
    sync_on(&mut s, &r.a, r.generation + 1, &plan, 1);
    assert_eq!(
        s.sync_reply(r.sync_c).assignment.as_ref(),
        asg(&[4, 5]).as_slice()
    );
}

#[test]
fn with_the_hold_off_every_sync_is_answered_at_once_as_kafka_does() {
    let mut s = Script::new();
    let r = first_round(&mut s);
    assert_eq!(error(&s, r.sync_b), Some(ErrorCode::NONE));
    assert_eq!(error(&s, r.sync_c), Some(ErrorCode::NONE));
    assert_eq!(s.c.held_syncs(), 0);
}

#[test]
fn holding_a_sync_writes_the_same_records_as_answering_it() {
    // Held answers are soft state: the log cannot tell them apart.
    let records = |mut s: Script| {
        first_round(&mut s);
        let a = s.trace.iter().filter(|l| l.starts_with("record")).cloned();
        a.collect::<Vec<_>>()
    };
    let held = records(holding());
    assert!(!held.is_empty());
    assert_eq!(held, records(Script::new()));
}

#[test]
fn the_generation_a_carried_member_was_told_survives_a_restart() {
    let mut s = holding();
    let r = first_round(&mut s);
    join(&mut s, &r.a, &[0, 1], 1);
    let plan = [
        (r.a.as_str(), asg(&[0, 1])),
        (r.b.as_str(), asg(&[3, 4, 5])),
        (r.c.as_str(), asg(&[2])),
    ];
    sync_on(&mut s, &r.a, r.generation + 1, &plan, 1);
    let last = s.records.last().unwrap().clone();
    let Record::Group(g) = &last else {
        panic!("{last:?}")
    };
    let told: Vec<_> = g
        .members
        .iter()
        .map(|m| (m.member_id.as_str(), m.told_generation))
        .collect();
    assert!(told.contains(&(r.c.as_str(), Some(r.generation))));
    assert!(told.contains(&(r.a.as_str(), None)));
    // Written at version 1 (a broker that reads only version 0 refuses it
    // rather than forget the generation), and read back whole.
    let (key, value) = last.encode();
    assert_eq!(u16::from_be_bytes([key[2], key[3]]), 1);
    assert_eq!(Record::decode(Some(&key), &value).unwrap(), last);

    let mut fresh = Script::new();
    for rec in &s.records {
        fresh.c.replay(rec);
    }
    fresh.c.loaded(s.now);
    assert_eq!(fresh.c.snapshot(), s.c.snapshot());
    assert_eq!(fresh.heartbeat(&r.c, r.generation), ErrorCode::NONE);
    assert_eq!(
        fresh.heartbeat(&r.a, r.generation),
        ErrorCode::ILLEGAL_GENERATION
    );
}

/// The group is upgraded (a consumer-protocol member joins) while a member
/// still speaks for the generation it was told: that is its member epoch, so
/// its next Heartbeat hears REBALANCE_IN_PROGRESS and it rejoins owning what
/// it owns, rather than ILLEGAL_GENERATION and losing everything.
#[test]
fn an_upgrade_keeps_the_generation_a_carried_member_speaks_for() {
    let mut s = holding();
    let topics =
        std::collections::BTreeMap::from([("t".to_string(), (cohort_types::TopicId([1; 16]), 6))]);
    let e = s.c.handle(s.now, Input::Topics(topics));
    s.absorb(e);
    let r = first_round(&mut s);
    join(&mut s, &r.a, &[0, 1], 1);
    let plan = [
        (r.a.as_str(), asg(&[0, 1])),
        (r.b.as_str(), asg(&[3, 4, 5])),
        (r.c.as_str(), asg(&[2])),
    ];
    sync_on(&mut s, &r.a, r.generation + 1, &plan, 1);
    s.connection = 7;
    s.send(GroupRequest::ConsumerGroupHeartbeat(
        crate::consumer::tests::join("d", &["t"]),
    ));
    let g = s.c.consumer_group("g").expect("upgraded");
    assert_eq!(g.members[&r.c].member_epoch, r.generation);
    assert_eq!(g.members[&r.a].member_epoch, r.generation + 1);
    assert_eq!(
        heartbeat(&mut s, &r.c, r.generation, 3),
        ErrorCode::REBALANCE_IN_PROGRESS,
        "behind the group: rejoin, keeping what it owns"
    );
    assert_eq!(
        heartbeat(&mut s, &r.a, r.generation + 1, 1),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}
