//! From what the probe produced and what each member's application received and
//! owned, the figures of a run: join-to-steady time, per-partition gaps, total
//! unavailability, duplicates, missing records and double ownership; and the
//! member timeline the SVG draws. Pure: a recording in, figures out.
//!
//! All times are microseconds on the lab's one clock (members in other
//! processes report the same wall clock).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type Micros = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OwnKind {
    /// The application was given these partitions.
    Assigned,
    /// The revocation callback started (the partitions are still owned).
    RevokeStarted,
    /// The revocation callback returned: no longer owned.
    Revoked,
    /// Taken away without a revocation (session lost, fenced).
    Lost,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnEvent {
    pub member: u32,
    pub t: Micros,
    pub kind: OwnKind,
    pub partitions: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub member: u32,
    pub partition: u32,
    pub seq: u64,
    pub produced: Micros,
    pub t: Micros,
}

/// Everything one run observed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Recording {
    /// The probe writes one record per partition every `interval`.
    pub interval: Micros,
    /// Silences shorter than this are delivery jitter (fetch and fsync
    /// cadence), not unavailability.
    pub stall: Micros,
    /// The trigger.
    pub t0: Micros,
    /// Gaps are counted from here (a little before the trigger)...
    pub window_start: Micros,
    /// The probe wrote its last record here: a partition's silence is
    /// counted up to its next delivery, or up to here if none came.
    pub probe_stopped: Micros,
    /// Deliveries are taken until here (the probe's stop plus the drain).
    pub end: Micros,
    /// Acknowledged probe records: (partition, seq, produced at).
    pub produced: Vec<(u32, u64, Micros)>,
    pub deliveries: Vec<Delivery>,
    pub ownership: Vec<OwnEvent>,
    /// (member, started, stopped or killed); None while running at the end.
    pub lifetimes: BTreeMap<u32, Vec<(Micros, Option<Micros>)>>,
    pub member_names: BTreeMap<u32, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// t1 - t0: every partition has delivered a record produced after t0 to
    /// the member that owns it at the end. None if some never did.
    pub jts_ms: Option<f64>,
    /// Partitions that never delivered a post-trigger record to their final owner.
    pub unconverged_partitions: usize,
    /// The last assignment or revocation any member saw after t0.
    pub last_assignment_change_ms: Option<f64>,
    /// Sum over partitions of time with no delivery beyond the probe
    /// interval, in partition-seconds, over the window, counting silences
    /// longer than the stall threshold.
    pub unavailability_partition_s: f64,
    pub worst_gap_ms: f64,
    pub worst_gap_partition: Option<u32>,
    pub produced: usize,
    pub delivered_unique: usize,
    /// Deliveries of a record some member already had.
    pub duplicates: usize,
    /// Acknowledged records nobody received.
    pub missing: usize,
    /// Moments a partition was owned by two members at once.
    pub double_ownership: usize,
    pub double_ownership_examples: Vec<String>,
    /// Seconds of membership, summed over members (to the end).
    #[serde(default)]
    pub member_seconds: f64,
    /// Group-membership requests (heartbeats, joins, syncs) per member per
    /// second of membership, as the broker counted them (Cohort only).
    #[serde(default)]
    pub group_requests_per_member_s: Option<f64>,
}

/// What the timeline draws for one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    Consuming,
    Revoking,
    /// Running, owning nothing, with an assignment still to come.
    Waiting,
    /// Running, owning nothing, and nothing came before it stopped.
    Idle,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_ms: f64,
    pub end_ms: f64,
    pub state: MemberState,
    /// Partitions owned during the segment.
    pub owned: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberRow {
    pub name: String,
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub t0_ms: f64,
    pub end_ms: f64,
    pub members: Vec<MemberRow>,
    /// Gaps longer than the threshold: (partition, start ms, end ms), longest
    /// first, at most a few hundred.
    pub gaps: Vec<(u32, f64, f64)>,
}

fn ms(us: Micros) -> f64 {
    us as f64 / 1000.0
}

/// Ownership intervals per (member, partition): [start, end).
fn ownership_intervals(r: &Recording) -> BTreeMap<u32, Vec<(u32, Micros, Micros)>> {
    let mut events = r.ownership.clone();
    events.sort_by_key(|e| e.t);
    let mut open: HashMap<(u32, u32), Micros> = HashMap::new();
    let mut by_partition: BTreeMap<u32, Vec<(u32, Micros, Micros)>> = BTreeMap::new();
    for e in &events {
        for &p in &e.partitions {
            match e.kind {
                OwnKind::Assigned => {
                    open.entry((e.member, p)).or_insert(e.t);
                }
                OwnKind::RevokeStarted => {}
                OwnKind::Revoked | OwnKind::Lost => {
                    if let Some(s) = open.remove(&(e.member, p)) {
                        by_partition.entry(p).or_default().push((e.member, s, e.t));
                    }
                }
            }
        }
    }
    // Still owned when the member stopped (or at the end).
    for ((m, p), s) in open {
        let stop = r
            .lifetimes
            .get(&m)
            .and_then(|l| l.iter().filter(|(st, _)| *st <= s).next_back())
            .and_then(|(_, stop)| *stop)
            .unwrap_or(r.end);
        by_partition.entry(p).or_default().push((m, s, stop.max(s)));
    }
    by_partition
}

