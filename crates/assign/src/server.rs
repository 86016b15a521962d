//! Server-side assignors (KIP-848). The coordinator hands each one the members'
//! subscriptions and their current *target* assignment (never what they own:
//! ownership is reconciled separately), and gets a new target back.

use cohort_types::TopicId;
use std::collections::{BTreeMap, BTreeSet};

pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpec {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub topics: BTreeSet<TopicId>,
    /// The member's current target assignment.
    pub target: Assignment,
}

/// Everything an assignor sees. Members are in member-id order.
pub struct GroupSpec<'a> {
    pub members: &'a [MemberSpec],
    /// Partition count per topic; topics missing here do not exist.
    pub partitions: &'a BTreeMap<TopicId, i32>,
}

pub trait ServerAssignor: Send + Sync {
    fn name(&self) -> &'static str;
    fn assign(&self, group: &GroupSpec) -> BTreeMap<String, Assignment>;
}

/// The assignors the broker offers, the first being the default.
pub fn builtin() -> Vec<Box<dyn ServerAssignor>> {
    vec![Box::new(Uniform), Box::new(Range)]
}

fn homogeneous(group: &GroupSpec) -> bool {
    group.members.windows(2).all(|w| w[0].topics == w[1].topics)
}

/// Topics a member subscribes to that exist.
fn existing<'a>(
    m: &'a MemberSpec,
    group: &'a GroupSpec,
) -> impl Iterator<Item = (TopicId, i32)> + 'a {
    m.topics
        .iter()
        .filter_map(|t| group.partitions.get(t).map(|n| (*t, *n)))
}

/// Balance first (counts differ by at most one when subscriptions are equal),
/// then stickiness: a member keeps as much of its previous target as balance
/// allows.
pub struct Uniform;

impl ServerAssignor for Uniform {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn assign(&self, group: &GroupSpec) -> BTreeMap<String, Assignment> {
        if group.members.is_empty() {
            return BTreeMap::new();
        }
        if homogeneous(group) {
            uniform_homogeneous(group)
        } else {
            uniform_heterogeneous(group)
        }
    }
}

fn uniform_homogeneous(group: &GroupSpec) -> BTreeMap<String, Assignment> {
    let members = group.members;
    let topics: Vec<(TopicId, i32)> = existing(&members[0], group).collect();
    let counts: BTreeMap<TopicId, i32> = topics.iter().copied().collect();
    let valid = |t: &TopicId, p: i32| counts.get(t).is_some_and(|n| p >= 0 && p < *n);
    let total: i32 = topics.iter().map(|(_, n)| *n).sum();
    let m = members.len() as i32;
    let (base, mut extras) = (total / m, total % m);
    // What each member could keep of its previous target.
    let kept: Vec<Vec<(TopicId, i32)>> = members
        .iter()
        .map(|mem| {
            mem.target
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
                .filter(|(t, p)| valid(t, *p))
                .collect()
        })
        .collect();
    // Members already holding more than the base quota keep an extra first,
    // so an assignment that is already balanced is not reshuffled.
    let mut quota = vec![base; members.len()];
    for (i, k) in kept.iter().enumerate() {
        if extras > 0 && k.len() as i32 > base {
            quota[i] += 1;
            extras -= 1;
        }
    }
    for q in quota.iter_mut() {
        if extras == 0 {
            break;
        }
        if *q == base {
            *q += 1;
            extras -= 1;
        }
    }
    let mut taken: BTreeSet<(TopicId, i32)> = BTreeSet::new();
    let mut out: Vec<Vec<(TopicId, i32)>> = vec![Vec::new(); members.len()];
    for (i, k) in kept.iter().enumerate() {
        for tp in k.iter().take(quota[i] as usize) {
            if taken.insert(*tp) {
                out[i].push(*tp);
            }
        }
    }
    let mut unassigned = topics
        .iter()
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .filter(|tp| !taken.contains(tp));
    for (i, o) in out.iter_mut().enumerate() {
        while (o.len() as i32) < quota[i] {
            match unassigned.next() {
                Some(tp) => o.push(tp),
                None => break,
            }
        }
    }
    members
        .iter()
        .zip(out)
        .map(|(m, tps)| (m.member_id.clone(), to_assignment(tps)))
        .collect()
}

fn to_assignment(tps: Vec<(TopicId, i32)>) -> Assignment {
    let mut a = Assignment::new();
    for (t, p) in tps {
        a.entry(t).or_default().insert(p);
    }
    a
}

