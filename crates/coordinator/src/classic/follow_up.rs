//! The follow-up round of a cooperative rebalance (KIP-429), and who should
//! hear of it before it starts.
//!
//! A cooperative round never hands a partition from one member to another
//! directly: the leader leaves it out of its owner's assignment, the owner
//! revokes it and rejoins at once, and a second round gives it to its new
//! owner. That second round is certain the moment the leader's assignment
//! takes a partition away from a member that reported owning it. Every
//! member must rejoin for it, but a classic member hears of a round only in
//! the answer to its next Heartbeat, up to heartbeat.interval.ms (3 s) after
//! its last one; the round waits for the slowest of them.
//!
//! A member whose assignment in the first round is exactly what it already
//! owns has nothing to do with that answer: it keeps consuming what it owns
//! either way. Its SyncGroup answer can wait for the follow-up round (see
//! `hold`) and then say REBALANCE_IN_PROGRESS, which sends it straight back
//! into JoinGroup, still owning its partitions. This is the answer Kafka
//! gives a SyncGroup that arrives after the next round began; every client
//! handles it by rejoining without revoking.
//!
//! Worked example: members A (owns p0 p1 p2), B (owns p3 p4 p5) and a new
//! member C (owns nothing). The leader assigns A {p0 p1}, B {p3 p4 p5}, C {}:
//! A loses p2, so a follow-up round is certain. B's assignment is what it
//! owns and C's is empty, as is what it owns: both are held. A is answered
//! at once, revokes p2 and rejoins; its JoinGroup starts the follow-up round,
//! which answers B and C REBALANCE_IN_PROGRESS; all three rejoin at once and
//! the second round gives p2 to C.

use crate::embedded::{parse_assignment, parse_subscription};
use std::collections::BTreeSet;

/// One member's part of a completed round: what it said it owned when it
/// joined (its ConsumerProtocolSubscription) and what the leader gave it
/// (its ConsumerProtocolAssignment).
pub struct RoundMember<'a> {
    pub member_id: &'a str,
    pub subscription: &'a [u8],
    pub assignment: &'a [u8],
}

type Partitions = BTreeSet<(String, i32)>;

fn flatten(tps: Vec<(String, Vec<i32>)>) -> Partitions {
    tps.into_iter()
        .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
        .collect()
}

/// The members whose SyncGroup answers may wait for the follow-up round:
/// none unless some member lost a partition it owned; then every member whose
/// assignment is exactly what it owns. A member whose metadata cannot be read
/// is answered at once (nothing is assumed about it).
pub fn members_to_hold<'a>(round: impl IntoIterator<Item = RoundMember<'a>>) -> BTreeSet<String> {
    let mut revoking = false;
    let mut unchanged = BTreeSet::new();
    for m in round {
        let (Ok(s), Ok(a)) = (
            parse_subscription(m.subscription),
            parse_assignment(m.assignment),
        ) else {
            continue;
        };
        let owned = flatten(s.owned);
        let assigned = flatten(a.partitions);
        if !owned.is_subset(&assigned) {
            revoking = true;
        } else if owned == assigned {
            unchanged.insert(m.member_id.to_string());
        }
    }
    if revoking {
        unchanged
    } else {
        BTreeSet::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{write_assignment, write_subscription, Subscription};

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

    fn hold(members: &[(&str, Vec<u8>, Vec<u8>)]) -> Vec<String> {
        members_to_hold(members.iter().map(|(id, s, a)| RoundMember {
            member_id: id,
            subscription: s,
            assignment: a,
        }))
        .into_iter()
        .collect()
    }

    #[test]
    fn the_worked_example() {
        let round = [
            ("A", sub(&[0, 1, 2]), asg(&[0, 1])),
            ("B", sub(&[3, 4, 5]), asg(&[3, 4, 5])),
            ("C", sub(&[]), asg(&[])),
        ];
        assert_eq!(hold(&round), ["B", "C"]);
    }

    #[test]
    fn nothing_is_held_when_nobody_loses_a_partition() {
        // The follow-up round of the example: C gains p2, nobody loses one.
        let round = [
            ("A", sub(&[0, 1]), asg(&[0, 1])),
            ("B", sub(&[3, 4, 5]), asg(&[3, 4, 5])),
            ("C", sub(&[]), asg(&[2])),
        ];
        assert!(hold(&round).is_empty());
    }

    #[test]
    fn eager_members_report_nothing_owned_and_are_never_held() {
        let round = [
            ("A", sub(&[]), asg(&[0, 1, 2])),
            ("B", sub(&[]), asg(&[3, 4, 5])),
        ];
        assert!(hold(&round).is_empty());
    }

    #[test]
    fn a_member_that_gains_a_partition_is_answered_at_once() {
        // p6 was unowned: B may start on it now, so its answer must not wait.
        let round = [
            ("A", sub(&[0, 1, 2]), asg(&[0, 1])),
            ("B", sub(&[3, 4, 5]), asg(&[3, 4, 5, 6])),
        ];
        assert!(hold(&round).is_empty());
    }

    #[test]
    fn a_member_whose_metadata_cannot_be_read_is_not_held_and_does_not_count() {
        let round = [
            ("A", sub(&[0, 1, 2]), asg(&[0, 1])),
            ("B", b"\xff".to_vec(), asg(&[3])),
            ("C", sub(&[3]), b"\x00".to_vec()),
            ("D", sub(&[4]), asg(&[4])),
        ];
        assert_eq!(hold(&round), ["D"]);
        let only_bad = [
            ("B", b"\xff".to_vec(), asg(&[3])),
            ("D", sub(&[4]), asg(&[4])),
        ];
        assert!(hold(&only_bad).is_empty());
    }

    #[test]
    fn subscriptions_before_version_1_carry_no_owned_partitions() {
        let v0 = write_subscription(&Subscription {
            version: 0,
            topics: vec!["t".into()],
            user_data: None,
            owned: vec![],
            generation: -1,
            rack: None,
        });
        let round = [("A", v0.clone(), asg(&[])), ("B", v0, asg(&[1]))];
        assert!(hold(&round).is_empty());
    }
}