pub fn figures(r: &Recording) -> Figures {
    let mut f = Figures {
        produced: r.produced.len(),
        ..Default::default()
    };
    // Duplicates and missing.
    let mut first: HashMap<(u32, u64), Micros> = HashMap::with_capacity(r.deliveries.len());
    let mut deliveries = r.deliveries.clone();
    deliveries.sort_by_key(|d| d.t);
    for d in &deliveries {
        if first.contains_key(&(d.partition, d.seq)) {
            f.duplicates += 1;
        } else {
            first.insert((d.partition, d.seq), d.t);
        }
    }
    f.delivered_unique = first.len();
    f.missing = r
        .produced
        .iter()
        .filter(|(p, s, _)| !first.contains_key(&(*p, *s)))
        .count();

    let first_produced = born(r);
    let gaps = silences(r, &first, &first_produced, r.interval);
    let unavailable: Micros = gaps
        .iter()
        .map(|(_, a, b)| b - a)
        .filter(|g| *g > r.interval.max(r.stall))
        .map(|g| g - r.interval)
        .sum();
    f.unavailability_partition_s = unavailable as f64 / 1e6;
    if let Some((p, s, e)) = gaps.iter().max_by_key(|(_, s, e)| e - s) {
        f.worst_gap_ms = ms(e - s);
        f.worst_gap_partition = Some(*p);
    }

    // Double ownership.
    let intervals = ownership_intervals(r);
    for (p, iv) in &intervals {
        for (i, a) in iv.iter().enumerate() {
            for b in &iv[i + 1..] {
                if a.0 != b.0 && a.1 < b.2 && b.1 < a.2 {
                    f.double_ownership += 1;
                    if f.double_ownership_examples.len() < 5 {
                        let name = |m: u32| {
                            r.member_names
                                .get(&m)
                                .cloned()
                                .unwrap_or_else(|| m.to_string())
                        };
                        f.double_ownership_examples.push(format!(
                            "partition {p}: {} [{:.1}, {:.1}) ms and {} [{:.1}, {:.1}) ms",
                            name(a.0),
                            ms(a.1),
                            ms(a.2),
                            name(b.0),
                            ms(b.1),
                            ms(b.2)
                        ));
                    }
                }
            }
        }
    }

    // Join-to-steady: each partition's final owner, and its first delivery of
    // a record produced after t0.
    let final_owner: BTreeMap<u32, u32> = intervals
        .iter()
        .filter_map(|(p, iv)| {
            iv.iter()
                .filter(|(_, s, e)| *s <= r.end && *e >= r.end)
                .max_by_key(|(_, s, _)| *s)
                .map(|(m, _, _)| (*p, *m))
        })
        .collect();
    let mut t1 = r.t0;
    for &p in first_produced.keys() {
        let got = final_owner.get(&p).and_then(|&m| {
            deliveries
                .iter()
                .find(|d| d.partition == p && d.member == m && d.produced > r.t0)
                .map(|d| d.t)
        });
        match got {
            Some(t) => t1 = t1.max(t),
            None => f.unconverged_partitions += 1,
        }
    }
    if f.unconverged_partitions == 0 && !first_produced.is_empty() {
        f.jts_ms = Some(ms(t1 - r.t0));
    }
    f.member_seconds = r
        .lifetimes
        .values()
        .flatten()
        .map(|(a, b)| (b.unwrap_or(r.end).min(r.end) - a).max(0) as f64 / 1e6)
        .sum();
    f.last_assignment_change_ms = r
        .ownership
        .iter()
        .filter(|e| {
            e.t >= r.t0
                && e.t <= r.probe_stopped
                && e.kind != OwnKind::RevokeStarted
                && !e.partitions.is_empty()
        })
        .map(|e| ms(e.t - r.t0))
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))));
    f
}

/// Gaps longer than this are drawn.
pub const GAP_DRAWN: Micros = 100_000;

/// Each partition's first produce time.
fn born(r: &Recording) -> BTreeMap<u32, Micros> {
    let mut born: BTreeMap<u32, Micros> = BTreeMap::new();
    for (p, _, t) in &r.produced {
        let e = born.entry(*p).or_insert(*t);
        *e = (*e).min(*t);
    }
    born
}