/// Heterogeneous subscriptions: keep what is still subscribed, hand out the
/// rest topic by topic to the least loaded subscriber, then even out loads per
/// topic (at most 16 passes), as Kafka's heterogeneous uniform builder does.
fn uniform_heterogeneous(group: &GroupSpec) -> BTreeMap<String, Assignment> {
    let members = group.members;
    let n = members.len();
    let mut load = vec![0i64; n];
    // Per topic: which member holds each partition, and each member's list.
    let mut owner: BTreeMap<TopicId, Vec<Option<usize>>> = group
        .partitions
        .iter()
        .map(|(t, c)| (*t, vec![None; (*c).max(0) as usize]))
        .collect();
    let mut held: BTreeMap<TopicId, BTreeMap<usize, Vec<i32>>> = BTreeMap::new();
    let mut subscribers: BTreeMap<TopicId, Vec<usize>> = BTreeMap::new();
    for (i, m) in members.iter().enumerate() {
        for (t, _) in existing(m, group) {
            subscribers.entry(t).or_default().push(i);
        }
        for (t, ps) in &m.target {
            let (Some(slots), true) = (owner.get_mut(t), m.topics.contains(t)) else {
                continue;
            };
            for p in ps {
                if let Some(slot) = slots.get_mut(*p as usize).filter(|s| s.is_none()) {
                    *slot = Some(i);
                    load[i] += 1;
                    held.entry(*t).or_default().entry(i).or_default().push(*p);
                }
            }
        }
    }
    let mut order: Vec<(TopicId, i32, usize)> = subscribers
        .iter()
        .map(|(t, subs)| (*t, group.partitions[t], subs.len()))
        .collect();
    order.sort_by(|a, b| {
        let ra = a.1 as f64 / a.2 as f64;
        let rb = b.1 as f64 / b.2 as f64;
        rb.partial_cmp(&ra)
            .unwrap()
            .then(a.2.cmp(&b.2))
            .then(a.0.cmp(&b.0))
    });
    for (t, _, _) in &order {
        let subs = &subscribers[t];
        // Least loaded first; a heap keyed by (load, index).
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>> = subs
            .iter()
            .map(|i| std::cmp::Reverse((load[*i], *i)))
            .collect();
        let slots = owner.get_mut(t).unwrap();
        for (p, slot) in slots.iter_mut().enumerate() {
            if slot.is_some() {
                continue;
            }
            let std::cmp::Reverse((l, to)) = heap.pop().unwrap();
            *slot = Some(to);
            load[to] = l + 1;
            held.entry(*t)
                .or_default()
                .entry(to)
                .or_default()
                .push(p as i32);
            heap.push(std::cmp::Reverse((l + 1, to)));
        }
    }
    for _ in 0..16 {
        let mut moved = false;
        for (t, _, nsubs) in &order {
            if *nsubs < 2 {
                continue;
            }
            let subs = &subscribers[t];
            let lists = held.entry(*t).or_default();
            loop {
                let &least = subs.iter().min_by_key(|i| (load[**i], **i)).unwrap();
                let donor = subs
                    .iter()
                    .filter(|i| lists.get(i).is_some_and(|l| !l.is_empty()))
                    .max_by_key(|i| (load[**i], std::cmp::Reverse(**i)))
                    .copied();
                let Some(donor) = donor else { break };
                if load[donor] - load[least] <= 1 {
                    break;
                }
                let p = lists.get_mut(&donor).unwrap().pop().unwrap();
                lists.entry(least).or_default().push(p);
                owner.get_mut(t).unwrap()[p as usize] = Some(least);
                load[donor] -= 1;
                load[least] += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    for (t, slots) in owner {
        for (p, o) in slots.into_iter().enumerate() {
            if let Some(i) = o {
                out.get_mut(&members[i].member_id)
                    .unwrap()
                    .entry(t)
                    .or_default()
                    .insert(p as i32);
            }
        }
    }
    out
}

/// Contiguous ranges per topic; members with an instance id first (by instance
/// id), then the rest by member id. Not sticky: any membership change can
/// shift ranges, as in Kafka.
pub struct Range;

impl ServerAssignor for Range {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, group: &GroupSpec) -> BTreeMap<String, Assignment> {
        let mut order: Vec<&MemberSpec> = group.members.iter().collect();
        order.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.member_id.cmp(&b.member_id),
        });
        let mut out: BTreeMap<String, Assignment> = group
            .members
            .iter()
            .map(|m| (m.member_id.clone(), Assignment::new()))
            .collect();
        for (t, count) in group.partitions {
            let subs: Vec<&&MemberSpec> = order.iter().filter(|m| m.topics.contains(t)).collect();
            if subs.is_empty() {
                continue;
            }
            let k = subs.len() as i32;
            let (per, extra) = (count / k, count % k);
            let mut next = 0;
            for (i, m) in subs.iter().enumerate() {
                let n = per + i32::from((i as i32) < extra);
                if n > 0 {
                    out.get_mut(&m.member_id)
                        .unwrap()
                        .entry(*t)
                        .or_default()
                        .extend(next..next + n);
                }
                next += n;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
