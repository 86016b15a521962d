//! A partition moving from an owner to a member waiting for it: the waiting
//! member is asked back at the reconcile interval, and gets the partition in
//! the first answer after the owner released it (not an interval later).

use super::*;
use crate::consumer::MemberState;

pub(super) fn owned_now(s: &Script, m: &str) -> Vec<(TopicId, Vec<i32>)> {
    let g = s.c.consumer_group("g").unwrap();
    g.members[m]
        .assigned
        .iter()
        .map(|(t, ps)| (*t, ps.iter().copied().collect()))
        .collect()
}

fn target(s: &Script, m: &str) -> Vec<i32> {
    let g = s.c.consumer_group("g").unwrap();
    g.targets[m]
        .get(&U)
        .map(|ps| ps.iter().copied().collect())
        .unwrap_or_default()
}

#[test]
fn a_released_partition_reaches_the_waiting_member_at_its_next_heartbeat() {
    let mut s = Script::new();
    s.topic("u", U, 6);
    // a and b settle with three partitions each.
    s.hb(join("a", &["u"]));
    s.hb(join("b", &["u"]));
    for _ in 0..4 {
        for m in ["a", "b"] {
            let e = s.c.consumer_group("g").unwrap().members[m].member_epoch;
            let mine = owned_now(&s, m);
            s.hb(beat(m, e, &mine));
        }
    }
    assert_eq!(s.state(), "Stable");
    let epoch = s.epoch();

    // c joins: its two partitions are still owned by a and b.
    let r = s.hb(join("c", &["u"]));
    assert_eq!(r.member_epoch, epoch + 1);
    assert_eq!(parts(&r.assignment), vec![], "nothing free yet");
    assert_eq!(r.heartbeat_interval_ms, 50, "work pending: back soon");
    let wanted = target(&s, "c");
    assert_eq!(wanted.len(), 2);
    let from_a: Vec<i32> = wanted
        .iter()
        .copied()
        .filter(|p| owned_now(&s, "a")[0].1.contains(p))
        .collect();
    assert_eq!(from_a.len(), 1, "one from each owner");

    // a hears it must give one up, and acknowledges with what it keeps.
    let ea = s.c.consumer_group("g").unwrap().members["a"].member_epoch;
    let r = s.hb(beat("a", ea, &owned_now(&s, "a")));
    assert_eq!(r.heartbeat_interval_ms, 50);
    let keep = parts(&r.assignment);
    assert!(!keep[0].1.contains(&from_a[0]));
    let r = s.hb(beat("a", ea, &keep));
    assert_eq!(r.member_epoch, epoch + 1);
    assert_eq!(r.heartbeat_interval_ms, 5000, "a is settled");

    // c's very next heartbeat carries a's partition; it still waits for b's.
    let r = s.hb(beat("c", epoch + 1, &[]));
    assert_eq!(parts(&r.assignment), vec![(U, from_a.clone())]);
    assert_eq!(r.heartbeat_interval_ms, 50);
    assert_eq!(
        s.c.consumer_group("g").unwrap().members["c"].state,
        MemberState::UnreleasedPartitions
    );

    // b releases; c's next heartbeat completes it.
    let eb = s.c.consumer_group("g").unwrap().members["b"].member_epoch;
    let r = s.hb(beat("b", eb, &owned_now(&s, "b")));
    let keep = parts(&r.assignment);
    s.hb(beat("b", eb, &keep));
    let r = s.hb(beat("c", epoch + 1, &[(U, from_a)]));
    assert_eq!(parts(&r.assignment), vec![(U, wanted)]);
    assert_eq!(r.heartbeat_interval_ms, 5000, "c is settled");
    assert_eq!(s.state(), "Stable");
    s.check_replay();
}
