//! A new group's first rebalance ends once joins stop arriving for
//! `initial_rebalance_quiet_ms`, within Kafka's initial delay.

use super::*;

fn quiet(ms: i64) -> Script {
    Script::with(CoordinatorConfig {
        initial_rebalance_delay_ms: 3_000,
        initial_rebalance_quiet_ms: ms,
        ..config()
    })
}

#[test]
fn members_starting_together_join_one_rebalance_once_joins_stop() {
    let mut s = quiet(300);
    let (_, a) = s.join_new();
    s.advance(200);
    let (_, b) = s.join_new();
    s.advance(250);
    let (_, c) = s.join_new();
    // 299 ms after the last join: still open.
    s.advance(299);
    assert!(s.reply(a).is_none() && s.reply(c).is_none());
    s.advance(1);
    for j in [a, b, c] {
        let r = s.join_reply(j);
        assert_eq!((r.error, r.generation_id), (ErrorCode::NONE, 1));
    }
    let leader = [a, b, c]
        .iter()
        .map(|j| s.join_reply(*j).members.len())
        .max();
    assert_eq!(leader, Some(3), "one rebalance with all three");
    assert_eq!(s.state(), GroupState::CompletingRebalance);
}

#[test]
fn a_steady_trickle_of_joins_keeps_it_open_until_they_stop() {
    let mut s = quiet(300);
    let (_, first) = s.join_new();
    // A join every 200 ms for 2 s: never quiet for 300 ms meanwhile.
    for _ in 0..10 {
        s.advance(200);
        assert!(s.reply(first).is_none());
        s.join_new();
    }
    s.advance(299);
    assert!(s.reply(first).is_none());
    s.advance(1);
    let r = s.join_reply(first);
    assert_eq!((r.error, r.generation_id), (ErrorCode::NONE, 1));
}

#[test]
fn without_quiet_the_whole_delay_is_waited() {
    let mut s = quiet(0);
    let (_, a) = s.join_new();
    s.advance(2_999);
    assert!(s.reply(a).is_none());
    s.advance(1);
    assert_eq!(s.join_reply(a).generation_id, 1);
}

#[test]
fn quiet_plays_no_part_after_the_first_rebalance() {
    let mut s = quiet(300);
    let ids = stable_group(&mut s, 2);
    // A rebalance of a group that has members waits for them, not for quiet.
    s.connection = 5;
    let (_, j) = s.join_new();
    s.advance(1_000);
    assert!(
        s.reply(j).is_none(),
        "waiting for the known members to rejoin"
    );
    assert!(!s
        .c
        .timers()
        .all()
        .keys()
        .any(|k| matches!(k, crate::timers::TimerKey::InitialQuiet { .. })));
    let _ = ids;
}
