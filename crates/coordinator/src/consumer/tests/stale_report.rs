//! A heartbeat's owned partitions are what the member's last completed
//! reconciliation left it; an answer giving it more may already be in its
//! hands. Seen with the Java client: a member was given partitions, then sent
//! a heartbeat still reporting none (its report predated that answer), and
//! the target had meanwhile moved one of them away. Taking the report as a
//! revocation already made handed the partition to another member while the
//! first one was taking it. The broker now asks for the revocation and waits
//! for the member's next report.

use super::handover::owned_now;
use super::*;
use crate::consumer::MemberState;

fn settle(s: &mut Script, members: &[&str]) {
    for _ in 0..6 {
        for m in members {
            let e = s.c.consumer_group("g").unwrap().members[*m].member_epoch;
            let mine = owned_now(s, m);
            s.hb(beat(m, e, &mine));
        }
    }
}

#[test]
fn a_report_that_predates_an_answer_does_not_free_the_partitions_that_answer_gave() {
    let mut s = Script::new();
    s.topic("u", U, 6);
    s.hb(join("a", &["u"]));
    settle(&mut s, &["a"]);
    // b joins and, once a has let go, is given three partitions.
    s.hb(join("b", &["u"]));
    settle(&mut s, &["a"]);
    let eb = s.c.consumer_group("g").unwrap().members["b"].member_epoch;
    let r = s.hb(beat("b", eb, &[]));
    let given = parts(&r.assignment);
    assert_eq!(
        given.iter().map(|(_, ps)| ps.len()).sum::<usize>(),
        3,
        "{given:?}"
    );
    // c joins: b must give one of them up.
    s.hb(join("c", &["u"]));
    let target_b: Vec<i32> = s.c.consumer_group("g").unwrap().targets["b"]
        .get(&U)
        .map(|p| p.iter().copied().collect())
        .unwrap_or_default();
    let moved: Vec<i32> = given[0]
        .1
        .iter()
        .copied()
        .filter(|p| !target_b.contains(p))
        .collect();
    assert_eq!(moved.len(), 1, "b keeps two of its three");
    // b's next heartbeat still reports nothing: it has not applied the answer
    // that gave it three partitions yet.
    let eb = s.c.consumer_group("g").unwrap().members["b"].member_epoch;
    s.hb(beat("b", eb, &[]));
    let m = &s.c.consumer_group("g").unwrap().members["b"];
    assert_eq!(
        m.state,
        MemberState::UnrevokedPartitions,
        "asked to revoke, not taken as revoked"
    );
    assert!(m
        .pending_revocation
        .get(&U)
        .is_some_and(|p| p.contains(&moved[0])));
    // The partition is not c's while b may hold it.
    for _ in 0..3 {
        let ec = s.c.consumer_group("g").unwrap().members["c"].member_epoch;
        let r = s.hb(beat("c", ec, &owned_now(&s, "c")));
        assert!(!parts(&r.assignment)
            .iter()
            .any(|(_, ps)| ps.contains(&moved[0])));
    }
    // b applies the three, then revokes the moved one: only now c gets it.
    s.hb(beat("b", eb, &given));
    assert_eq!(
        s.c.consumer_group("g").unwrap().members["b"].state,
        MemberState::UnrevokedPartitions
    );
    let kept: Vec<(TopicId, Vec<i32>)> = vec![(
        U,
        target_b
            .iter()
            .copied()
            .filter(|p| given[0].1.contains(p))
            .collect(),
    )];
    s.hb(beat("b", eb, &kept));
    assert_ne!(
        s.c.consumer_group("g").unwrap().members["b"].state,
        MemberState::UnrevokedPartitions
    );
    let ec = s.c.consumer_group("g").unwrap().members["c"].member_epoch;
    let r = s.hb(beat("c", ec, &owned_now(&s, "c")));
    assert!(
        parts(&r.assignment)
            .iter()
            .any(|(_, ps)| ps.contains(&moved[0])),
        "{:?}",
        r.assignment
    );
    s.check_replay();
}
