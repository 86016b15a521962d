//! Property tests over many seeded random groups: every subscribed partition is
//! assigned exactly once and only to a subscriber; uniform is balanced within
//! one for homogeneous subscriptions; one join or leave moves few partitions.

use super::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn tid(i: u8) -> TopicId {
    TopicId([i; 16])
}

fn random_group(rng: &mut Rng, homogeneous: bool) -> (Vec<MemberSpec>, BTreeMap<TopicId, i32>) {
    let topics = 1 + rng.below(5) as u8;
    let partitions: BTreeMap<TopicId, i32> = (0..topics)
        .map(|t| (tid(t), rng.below(40) as i32))
        .collect();
    let n = 1 + rng.below(12) as usize;
    let all: BTreeSet<TopicId> = partitions.keys().copied().collect();
    let members = (0..n)
        .map(|i| MemberSpec {
            member_id: format!("m{i:03}"),
            instance_id: if rng.below(3) == 0 {
                Some(format!("i{}", rng.below(100)))
            } else {
                None
            },
            topics: if homogeneous {
                all.clone()
            } else {
                all.iter().filter(|_| rng.below(2) == 0).copied().collect()
            },
            target: Assignment::new(),
        })
        .collect();
    (members, partitions)
}

fn check_exactly_once(
    members: &[MemberSpec],
    partitions: &BTreeMap<TopicId, i32>,
    out: &BTreeMap<String, Assignment>,
) {
    let mut seen = BTreeSet::new();
    for m in members {
        for (t, ps) in out.get(&m.member_id).unwrap() {
            assert!(
                m.topics.contains(t),
                "{} got a topic it does not subscribe to",
                m.member_id
            );
            for p in ps {
                assert!(*p < partitions[t]);
                assert!(seen.insert((*t, *p)), "{t:?}-{p} assigned twice");
            }
        }
    }
    for (t, n) in partitions {
        if members.iter().any(|m| m.topics.contains(t)) {
            for p in 0..*n {
                assert!(seen.contains(&(*t, p)), "{t:?}-{p} not assigned");
            }
        }
    }
}

fn count(a: &Assignment) -> usize {
    a.values().map(|s| s.len()).sum()
}

fn with_targets(members: &[MemberSpec], out: &BTreeMap<String, Assignment>) -> Vec<MemberSpec> {
    members
        .iter()
        .map(|m| MemberSpec {
            target: out[&m.member_id].clone(),
            ..m.clone()
        })
        .collect()
}

#[test]
fn every_assignor_assigns_each_subscribed_partition_exactly_once() {
    let mut rng = Rng(1);
    for case in 0..2000 {
        let (members, partitions) = random_group(&mut rng, case % 2 == 0);
        let spec = GroupSpec {
            members: &members,
            partitions: &partitions,
        };
        for a in builtin() {
            let out = a.assign(&spec);
            check_exactly_once(&members, &partitions, &out);
            // And again from its own output (a no-op rebalance keeps it valid).
            let again = with_targets(&members, &out);
            check_exactly_once(
                &again,
                &partitions,
                &a.assign(&GroupSpec {
                    members: &again,
                    partitions: &partitions,
                }),
            );
        }
    }
}

#[test]
fn uniform_is_balanced_within_one_for_homogeneous_groups_and_stable_when_rerun() {
    let mut rng = Rng(2);
    for _ in 0..2000 {
        let (members, partitions) = random_group(&mut rng, true);
        let out = Uniform.assign(&GroupSpec {
            members: &members,
            partitions: &partitions,
        });
        let sizes: Vec<usize> = out.values().map(count).collect();
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        let again = with_targets(&members, &out);
        assert_eq!(
            Uniform.assign(&GroupSpec {
                members: &again,
                partitions: &partitions
            }),
            out,
            "rerun moved partitions"
        );
    }
}

#[test]
fn uniform_moves_few_partitions_when_one_member_joins_or_leaves() {
    let mut rng = Rng(3);
    for _ in 0..1000 {
        let (members, partitions) = random_group(&mut rng, true);
        let total: usize = partitions.values().map(|n| *n as usize).sum();
        let first = Uniform.assign(&GroupSpec {
            members: &members,
            partitions: &partitions,
        });
        let mut joined = with_targets(&members, &first);
        joined.push(MemberSpec {
            member_id: "zz-new".into(),
            instance_id: None,
            topics: members[0].topics.clone(),
            target: Assignment::new(),
        });
        let second = Uniform.assign(&GroupSpec {
            members: &joined,
            partitions: &partitions,
        });
        let moved: usize = members
            .iter()
            .map(|m| {
                first[&m.member_id]
                    .iter()
                    .map(|(t, ps)| {
                        ps.iter()
                            .filter(|p| !second[&m.member_id].get(t).is_some_and(|s| s.contains(p)))
                            .count()
                    })
                    .sum::<usize>()
            })
            .sum();
        assert!(
            moved <= total / joined.len() + 1,
            "join moved {moved} of {total} for {} members",
            joined.len()
        );
        // One leaves: everyone else keeps everything it had.
        if members.len() > 1 {
            let left: Vec<MemberSpec> =
                with_targets(&members, &first).into_iter().skip(1).collect();
            let third = Uniform.assign(&GroupSpec {
                members: &left,
                partitions: &partitions,
            });
            for m in &left {
                for (t, ps) in &m.target {
                    for p in ps {
                        assert!(
                            third[&m.member_id].get(t).is_some_and(|s| s.contains(p)),
                            "a leave moved a survivor's partition"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn range_gives_contiguous_ranges_static_members_first() {
    let t = tid(1);
    let partitions: BTreeMap<TopicId, i32> = [(t, 7)].into_iter().collect();
    let topics: BTreeSet<TopicId> = [t].into_iter().collect();
    let members = vec![
        MemberSpec {
            member_id: "a".into(),
            instance_id: None,
            topics: topics.clone(),
            target: Assignment::new(),
        },
        MemberSpec {
            member_id: "b".into(),
            instance_id: Some("zz".into()),
            topics: topics.clone(),
            target: Assignment::new(),
        },
        MemberSpec {
            member_id: "c".into(),
            instance_id: Some("aa".into()),
            topics,
            target: Assignment::new(),
        },
    ];
    let out = Range.assign(&GroupSpec {
        members: &members,
        partitions: &partitions,
    });
    let of = |m: &str| {
        out[m]
            .get(&t)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("c"), vec![0, 1, 2]);
    assert_eq!(of("b"), vec![3, 4]);
    assert_eq!(of("a"), vec![5, 6]);
}
