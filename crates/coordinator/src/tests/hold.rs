//! Held classic heartbeats (see `hold`): each rule that releases one.

use super::*;

fn holding() -> Script {
    Script::with(CoordinatorConfig {
        classic_hold_heartbeat_ms: 2_500,
        ..config()
    })
}

fn beat(s: &mut Script, member: &str, connection: u64) -> RequestId {
    s.connection = connection;
    s.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: member.into(),
        group_instance_id: None,
    }))
}

fn answer(s: &Script, id: RequestId) -> Option<ErrorCode> {
    match s.reply(id) {
        Some(GroupResponse::Heartbeat(e)) => Some(*e),
        None => None,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_held_heartbeat_is_answered_when_the_hold_is_up() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    assert_eq!(answer(&s, hb), None, "held");
    assert_eq!(s.c.held_heartbeats(), 1);
    s.advance(2_499);
    assert_eq!(answer(&s, hb), None);
    s.advance(1);
    assert_eq!(answer(&s, hb), Some(ErrorCode::NONE));
    assert_eq!(s.c.held_heartbeats(), 0);
}

#[test]
fn a_rebalance_answers_every_held_heartbeat_of_the_group_at_once() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    let a = beat(&mut s, &ids[0], 10);
    let b = beat(&mut s, &ids[1], 11);
    // A third member joins: the group rebalances.
    s.connection = 12;
    let (_, _join) = s.join_new();
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert_eq!(answer(&s, a), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    assert_eq!(answer(&s, b), Some(ErrorCode::REBALANCE_IN_PROGRESS));
}

#[test]
fn a_later_request_on_the_same_connection_releases_the_held_one_first() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    let other = beat(&mut s, &ids[1], 11);
    let e = s.c.handle(s.now, Input::ConnectionActivity(10));
    s.absorb(e);
    assert_eq!(answer(&s, hb), Some(ErrorCode::NONE));
    assert_eq!(answer(&s, other), None, "another connection's stays held");
}

/// librdkafka sends its first Heartbeat and its OffsetFetch together right
/// after SyncGroup; when both are read at once the shell's activity signal
/// can reach the coordinator before the Heartbeat does. A group request on
/// the connection releases the held answer by itself, first, so the fetch's
/// answer never waits behind it.
#[test]
fn a_group_request_on_the_same_connection_releases_the_held_one_by_itself() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    let before = s.replies.len();
    s.connection = 10;
    let fetch = s.send(GroupRequest::OffsetFetch(OffsetFetchRequest {
        groups: vec![("g".into(), None)],
        require_stable: false,
        members: vec![None],
    }));
    assert_eq!(answer(&s, hb), Some(ErrorCode::NONE));
    let order: Vec<RequestId> = s.replies[before..].iter().map(|(i, _)| *i).collect();
    assert_eq!(order, vec![hb, fetch], "the held answer goes first");
    assert_eq!(s.c.held_heartbeats(), 0);
}

#[test]
fn a_closed_connection_releases_its_held_heartbeat() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    let e = s.c.handle(s.now, Input::ConnectionClosed(10));
    s.absorb(e);
    assert_eq!(answer(&s, hb), Some(ErrorCode::NONE));
    assert_eq!(s.c.held_heartbeats(), 0);
}

#[test]
fn nothing_is_held_outside_a_stable_group_or_past_the_session() {
    let mut s = holding();
    let ids = stable_group(&mut s, 2);
    s.connection = 10;
    s.join(&ids[0], RANGE);
    // PreparingRebalance: answered at once.
    let hb = beat(&mut s, &ids[1], 11);
    assert_eq!(answer(&s, hb), Some(ErrorCode::REBALANCE_IN_PROGRESS));
    // A hold longer than a member's session is cut to leave a second.
    let mut s = Script::with(CoordinatorConfig {
        classic_hold_heartbeat_ms: 60_000,
        ..config()
    });
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    s.advance(8_999);
    assert_eq!(answer(&s, hb), None);
    s.advance(1);
    assert_eq!(
        answer(&s, hb),
        Some(ErrorCode::NONE),
        "the 10 s session less a second"
    );
    assert!(s.c.group("g").unwrap().members.contains_key(&ids[0]));
}

#[test]
fn with_the_hold_off_heartbeats_are_answered_at_once() {
    let mut s = Script::new();
    let ids = stable_group(&mut s, 2);
    let hb = beat(&mut s, &ids[0], 10);
    assert_eq!(answer(&s, hb), Some(ErrorCode::NONE));
}

/// librdkafka's test 0113 (`v_commit_during_rebalance`): a member leaves; the
/// other hears at once through its held heartbeat and rejoins; its
/// JoinGroup answer gives it generation 2, then its application closes it,
/// so it never syncs, and commits in its revocation callback with
/// generation 2. Kafka answers REBALANCE_IN_PROGRESS between JoinGroup and
/// SyncGroup, which the test rejects (with Kafka's 3 s heartbeat the member
/// would still be in generation 1, whose commits are accepted). With the
/// hold on, the commit is accepted; with it off, Kafka's answer stands.
#[test]
fn a_commit_between_join_and_sync_is_accepted_when_members_hear_early() {
    fn commit(s: &mut Script, member: &str, generation: i32) -> ErrorCode {
        let id = s.send(GroupRequest::OffsetCommit(OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: None,
            retention_ms: -1,
            offsets: vec![OffsetToCommit {
                partition: TopicPartition::new("t", 0),
                offset: 7,
                leader_epoch: 0,
                metadata: None,
                unknown_partition: false,
            }],
            group_id_not_found_supported: true,
        }));
        match s.reply(id) {
            Some(GroupResponse::OffsetCommit(r)) => r[0].1,
            other => panic!("{other:?}"),
        }
    }
    for (mut s, expected) in [
        (holding(), ErrorCode::NONE),
        (Script::new(), ErrorCode::REBALANCE_IN_PROGRESS),
    ] {
        let ids = stable_group(&mut s, 2);
        let hb = beat(&mut s, &ids[1], 11);
        s.connection = 10;
        s.send(GroupRequest::LeaveGroup(LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![(ids[0].clone(), None)],
        }));
        if expected == ErrorCode::NONE {
            assert_eq!(answer(&s, hb), Some(ErrorCode::REBALANCE_IN_PROGRESS));
        }
        s.connection = 11;
        let rejoin = s.join(&ids[1], RANGE);
        assert_eq!(s.join_reply(rejoin).generation_id, 2);
        assert_eq!(s.state(), GroupState::CompletingRebalance);
        assert_eq!(commit(&mut s, &ids[1], 2), expected);
        assert_eq!(commit(&mut s, &ids[1], 1), ErrorCode::ILLEGAL_GENERATION);
    }
}
