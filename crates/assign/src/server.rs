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

/// Partitions of the subscribed topics numbered 0.. in topic order, so that
/// "taken" is a bitmap and the unassigned ones a forward scan.
struct Numbering {
    topics: Vec<(TopicId, i32)>,
    /// First number of each topic's partitions.
    start: Vec<usize>,
    total: usize,
}

impl Numbering {
    fn new(topics: Vec<(TopicId, i32)>) -> Numbering {
        let mut start = Vec::with_capacity(topics.len());
        let mut total = 0usize;
        for (_, n) in &topics {
            start.push(total);
            total += (*n).max(0) as usize;
        }
        Numbering {
            topics,
            start,
            total,
        }
    }

    /// The numbers of a target's partitions that still exist, in target order.
    fn valid<'a>(&'a self, target: &'a Assignment) -> impl Iterator<Item = usize> + 'a {
        target.iter().flat_map(move |(t, ps)| {
            let found = self.topics.binary_search_by(|(x, _)| x.cmp(t)).ok();
            ps.iter().filter_map(move |p| {
                let i = found?;
                (*p >= 0 && *p < self.topics[i].1).then(|| self.start[i] + *p as usize)
            })
        })
    }

    fn assignment(&self, mut numbers: Vec<usize>) -> Assignment {
        numbers.sort_unstable();
        let mut a = Assignment::new();
        let mut i = 0;
        let mut at = 0;
        while at < numbers.len() {
            while self.start.get(i + 1).is_some_and(|s| numbers[at] >= *s) {
                i += 1;
            }
            let end = self.start.get(i + 1).copied().unwrap_or(self.total);
            let run = numbers[at..].iter().take_while(|n| **n < end).count();
            let base = self.start[i];
            a.insert(
                self.topics[i].0,
                numbers[at..at + run]
                    .iter()
                    .map(|n| (n - base) as i32)
                    .collect(),
            );
            at += run;
        }
        a
    }
}

fn uniform_homogeneous(group: &GroupSpec) -> BTreeMap<String, Assignment> {
    let members = group.members;
    let numbering = Numbering::new(existing(&members[0], group).collect());
    let m = members.len();
    let (base, mut extras) = (numbering.total / m, numbering.total % m);
    // Members already holding more than the base quota keep an extra first,
    // so an assignment that is already balanced is not reshuffled.
    let mut quota = vec![base; m];
    for (i, mem) in members.iter().enumerate() {
        if extras > 0 && numbering.valid(&mem.target).nth(base).is_some() {
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
    // Each member keeps the first `quota` of its previous target; a partition
    // two targets name goes to the first.
    let mut taken = vec![false; numbering.total];
    let mut out: Vec<Vec<usize>> = Vec::with_capacity(m);
    for (i, mem) in members.iter().enumerate() {
        let mut own = Vec::with_capacity(quota[i]);
        for n in numbering.valid(&mem.target).take(quota[i]) {
            if !taken[n] {
                taken[n] = true;
                own.push(n);
            }
        }
        out.push(own);
    }
    let mut next_free = 0;
    for (i, own) in out.iter_mut().enumerate() {
        while own.len() < quota[i] {
            while next_free < numbering.total && taken[next_free] {
                next_free += 1;
            }
            if next_free == numbering.total {
                break;
            }
            taken[next_free] = true;
            own.push(next_free);
        }
    }
    members
        .iter()
        .zip(out)
        .map(|(mem, own)| (mem.member_id.clone(), numbering.assignment(own)))
        .collect()
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
