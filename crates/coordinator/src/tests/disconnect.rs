//! Classic members removed when their connection ends (see `connections`).

use super::*;

/// A stable group of two where member i heartbeats on connection 10 + i
/// every 3 s (the clients' default interval); the last round was just now.
fn group_on_connections(s: &mut Script) -> Vec<String> {
    let ids = stable_group(s, 2);
    for round in 0..2 {
        if round > 0 {
            s.advance(3_000);
        }
        for (i, m) in ids.iter().enumerate() {
            s.connection = 10 + i as u64;
            assert_eq!(s.heartbeat(m, 1), ErrorCode::NONE);
        }
    }
    ids
}

fn close(s: &mut Script, connection: u64) {
    let e = s.c.handle(s.now, Input::ConnectionClosed(connection));
    s.absorb(e);
}

#[test]
fn a_dynamic_member_whose_connection_ends_is_removed_once_it_misses_its_next_heartbeat() {
    let mut s = Script::new();
    let ids = group_on_connections(&mut s);
    s.advance(1_000);
    close(&mut s, 11);
    // Its next heartbeat was due 3 s after its last; the grace is 500 ms.
    s.advance(2_499);
    assert_eq!(s.state(), GroupState::Stable, "not yet overdue");
    s.advance(1);
    assert_eq!(s.state(), GroupState::PreparingRebalance);
    assert!(!s.c.group("g").unwrap().members.contains_key(&ids[1]));
    // The survivor rebalances alone; the removed member is fenced if it
    // speaks again (it must rejoin as a new member).
    s.connection = 10;
    assert_eq!(s.heartbeat(&ids[0], 1), ErrorCode::REBALANCE_IN_PROGRESS);
    s.connection = 12;
    assert_eq!(s.heartbeat(&ids[1], 1), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn a_member_that_reconnects_and_keeps_its_cadence_stays() {
    let mut s = Script::new();
    let ids = group_on_connections(&mut s);
    close(&mut s, 11);
    for _ in 0..3 {
        s.advance(3_000);
        s.connection = 10;
        assert_eq!(s.heartbeat(&ids[0], 1), ErrorCode::NONE);
        s.connection = 12;
        assert_eq!(s.heartbeat(&ids[1], 1), ErrorCode::NONE);
    }
    assert_eq!(s.state(), GroupState::Stable);
    // Its old connection no longer counts.
    close(&mut s, 11);
    s.advance(2_000);
    assert_eq!(s.state(), GroupState::Stable);
}

#[test]
fn a_connection_closing_that_carried_no_member_changes_nothing() {
    let mut s = Script::new();
    group_on_connections(&mut s);
    close(&mut s, 99);
    s.advance(2_000);
    assert_eq!(s.state(), GroupState::Stable);
}

#[test]
fn a_static_member_keeps_its_session_timeout() {
    let mut s = Script::new();
    let a = s.join_static("", "i-a", RANGE);
    s.settle(a);
    let ra = s.join_reply(a);
    s.sync(&ra.member_id, 1, &[(&ra.member_id, b"A")]);
    s.connection = 20;
    let hb = s.send(GroupRequest::Heartbeat(HeartbeatRequest {
        group_id: "g".into(),
        generation_id: 1,
        member_id: ra.member_id.clone(),
        group_instance_id: Some("i-a".into()),
    }));
    assert_eq!(
        s.reply(hb),
        Some(&GroupResponse::Heartbeat(ErrorCode::NONE))
    );
    close(&mut s, 20);
    s.advance(5_000);
    assert!(s.c.group("g").unwrap().members.contains_key(&ra.member_id));
    s.advance(10_000);
    assert!(
        !s.c.group("g").unwrap().members.contains_key(&ra.member_id),
        "its session (10 s) expired"
    );
}

#[test]
fn a_member_parked_in_a_join_is_removed_and_the_barrier_completes_without_it() {
    let mut s = Script::new();
    let ids = group_on_connections(&mut s);
    // A rebalance starts: the first member rejoins on its connection, the
    // second is killed before it rejoins.
    s.connection = 10;
    let j0 = s.join(&ids[0], RANGE);
    close(&mut s, 11);
    assert!(s.reply(j0).is_none(), "waits for the second member");
    s.advance(3_500);
    let r = s.join_reply(j0);
    assert_eq!(
        (r.error, r.generation_id, r.members.len()),
        (ErrorCode::NONE, 2, 1)
    );
}

#[test]
fn a_member_whose_heartbeat_cadence_is_not_known_yet_waits_for_its_session() {
    let mut s = Script::new();
    let (id, j) = s.join_new();
    s.settle(j);
    let g = s.join_reply(j).generation_id;
    s.connection = 30;
    s.sync(&id, g, &[(&id, b"A")]);
    // Join, join and sync say nothing of when it heartbeats; nor does one
    // heartbeat alone.
    assert_eq!(s.heartbeat(&id, g), ErrorCode::NONE);
    close(&mut s, 30);
    s.advance(5_000);
    assert!(s.c.group("g").unwrap().members.contains_key(&id));
    s.advance(6_000);
    assert!(
        s.c.group("g").unwrap().members.is_empty(),
        "its session (10 s) expired"
    );
}

#[test]
fn the_grace_is_a_setting_and_minus_one_waits_for_the_session() {
    let mut s = Script::with(CoordinatorConfig {
        member_disconnect_grace_ms: -1,
        ..config()
    });
    let ids = group_on_connections(&mut s);
    close(&mut s, 11);
    s.advance(5_000);
    assert!(s.c.group("g").unwrap().members.contains_key(&ids[1]));
}