/// Every silence longer than `longer_than`: (partition, from, to). Per
/// partition, the times it first delivered each record within the window,
/// from the window start (or its first record, for a partition created
/// later); a silence still open at the probe's stop ends there.
fn silences(
    r: &Recording,
    first: &HashMap<(u32, u64), Micros>,
    born: &BTreeMap<u32, Micros>,
    longer_than: Micros,
) -> Vec<(u32, Micros, Micros)> {
    let mut times: BTreeMap<u32, Vec<Micros>> = BTreeMap::new();
    for ((p, _), t) in first {
        if *t >= r.window_start && *t <= r.end {
            times.entry(*p).or_default().push(*t);
        }
    }
    let mut out = Vec::new();
    for (&p, &b) in born {
        let mut ts = times.remove(&p).unwrap_or_default();
        ts.sort_unstable();
        let mut last = r.window_start.max(b);
        let tail =
            (ts.last().copied().unwrap_or(last) < r.probe_stopped).then_some(r.probe_stopped);
        for t in ts.into_iter().chain(tail) {
            if t - last > longer_than {
                out.push((p, last, t));
            }
            last = last.max(t);
        }
    }
    out
}

pub fn timeline(r: &Recording) -> Timeline {
    let base = r.window_start;
    let rel = |t: Micros| ms(t - base);
    let mut tl = Timeline {
        t0_ms: rel(r.t0),
        end_ms: rel(r.end),
        ..Default::default()
    };
    let mut events = r.ownership.clone();
    events.sort_by_key(|e| e.t);
    for (&m, lives) in &r.lifetimes {
        let name = r
            .member_names
            .get(&m)
            .cloned()
            .unwrap_or_else(|| format!("member-{m}"));
        let mut segments = Vec::new();
        for &(start, stop) in lives {
            let stop = stop.unwrap_or(r.end);
            // Walk this life's events, tracking what is owned and revoking.
            let mut owned: BTreeSet<u32> = BTreeSet::new();
            let mut revoking = false;
            let mut cuts: Vec<(Micros, usize, bool)> = vec![(start, 0, false)];
            for e in events
                .iter()
                .filter(|e| e.member == m && e.t >= start && e.t <= stop)
            {
                match e.kind {
                    OwnKind::Assigned => owned.extend(&e.partitions),
                    OwnKind::RevokeStarted => revoking = true,
                    OwnKind::Revoked | OwnKind::Lost => {
                        for p in &e.partitions {
                            owned.remove(p);
                        }
                        revoking = false;
                    }
                }
                cuts.push((e.t, owned.len(), revoking));
            }
            for (i, &(t, n, rev)) in cuts.iter().enumerate() {
                let end = cuts.get(i + 1).map(|c| c.0).unwrap_or(stop);
                if end <= t && i + 1 < cuts.len() {
                    continue;
                }
                let more_to_come = cuts[i + 1..].iter().any(|c| c.1 > 0);
                let state = if rev {
                    MemberState::Revoking
                } else if n > 0 {
                    MemberState::Consuming
                } else if more_to_come {
                    MemberState::Waiting
                } else {
                    MemberState::Idle
                };
                let seg = Segment {
                    start_ms: rel(t.max(base)),
                    end_ms: rel(end.max(base)),
                    state,
                    owned: n,
                };
                match segments.last_mut() {
                    Some(Segment {
                        end_ms,
                        state: s,
                        owned: o,
                        ..
                    }) if *s == state && *o == n && *end_ms == seg.start_ms => *end_ms = seg.end_ms,
                    _ if seg.end_ms > seg.start_ms => segments.push(seg),
                    _ => {}
                }
            }
        }
        tl.members.push(MemberRow { name, segments });
    }
    // Gaps over the drawing threshold, from the same computation as figures.
    let mut first: HashMap<(u32, u64), Micros> = HashMap::new();
    for d in &r.deliveries {
        let e = first.entry((d.partition, d.seq)).or_insert(d.t);
        *e = (*e).min(d.t);
    }
    let mut gaps: Vec<(u32, f64, f64)> = silences(r, &first, &born(r), GAP_DRAWN)
        .into_iter()
        .map(|(p, a, b)| (p, rel(a), rel(b)))
        .collect();
    gaps.sort_by(|a, b| (b.2 - b.1).total_cmp(&(a.2 - a.1)));
    gaps.truncate(500);
    tl.gaps = gaps;
    tl
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(r: &mut Recording, member: u32, partition: u32, seq: u64, t: Micros) {
        let produced = r
            .produced
            .iter()
            .find(|x| x.0 == partition && x.1 == seq)
            .map(|x| x.2)
            .unwrap();
        r.deliveries.push(Delivery {
            member,
            partition,
            seq,
            produced,
            t,
        });
    }

    /// Two partitions, a record every 10 ms for one second; partition 1 is
    /// silent from 300 ms to 800 ms. Exactly 0.49 partition-seconds.
    fn synthetic() -> Recording {
        let ms = 1000;
        let mut r = Recording {
            interval: 10 * ms,
            stall: 250 * ms,
            t0: 300 * ms,
            window_start: 0,
            probe_stopped: 1000 * ms,
            end: 1100 * ms,
            ..Default::default()
        };
        for seq in 0..100u64 {
            for p in 0..2 {
                r.produced.push((p, seq, seq as i64 * 10 * ms));
            }
        }
        r.lifetimes.insert(0, vec![(0, None)]);
        r.lifetimes.insert(1, vec![(0, None)]);
        r.ownership.push(OwnEvent {
            member: 0,
            t: 0,
            kind: OwnKind::Assigned,
            partitions: vec![0, 1],
        });
        r.ownership.push(OwnEvent {
            member: 0,
            t: 300 * ms,
            kind: OwnKind::RevokeStarted,
            partitions: vec![1],
        });
        r.ownership.push(OwnEvent {
            member: 0,
            t: 301 * ms,
            kind: OwnKind::Revoked,
            partitions: vec![1],
        });
        r.ownership.push(OwnEvent {
            member: 1,
            t: 750 * ms,
            kind: OwnKind::Assigned,
            partitions: vec![1],
        });
        for seq in 0..100u64 {
            let t = seq as i64 * 10 * ms;
            deliver(&mut r, 0, 0, seq, t);
            if !(30..80).contains(&seq) {
                // Partition 1's records from 300 to 790 ms arrive at 800 ms, at
                // its new owner.
                deliver(&mut r, if seq < 30 { 0 } else { 1 }, 1, seq, t);
            } else {
                deliver(&mut r, 1, 1, seq, 800 * ms);
            }
        }
        r
    }

    #[test]
    fn a_known_gap_gives_the_exact_partition_seconds() {
        let mut r = synthetic();
        let f = figures(&r);
        // Partition 1 delivered at 290 ms, then nothing until 800 ms: a gap of
        // 510 ms, of which 500 ms beyond the 10 ms probe interval. The last
        // records (990 ms) to the probe's stop (1000 ms) count nothing.
        assert!(
            (f.unavailability_partition_s - 0.500).abs() < 1e-9,
            "{}",
            f.unavailability_partition_s
        );
        assert_eq!(f.worst_gap_ms, 510.0);
        assert_eq!(f.worst_gap_partition, Some(1));
        assert_eq!(
            (f.produced, f.delivered_unique, f.duplicates, f.missing),
            (200, 200, 0, 0)
        );
        assert_eq!(f.double_ownership, 0);
        // The first record produced after t0 = 300 ms on partition 1 reached
        // its final owner at 800 ms; partition 0 at 310 ms.
        assert_eq!(f.jts_ms, Some(500.0));
        assert_eq!(f.last_assignment_change_ms, Some(450.0));

        // A re-delivery is a duplicate, a record nobody got is missing.
        deliver(&mut r, 1, 1, 10, 900_000);
        r.deliveries.retain(|d| !(d.partition == 0 && d.seq == 99));
        let f = figures(&r);
        assert_eq!((f.duplicates, f.missing), (1, 1));
    }

    #[test]
    fn overlapping_owners_are_caught() {
        let mut r = synthetic();
        // Member 1 takes partition 1 before member 0 let go of it.
        r.ownership.push(OwnEvent {
            member: 1,
            t: 200_000,
            kind: OwnKind::Assigned,
            partitions: vec![1],
        });
        let f = figures(&r);
        assert_eq!(f.double_ownership, 1);
        assert!(
            f.double_ownership_examples[0].starts_with("partition 1:"),
            "{:?}",
            f.double_ownership_examples
        );
    }

    #[test]
    fn a_partition_never_reaching_its_owner_means_no_jts() {
        let mut r = synthetic();
        r.deliveries
            .retain(|d| !(d.partition == 1 && d.produced > r.t0));
        let f = figures(&r);
        assert_eq!(f.jts_ms, None);
        assert_eq!(f.unconverged_partitions, 1);
    }

    #[test]
    fn the_timeline_shows_revoking_waiting_and_consuming() {
        let r = synthetic();
        let tl = timeline(&r);
        let states = |i: usize| {
            tl.members[i]
                .segments
                .iter()
                .map(|s| s.state)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            states(0),
            vec![
                MemberState::Consuming,
                MemberState::Revoking,
                MemberState::Consuming
            ]
        );
        assert_eq!(
            states(1),
            vec![MemberState::Waiting, MemberState::Consuming]
        );
        assert_eq!(tl.gaps, vec![(1, 290.0, 800.0)]);
    }
}
