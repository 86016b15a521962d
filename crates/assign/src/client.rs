//! Client-side assignors (range, cooperative sticky) for one topic: what Kafka
//! clients compute when they lead a classic group, so the simulator's members
//! behave like real ones.

use std::collections::{BTreeMap, BTreeSet};

pub type MemberId = String;
pub type Partition = i32;

/// Kafka's RangeAssignor for one topic: members sorted by id, each gets a
/// contiguous range, the first `partitions % members` one extra.
pub fn range(members: &[MemberId], partitions: i32) -> BTreeMap<MemberId, BTreeSet<Partition>> {
    let mut sorted: Vec<&MemberId> = members.iter().collect();
    sorted.sort();
    let mut out: BTreeMap<MemberId, BTreeSet<Partition>> = members
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    if sorted.is_empty() {
        return out;
    }
    let n = sorted.len() as i32;
    let (per, extra) = (partitions / n, partitions % n);
    let mut next = 0;
    for (i, m) in sorted.iter().enumerate() {
        let count = per + if (i as i32) < extra { 1 } else { 0 };
        out.get_mut(*m).unwrap().extend(next..next + count);
        next += count;
    }
    out
}

/// A sticky, balanced target: members keep what they own while balance allows,
/// then the rest is spread to the least loaded. Balanced within one.
pub fn sticky(
    owned: &BTreeMap<MemberId, BTreeSet<Partition>>,
    partitions: i32,
) -> BTreeMap<MemberId, BTreeSet<Partition>> {
    let members: Vec<&MemberId> = owned.keys().collect();
    let mut out: BTreeMap<MemberId, BTreeSet<Partition>> = members
        .iter()
        .map(|m| ((*m).clone(), BTreeSet::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let n = members.len() as i32;
    let (base, extra) = (partitions / n, partitions % n);
    let mut taken = BTreeSet::new();
    // Keep owned partitions up to the quota, members owning most first, so
    // the `extra` larger quotas go to those who already hold more.
    let mut by_owned: Vec<&MemberId> = members.clone();
    by_owned.sort_by_key(|m| (std::cmp::Reverse(owned[*m].len()), (*m).clone()));
    let mut extras_left = extra;
    for m in &by_owned {
        let quota = base
            + if extras_left > 0 && owned[*m].len() as i32 > base {
                1
            } else {
                0
            };
        if quota > base {
            extras_left -= 1;
        }
        let keep: Vec<Partition> = owned[*m]
            .iter()
            .filter(|p| **p < partitions && !taken.contains(*p))
            .take(quota as usize)
            .copied()
            .collect();
        for p in keep {
            out.get_mut(*m).unwrap().insert(p);
            taken.insert(p);
        }
    }
    // Spread the rest, always to the least loaded member (ties by id).
    for p in 0..partitions {
        if taken.contains(&p) {
            continue;
        }
        let target = members
            .iter()
            .min_by_key(|m| (out[**m].len(), (**m).clone()))
            .map(|m| (*m).clone())
            .unwrap();
        out.get_mut(&target).unwrap().insert(p);
    }
    out
}

/// Kafka's cooperative protocol on top of a sticky target: a partition that
/// moves from one member to another is left out of this round (its owner
/// revokes it first); it is handed over in the follow-up rebalance.
pub fn cooperative_sticky(
    owned: &BTreeMap<MemberId, BTreeSet<Partition>>,
    partitions: i32,
) -> BTreeMap<MemberId, BTreeSet<Partition>> {
    let target = sticky(owned, partitions);
    let mut owner: BTreeMap<Partition, &MemberId> = BTreeMap::new();
    for (m, ps) in owned {
        for p in ps {
            owner.entry(*p).or_insert(m);
        }
    }
    target
        .iter()
        .map(|(m, ps)| {
            let keep = ps
                .iter()
                .filter(|p| owner.get(*p).map_or(true, |o| *o == m))
                .copied()
                .collect();
            (m.clone(), keep)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i:02}")).collect()
    }

    fn exactly_once(a: &BTreeMap<MemberId, BTreeSet<Partition>>, partitions: i32) {
        let mut all: Vec<Partition> = a.values().flatten().copied().collect();
        all.sort();
        assert_eq!(all, (0..partitions).collect::<Vec<_>>());
    }

    #[test]
    fn range_assigns_every_partition_once_in_contiguous_runs() {
        for n in 1..12 {
            for p in 0..40 {
                let a = range(&members(n), p);
                exactly_once(&a, p);
                let sizes: Vec<usize> = a.values().map(|s| s.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn sticky_is_balanced_and_keeps_what_it_can() {
        for n in 1..10 {
            for p in 0..30 {
                let first = sticky(
                    &members(n)
                        .into_iter()
                        .map(|m| (m, BTreeSet::new()))
                        .collect(),
                    p,
                );
                exactly_once(&first, p);
                // One member joins: the others keep all but what balance requires.
                let mut owned = first.clone();
                owned.insert("zz".into(), BTreeSet::new());
                let second = sticky(&owned, p);
                exactly_once(&second, p);
                let sizes: Vec<usize> = second.values().map(|s| s.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
                let moved: usize = first
                    .iter()
                    .map(|(m, ps)| ps.difference(&second[m]).count())
                    .sum();
                assert!(
                    moved <= (p as usize) / (n + 1) + 1,
                    "n={n} p={p} moved {moved}"
                );
            }
        }
    }

    #[test]
    fn cooperative_never_gives_a_partition_its_owner_still_holds() {
        let mut owned: BTreeMap<MemberId, BTreeSet<Partition>> = BTreeMap::new();
        owned.insert("a".into(), (0..6).collect());
        owned.insert("b".into(), BTreeSet::new());
        let round1 = cooperative_sticky(&owned, 6);
        assert!(round1["b"].is_empty(), "b waits until a revokes");
        assert_eq!(round1["a"].len(), 3);
        // After a revoked, the follow-up round hands them over.
        let round2 = cooperative_sticky(&round1, 6);
        assert_eq!(round2["b"].len(), 3);
        exactly_once(&round2, 6);
    }
}
