//! `cohort-assignor-bench`: server assignor compute time over the grid of Kafka's
//! ServerSideAssignorBenchmark (benchmarks.md C): members x partitions per
//! member x topics, homogeneous and heterogeneous, a full assignment and an
//! incremental one (one member joins an assigned group). Prints the median of
//! several runs, the balance (max - min partitions per member) and partitions
//! moved. Figures only; nothing is asserted.

use cohort_assign::server::{builtin, Assignment, GroupSpec, MemberSpec, ServerAssignor};
use cohort_types::TopicId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

fn tid(i: usize) -> TopicId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(i as u64).to_be_bytes());
    TopicId(b)
}

fn group(
    members: usize,
    per_member: usize,
    topics: usize,
    heterogeneous: bool,
) -> (Vec<MemberSpec>, BTreeMap<TopicId, i32>) {
    let total = members * per_member;
    let per_topic = (total / topics).max(1) as i32;
    let partitions: BTreeMap<TopicId, i32> = (0..topics).map(|t| (tid(t), per_topic)).collect();
    let all: Vec<TopicId> = partitions.keys().copied().collect();
    let specs = (0..members)
        .map(|i| MemberSpec {
            member_id: format!("member-{i:06}"),
            instance_id: None,
            // Heterogeneous: each member subscribes to half the topics, by parity
            // of member and topic index, so every topic keeps subscribers.
            topics: if heterogeneous {
                all.iter()
                    .enumerate()
                    .filter(|(t, _)| (t + i) % 2 == 0 || topics == 1)
                    .map(|(_, t)| *t)
                    .collect()
            } else {
                all.iter().copied().collect()
            },
            target: Assignment::new(),
        })
        .collect();
    (specs, partitions)
}

fn time<F: FnMut() -> R, R>(runs: usize, mut f: F) -> (f64, R) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], last.unwrap())
}

fn balance(out: &BTreeMap<String, Assignment>) -> usize {
    let sizes: Vec<usize> = out
        .values()
        .map(|a| a.values().map(|s| s.len()).sum())
        .collect();
    sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0)
}

fn moved(before: &BTreeMap<String, Assignment>, after: &BTreeMap<String, Assignment>) -> usize {
    before
        .iter()
        .map(|(m, a)| {
            a.iter()
                .map(|(t, ps)| {
                    ps.iter()
                        .filter(|p| {
                            !after
                                .get(m)
                                .and_then(|x| x.get(t))
                                .is_some_and(|s| s.contains(p))
                        })
                        .count()
                })
                .sum::<usize>()
        })
        .sum()
}

#[derive(clap::Parser)]
#[command(
    about = "Server assignors: full assignment and one-join times, balance and moves, over a grid of group shapes"
)]
struct Args {
    /// Stop at 1000 members.
    #[arg(long)]
    quick: bool,
}

fn main() {
    let quick = <Args as clap::Parser>::parse().quick;
    let members_grid: &[usize] = if quick {
        &[100, 1000]
    } else {
        &[100, 1000, 10000]
    };
    let per_member_grid: &[usize] = &[5, 10, 50];
    let topics_grid: &[usize] = &[10, 100, 1000];
    println!("assignor  subscription   members  per_member  topics  partitions  full_ms  join_ms  balance  moved_on_join");
    for a in builtin() {
        for heterogeneous in [false, true] {
            for &members in members_grid {
                for &per_member in per_member_grid {
                    for &topics in topics_grid {
                        run(a.as_ref(), members, per_member, topics, heterogeneous);
                    }
                }
            }
        }
    }
}

fn run(
    a: &dyn ServerAssignor,
    members: usize,
    per_member: usize,
    topics: usize,
    heterogeneous: bool,
) {
    let (specs, partitions) = group(members, per_member, topics, heterogeneous);
    let total: i32 = partitions.values().sum();
    let runs = if total > 100_000 { 3 } else { 7 };
    let (full_ms, full) = time(runs, || {
        a.assign(&GroupSpec {
            members: &specs,
            partitions: &partitions,
        })
    });
    // Incremental: everyone holds the full result as target; one member joins.
    let mut joined: Vec<MemberSpec> = specs
        .iter()
        .map(|m| MemberSpec {
            target: full[&m.member_id].clone(),
            ..m.clone()
        })
        .collect();
    let topics_of_new: BTreeSet<TopicId> = specs[0].topics.clone();
    joined.push(MemberSpec {
        member_id: "member-zzzzzz".into(),
        instance_id: None,
        topics: topics_of_new,
        target: Assignment::new(),
    });
    let (join_ms, after) = time(runs, || {
        a.assign(&GroupSpec {
            members: &joined,
            partitions: &partitions,
        })
    });
    println!(
        "{:<9} {:<14} {:>7}  {:>10}  {:>6}  {:>10}  {:>7.3}  {:>7.3}  {:>7}  {:>13}",
        a.name(),
        if heterogeneous {
            "heterogeneous"
        } else {
            "homogeneous"
        },
        members,
        per_member,
        topics,
        total,
        full_ms,
        join_ms,
        balance(&after),
        moved(&full, &after)
    );
}
