//! A short swarm of seeds for CI. The long swarm is `cohort sim` (see README).

use cohort_sim::client::Style;
use cohort_sim::{run, SimConfig};

fn swarm(style: Style, seeds: std::ops::Range<u64>, members: usize, partitions: i32) {
    for seed in seeds {
        let cfg = SimConfig::new(members, partitions, style);
        match run(seed, cfg) {
            Ok(r) => assert!(
                r.converged_after_ms <= cohort_sim::CONVERGENCE_BOUND_MS,
                "seed {seed}: stable only {} ms after faults stopped",
                r.converged_after_ms
            ),
            Err(f) => panic!("{f}\nreplay: cargo run --release -p cohort -- sim --seed {seed} --members {members} --partitions {partitions} --style {style:?}"),
        }
    }
}

#[test]
fn eager_range_groups_keep_every_invariant() {
    swarm(Style::Eager, 0..6, 60, 48);
}

#[test]
fn cooperative_sticky_groups_keep_every_invariant() {
    swarm(Style::Cooperative, 100..106, 60, 48);
}

/// Fewer members than partitions: every membership change moves partitions
/// between owners, so rounds revoke and follow-up rounds carry members.
#[test]
fn cooperative_groups_that_move_partitions_keep_every_invariant() {
    swarm(Style::Cooperative, 200..206, 12, 48);
}

#[test]
fn cooperative_follow_up_rounds_carry_members_under_every_fault() {
    // Odd seeds hold classic answers: cooperative rounds that take partitions
    // away hold the others' SyncGroups and carry them into the next round.
    let r = run(101, SimConfig::new(12, 48, Style::Cooperative)).unwrap();
    assert!(r.held_syncs > 0 && r.carried_rounds > 0, "{r:?}");
    let even = run(100, SimConfig::new(12, 48, Style::Cooperative)).unwrap();
    assert_eq!((even.held_syncs, even.carried_rounds), (0, 0), "{even:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let a = run(7, SimConfig::new(30, 24, Style::Cooperative)).unwrap();
    let b = run(7, SimConfig::new(30, 24, Style::Cooperative)).unwrap();
    assert_eq!(
        (a.steps, a.generations, a.crashes, a.restarts),
        (b.steps, b.generations, b.crashes, b.restarts)
    );
}

#[test]
fn the_swarm_exercises_every_fault() {
    let r = run(3, SimConfig::new(60, 48, Style::Eager)).unwrap();
    eprintln!("{r:?}");
    assert!(r.crashes > 0 && r.restarts > 0 && r.dropped > 0, "{r:?}");
    assert!(r.generations >= 3, "{r:?}");
}

#[test]
fn a_member_that_keeps_partitions_while_rejoining_is_caught() {
    // The checker must be able to fail: an eager member that skips revocation
    // leads to two owners at once, and the run reports it with its seed.
    let mut cfg = SimConfig::new(20, 12, Style::Eager);
    cfg.bug_eager_keeps_partitions = true;
    let err = (0..5)
        .find_map(|seed| run(seed, cfg.clone()).err())
        .expect("the bug is caught");
    assert!(err.message.contains("owned by"), "{err}");
}

#[test]
fn consumer_protocol_groups_keep_every_invariant() {
    swarm(Style::Consumer, 200..203, 60, 48);
}

/// Rollouts: members replaced one at a time by members of the other
/// protocol, sweeping the group onto the consumer protocol and back, with
/// every fault on (log write failures rarer than elsewhere: each rebuild
/// gives every member a fresh session, so at the usual rate a crashed
/// member outlives the sweep and the group never turns back). Eager and
/// cooperative classic members both; and a group that starts on the
/// consumer protocol and is rolled back to classic members.
#[test]
fn groups_rolled_between_the_protocols_keep_every_invariant() {
    let (mut upgrades, mut downgrades) = (0, 0);
    for (style, seeds) in [
        (Style::Eager, 300..302),
        (Style::Cooperative, 400..402),
        (Style::Consumer, 500..501),
    ] {
        for seed in seeds {
            let mut cfg = SimConfig::new(40, 32, style);
            cfg.rollout_rate = 2.0;
            cfg.write_failure_rate = 0.0005;
            match run(seed, cfg) {
                Ok(r) => {
                    assert!(r.rolled > 0, "seed {seed}: {r:?}");
                    assert!(
                        r.converged_after_ms <= cohort_sim::CONVERGENCE_BOUND_MS,
                        "seed {seed}: stable only {} ms after faults stopped",
                        r.converged_after_ms
                    );
                    upgrades += r.upgrades;
                    downgrades += r.downgrades;
                }
                Err(f) => panic!("{f}\nreplay: cargo run --release -p cohort -- sim --seed {seed} --members 40 --partitions 32 --style {style:?} --rollout-rate 2 --write-failure-rate 0.0005"),
            }
        }
    }
    assert!(
        upgrades > 0 && downgrades > 0,
        "{upgrades} upgrades, {downgrades} downgrades"
    );
}

/// The checker catches a broken client in a mixed group too: eager classic
/// members, rolled in while the group is a consumer group, that keep their
/// partitions while they rejoin.
#[test]
fn a_classic_member_keeping_partitions_in_a_mixed_group_is_caught() {
    let mut cfg = SimConfig::new(20, 12, Style::Eager);
    cfg.rollout_rate = 2.0;
    cfg.write_failure_rate = 0.0005;
    cfg.bug_rolled_in_eager_keeps_partitions = true;
    let err = (600..610)
        .find_map(|seed| run(seed, cfg.clone()).err())
        .expect("the bug is caught");
    assert!(err.message.contains("owned by"), "{err}");
    assert_eq!(err.group, "consumer", "{err}");
}

/// Rollouts of a group with fewer members than partitions, so every change of
/// membership moves partitions between owners and conversions happen while
/// members still hold partitions their targets gave to others (seed 7202
/// once gave a partition to two members: a downgrade wrote each member's
/// target as its classic assignment, and an upgrade during the forced
/// rebalance took those as owned).
#[test]
fn rolled_groups_that_move_partitions_keep_every_invariant() {
    for (style, seed) in [
        (Style::Cooperative, 7202),
        (Style::Cooperative, 7204),
        (Style::Consumer, 7201),
        (Style::Eager, 7301),
    ] {
        let mut cfg = SimConfig::new(12, 48, style);
        cfg.rollout_rate = 2.0;
        if let Err(f) = run(seed, cfg) {
            panic!("{f}\nreplay: cargo run --release -p cohort -- sim --seed {seed} --members 12 --partitions 48 --style {style:?} --rollout-rate 2");
        }
    }
}
