//! Consumer-group members fenced when their connection ends (see
//! `connections`).

use super::*;

fn close(s: &mut Script, connection: u64) {
    let e = s.c.handle(s.now, Input::ConnectionClosed(connection));
    s.records.extend(e.records);
}

fn members(s: &Script) -> Vec<String> {
    s.c.consumer_group("g")
        .unwrap()
        .members
        .keys()
        .cloned()
        .collect()
}

/// a on connection 1 owns everything; b joins on connection 2 and settles
/// with half.
fn two_settled(s: &mut Script) {
    s.connection = 1;
    s.hb(join("a", &["t"]));
    s.connection = 2;
    s.hb(join("b", &["t"]));
    s.connection = 1;
    let ra = s.hb(beat("a", 1, &[(T, vec![0, 1, 2, 3])]));
    let kept = parts(&ra.assignment);
    s.hb(beat("a", 1, &kept));
    s.connection = 2;
    let rb = s.hb(beat("b", 2, &[]));
    s.hb(beat("b", 2, &parts(&rb.assignment)));
    assert_eq!(s.state(), "Stable");
}

#[test]
fn a_member_whose_connection_ends_is_fenced_once_overdue_and_its_partitions_move() {
    let mut s = Script::new();
    two_settled(&mut s);
    let epoch = s.epoch();
    // b settles into its cadence: the 5 s interval these traces give.
    let owned = s.c.consumer_group("g").unwrap().members["b"]
        .assigned
        .clone();
    let mine: Vec<(TopicId, Vec<i32>)> = vec![(T, owned[&T].iter().copied().collect())];
    s.advance(5_000);
    s.hb(beat("b", epoch, &mine));
    close(&mut s, 2);
    s.advance(5_499);
    assert_eq!(members(&s), vec!["a", "b"]);
    s.advance(1);
    assert_eq!(members(&s), vec!["a"]);
    assert_eq!(s.epoch(), epoch + 1);
    // The survivor gets every partition at its next heartbeat (nobody holds
    // the dead member's half).
    s.connection = 1;
    let mine = s.c.consumer_group("g").unwrap().members["a"]
        .assigned
        .clone();
    let ra = s.hb(beat(
        "a",
        epoch,
        &[(
            T,
            mine.get(&T)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        )],
    ));
    assert_eq!(parts(&ra.assignment), vec![(T, vec![0, 1, 2, 3])]);
    // The dead member, were it to speak, is fenced.
    s.connection = 3;
    let rb = s.hb(beat("b", epoch, &[]));
    assert_eq!(rb.error, ErrorCode::UNKNOWN_MEMBER_ID);
    s.check_replay();
}

#[test]
fn a_member_that_reconnects_within_the_grace_keeps_its_partitions() {
    let mut s = Script::new();
    two_settled(&mut s);
    let epoch = s.epoch();
    let owned = s.c.consumer_group("g").unwrap().members["b"]
        .assigned
        .clone();
    close(&mut s, 2);
    s.advance(300);
    s.connection = 3;
    let rb = s.hb(beat(
        "b",
        epoch,
        &[(T, owned[&T].iter().copied().collect())],
    ));
    assert_eq!(rb.error, ErrorCode::NONE);
    s.advance(5_000);
    assert_eq!(members(&s), vec!["a", "b"]);
    assert_eq!(s.epoch(), epoch);
}

#[test]
fn a_static_member_is_not_fenced_for_its_connection() {
    let mut s = Script::new();
    s.connection = 5;
    s.hb(ConsumerGroupHeartbeatRequest {
        instance_id: Some("i".into()),
        ..join("a", &["t"])
    });
    close(&mut s, 5);
    s.advance(10_000);
    assert_eq!(members(&s), vec!["a"]);
}
