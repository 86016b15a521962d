//! The heartbeat budget (see `consumer::cadence`): settled members get the
//! shortest interval the budget allows across every consumer group.

use super::*;
use crate::consumer::MemberState;

/// 100 heartbeats a second: n members get n x 10 ms.
fn budget() -> CoordinatorConfig {
    CoordinatorConfig {
        consumer_heartbeat_budget_per_s: 100,
        consumer_heartbeat_interval_floor_ms: 10,
        consumer_heartbeat_interval_ms: 5000,
        ..config()
    }
}

fn in_group(group: &str, r: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        ..r
    }
}

/// Heartbeats every member with what it owns until nobody's assignment or
/// epoch changes; returns the last answer of each.
fn settle(s: &mut Script, group: &str, members: &[&str]) -> Vec<ConsumerGroupHeartbeatResponse> {
    let mut owned: BTreeMap<String, (i32, Vec<(TopicId, Vec<i32>)>)> = BTreeMap::new();
    for m in members {
        let r = s.hb(in_group(group, join(m, &["t"])));
        owned.insert(m.to_string(), (r.member_epoch, parts(&r.assignment)));
    }
    for _ in 0..10 {
        let mut last = vec![];
        let mut changed = false;
        for m in members {
            let (epoch, mine) = owned[*m].clone();
            let r = s.hb(in_group(group, beat(m, epoch, &mine)));
            let now_owned = if r.assignment.is_some() {
                parts(&r.assignment)
            } else {
                mine.clone()
            };
            changed |= r.member_epoch != epoch || now_owned != mine;
            owned.insert(m.to_string(), (r.member_epoch, now_owned));
            last.push(r);
        }
        if !changed {
            return last;
        }
    }
    panic!("group {group} did not settle");
}

#[test]
fn settled_members_share_the_budget_across_every_group() {
    let mut s = Script::with(budget());
    // Alone: 1,000 ms / 100 = 10 ms, the floor.
    let r = s.hb(join("a", &["t"]));
    assert_eq!(r.heartbeat_interval_ms, 10);
    // Three members: 30 ms each, 100 heartbeats a second in all.
    for r in settle(&mut s, "g", &["a", "b", "c"]) {
        assert_eq!(r.heartbeat_interval_ms, 30);
    }
    // Two more in another group: five members share the same budget.
    for r in settle(&mut s, "h", &["x", "y"]) {
        assert_eq!(r.heartbeat_interval_ms, 50);
    }
    assert_eq!(s.c.settled_interval_ms(), 50);
    s.check_replay();
}

#[test]
fn a_member_leaving_or_expiring_gives_its_share_back() {
    let mut s = Script::with(budget());
    settle(&mut s, "g", &["a", "b", "c"]);
    settle(&mut s, "h", &["x"]);
    assert_eq!(s.c.settled_interval_ms(), 40);
    let epoch = s.c.consumer_group("h").unwrap().members["x"].member_epoch;
    let r = s.hb(in_group("h", beat("x", -1, &[])));
    assert_eq!((r.error, r.member_epoch), (ErrorCode::NONE, -1));
    assert!(epoch > 0);
    assert_eq!(s.c.settled_interval_ms(), 30);
    // c goes silent past its session: two members left.
    for _ in 0..5 {
        s.advance(10_000);
        for m in ["a", "b"] {
            let e = s.c.consumer_group("g").unwrap().members[m].member_epoch;
            let mine: Vec<(TopicId, Vec<i32>)> = s.c.consumer_group("g").unwrap().members[m]
                .assigned
                .iter()
                .map(|(t, ps)| (*t, ps.iter().copied().collect()))
                .collect();
            s.hb(beat(m, e, &mine));
        }
    }
    assert!(!s.c.consumer_group("g").unwrap().members.contains_key("c"));
    assert_eq!(s.c.settled_interval_ms(), 20);
    s.check_replay();
}

#[test]
fn members_with_work_pending_come_back_no_later_than_settled_ones() {
    // A budget so large that settled members get the floor, below the
    // reconcile interval: nobody is asked to wait longer for having work.
    let mut s = Script::with(CoordinatorConfig {
        consumer_heartbeat_budget_per_s: 1_000_000,
        consumer_heartbeat_interval_floor_ms: 20,
        consumer_reconcile_heartbeat_interval_ms: 50,
        ..budget()
    });
    s.hb(join("a", &["t"]));
    let r = s.hb(join("b", &["t"]));
    // b waits for partitions a still owns: work pending.
    assert_eq!(
        s.c.consumer_group("g").unwrap().members["b"].state,
        MemberState::UnreleasedPartitions
    );
    assert_eq!(r.heartbeat_interval_ms, 20);
}

#[test]
fn without_a_budget_every_settled_member_gets_kafkas_interval() {
    let mut s = Script::with(CoordinatorConfig {
        consumer_heartbeat_budget_per_s: 0,
        ..budget()
    });
    for r in settle(&mut s, "g", &["a", "b", "c"]) {
        assert_eq!(r.heartbeat_interval_ms, 5000);
    }
}

#[test]
fn a_thousand_members_at_the_default_budget_hear_every_500_ms() {
    let mut s = Script::with(CoordinatorConfig {
        consumer_heartbeat_budget_per_s: CoordinatorConfig::default()
            .consumer_heartbeat_budget_per_s,
        consumer_heartbeat_interval_floor_ms: CoordinatorConfig::default()
            .consumer_heartbeat_interval_floor_ms,
        ..config()
    });
    for i in 0..1000 {
        s.hb(in_group(
            &format!("g{}", i % 10),
            join(&format!("m{i}"), &["t"]),
        ));
    }
    assert_eq!(s.c.settled_interval_ms(), 500);
    s.check_replay();
}
