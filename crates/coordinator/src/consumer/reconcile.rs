//! Reconciliation: one step of a member toward its target (Kafka's
//! CurrentAssignmentBuilder). Revoke first; only partitions nobody else holds
//! are given; new partitions are never given while revocations are
//! outstanding. A pure function of the member, its target and who holds what.

use cohort_assign::server::Assignment;
use cohort_types::TopicId;
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberState {
    Stable = 0,
    UnrevokedPartitions = 1,
    UnreleasedPartitions = 2,
}

impl MemberState {
    pub fn from_u8(v: u8) -> MemberState {
        match v {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    pub state: MemberState,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

fn owns_any(owned: &Option<Assignment>, a: &Assignment) -> bool {
    match owned {
        // Not reported: assume it still owns everything.
        None => a.values().any(|s| !s.is_empty()),
        Some(o) => a
            .iter()
            .any(|(t, ps)| o.get(t).is_some_and(|os| ps.iter().any(|p| os.contains(p)))),
    }
}

/// Moves a member one step. `held_by_other(t, p)` says whether another member
/// holds the partition (assigned or pending revocation); `rejoined` whether
/// `owned` comes from a rejoin (see `next`).
#[allow(clippy::too_many_arguments)]
pub fn reconcile(
    state: MemberState,
    epoch: i32,
    previous_epoch: i32,
    assigned: &Assignment,
    pending: &Assignment,
    target_epoch: i32,
    target: &Assignment,
    owned: &Option<Assignment>,
    held_by_other: &dyn Fn(&TopicId, i32) -> bool,
    rejoined: bool,
) -> Reconciled {
    let unchanged = Reconciled {
        state,
        member_epoch: epoch,
        previous_member_epoch: previous_epoch,
        assigned: assigned.clone(),
        pending_revocation: pending.clone(),
    };
    match state {
        MemberState::Stable if epoch == target_epoch => unchanged,
        // Waiting for the member to say it let go of the revoked partitions.
        MemberState::UnrevokedPartitions if owns_any(owned, pending) => unchanged,
        _ => next(
            epoch,
            previous_epoch,
            assigned,
            target_epoch,
            target,
            owned,
            held_by_other,
            rejoined,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn next(
    epoch: i32,
    previous_epoch: i32,
    assigned: &Assignment,
    target_epoch: i32,
    target: &Assignment,
    owned: &Option<Assignment>,
    held_by_other: &dyn Fn(&TopicId, i32) -> bool,
    rejoined: bool,
) -> Reconciled {
    let topics: BTreeSet<&TopicId> = assigned.keys().chain(target.keys()).collect();
    let (mut keep, mut revoke, mut want) =
        (Assignment::new(), Assignment::new(), Assignment::new());
    let mut unreleased = false;
    for t in topics {
        let a = assigned.get(t).cloned().unwrap_or_default();
        let tt = target.get(t).cloned().unwrap_or_default();
        let k: BTreeSet<i32> = a.intersection(&tt).copied().collect();
        let r: BTreeSet<i32> = a.difference(&k).copied().collect();
        let mut w: BTreeSet<i32> = BTreeSet::new();
        for p in tt.difference(&k) {
            if held_by_other(t, *p) {
                unreleased = true;
            } else {
                w.insert(*p);
            }
        }
        if !k.is_empty() {
            keep.insert(*t, k);
        }
        if !r.is_empty() {
            revoke.insert(*t, r);
        }
        if !w.is_empty() {
            want.insert(*t, w);
        }
    }
    let advance = |state, assigned: Assignment| Reconciled {
        state,
        member_epoch: target_epoch,
        previous_member_epoch: if target_epoch != epoch {
            epoch
        } else {
            previous_epoch
        },
        assigned,
        pending_revocation: Assignment::new(),
    };
    // A heartbeat reports what the member's last completed reconciliation
    // left it, which may predate an answer it already holds: a report without
    // partitions it was just given does not mean it gave them up (it may be
    // taking them right now). So a revocation is always asked for, and the
    // member's next report acknowledges it. Only a rejoin (epoch 0, or a
    // classic JoinGroup, sent after the member applied everything it was
    // given) says for certain it holds nothing it left out. Kafka's
    // CurrentAssignmentBuilder skips the round on any report; with members
    // asked back every 50 ms, the Java client was seen to take partitions
    // another member had already been given.
    if !revoke.is_empty() && (!rejoined || owns_any(owned, &revoke)) {
        return Reconciled {
            state: MemberState::UnrevokedPartitions,
            member_epoch: epoch,
            previous_member_epoch: previous_epoch,
            assigned: keep,
            pending_revocation: revoke,
        };
    }
    let state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    let mut all = keep;
    for (t, ps) in want {
        all.entry(t).or_default().extend(ps);
    }
    advance(state, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[(u8, &[i32])]) -> Assignment {
        parts
            .iter()
            .map(|(t, ps)| (TopicId([*t; 16]), ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn kip848_worked_example_revoke_then_release_then_assign() {
        // A owns 0..3 at epoch 1; B joins; target at epoch 2: A={0,1}, B={2,3}.
        let nobody = |_: &TopicId, _: i32| false;
        let a_holds = |_: &TopicId, p: i32| p >= 2;
        // B: wants 2,3 but A still holds them -> unreleased at epoch 2, nothing yet.
        let b = reconcile(
            MemberState::Stable,
            0,
            -1,
            &a(&[]),
            &a(&[]),
            2,
            &a(&[(1, &[2, 3])]),
            &Some(a(&[])),
            &a_holds,
            false,
        );
        assert_eq!(
            (b.state, b.member_epoch),
            (MemberState::UnreleasedPartitions, 2)
        );
        assert!(b.assigned.is_empty());
        // A: must revoke 2,3 first, staying at epoch 1.
        let ra = reconcile(
            MemberState::Stable,
            1,
            0,
            &a(&[(1, &[0, 1, 2, 3])]),
            &a(&[]),
            2,
            &a(&[(1, &[0, 1])]),
            &None,
            &nobody,
            false,
        );
        assert_eq!(
            (ra.state, ra.member_epoch),
            (MemberState::UnrevokedPartitions, 1)
        );
        assert_eq!(ra.pending_revocation, a(&[(1, &[2, 3])]));
        // A still reports 2: unchanged.
        let still = reconcile(
            ra.state,
            1,
            0,
            &ra.assigned,
            &ra.pending_revocation,
            2,
            &a(&[(1, &[0, 1])]),
            &Some(a(&[(1, &[0, 1, 2])])),
            &nobody,
            false,
        );
        assert_eq!(still.state, MemberState::UnrevokedPartitions);
        // A acknowledges (reports {0,1}): moves to epoch 2, stable.
        let done = reconcile(
            ra.state,
            1,
            0,
            &ra.assigned,
            &ra.pending_revocation,
            2,
            &a(&[(1, &[0, 1])]),
            &Some(a(&[(1, &[0, 1])])),
            &nobody,
            false,
        );
        assert_eq!(
            (done.state, done.member_epoch, done.previous_member_epoch),
            (MemberState::Stable, 2, 1)
        );
        // B again: now free -> stable with 2,3.
        let b2 = reconcile(
            b.state,
            2,
            0,
            &b.assigned,
            &b.pending_revocation,
            2,
            &a(&[(1, &[2, 3])]),
            &None,
            &nobody,
            false,
        );
        assert_eq!(
            (b2.state, b2.assigned.clone()),
            (MemberState::Stable, a(&[(1, &[2, 3])]))
        );
    }

    #[test]
    fn nothing_new_is_given_while_a_revocation_is_outstanding() {
        let nobody = |_: &TopicId, _: i32| false;
        let r = reconcile(
            MemberState::Stable,
            3,
            2,
            &a(&[(1, &[0])]),
            &a(&[]),
            4,
            &a(&[(2, &[5])]),
            &None,
            &nobody,
            false,
        );
        assert_eq!(r.state, MemberState::UnrevokedPartitions);
        assert!(r.assigned.is_empty());
    }

    #[test]
    fn a_report_without_partitions_it_was_given_still_gets_a_revocation_round() {
        // The member holds 0 (given at epoch 3); the target at 4 moves it away.
        // Its heartbeat reports nothing, but it may be taking 0 right now (its
        // report is from before it applied the answer that gave it 0): it is
        // asked to revoke, and its next report acknowledges.
        let nobody = |_: &TopicId, _: i32| false;
        let step = |state,
                    assigned: &Assignment,
                    pending: &Assignment,
                    owned: &Option<Assignment>,
                    rejoined| {
            reconcile(
                state,
                3,
                2,
                assigned,
                pending,
                4,
                &a(&[(2, &[5])]),
                owned,
                &nobody,
                rejoined,
            )
        };
        let r = step(
            MemberState::Stable,
            &a(&[(1, &[0])]),
            &a(&[]),
            &Some(a(&[])),
            false,
        );
        assert_eq!(
            (r.state, r.member_epoch),
            (MemberState::UnrevokedPartitions, 3)
        );
        assert_eq!(r.pending_revocation, a(&[(1, &[0])]));
        // The next report without 0 acknowledges: epoch 4, the new partition.
        let r = step(
            r.state,
            &r.assigned,
            &r.pending_revocation,
            &Some(a(&[])),
            false,
        );
        assert_eq!((r.state, r.member_epoch), (MemberState::Stable, 4));
        assert_eq!(r.assigned, a(&[(2, &[5])]));
        // A rejoin (epoch 0 or a classic JoinGroup) without 0 gave it up.
        let r = step(
            MemberState::Stable,
            &a(&[(1, &[0])]),
            &a(&[]),
            &Some(a(&[])),
            true,
        );
        assert_eq!((r.state, r.member_epoch), (MemberState::Stable, 4));
        assert_eq!(r.assigned, a(&[(2, &[5])]));
    }
}
