//! The heartbeat budget: how often a settled member of a consumer group is
//! asked to heartbeat.
//!
//! A settled owner learns that it must give a partition up only at its next
//! heartbeat, so its interval bounds how fast every rebalance completes. A
//! heartbeat that changes nothing costs the broker tens of microseconds, so a
//! small deployment can afford to hear from every member many times a second
//! and a very large one cannot. The broker is given a budget (heartbeats per
//! second across every consumer-protocol member it coordinates) and gives
//! settled members the shortest interval the budget allows:
//!
//! ```text
//! interval = clamp(members * 1000 / budget, floor, ceiling)
//! ```
//!
//! The ceiling is `group.consumer.heartbeat.interval.ms` (Kafka's fixed
//! interval, 5 s by default); past it the budget is overspent rather than
//! leaving members slower than Kafka would. A budget of 0 turns the rule off:
//! every settled member gets the ceiling, as in Kafka.
//!
//! Worked example, the defaults (budget 2,000/s, floor 50 ms, ceiling 5 s):
//!
//! | members | budget allows | given  | heartbeats/s |
//! |---------|---------------|--------|--------------|
//! | 10      | 5 ms          | 50 ms  | 200          |
//! | 100     | 50 ms         | 50 ms  | 2,000        |
//! | 1,000   | 500 ms        | 500 ms | 2,000        |
//! | 10,000  | 5 s           | 5 s    | 2,000        |
//! | 50,000  | 25 s          | 5 s    | 10,000       |
//!
//! Why not hold settled members' heartbeats instead (a long poll answered
//! when the target changes)? librdkafka times a ConsumerGroupHeartbeat out
//! after the interval it was last given, so a hold can never outlast the
//! interval; and librdkafka and the Java client send a member's leave only
//! after its outstanding heartbeat returns, so a hold delays every graceful
//! leave by the hold (measured: about 2 s to 6-7 s).

/// The interval, in ms, for a settled member when `members` consumer-protocol
/// members share `budget_per_s` heartbeats a second.
pub fn settled_interval_ms(
    members: usize,
    budget_per_s: u32,
    floor_ms: i32,
    ceiling_ms: i32,
) -> i32 {
    let ceiling = ceiling_ms.max(1);
    if budget_per_s == 0 {
        return ceiling;
    }
    // Rounded up: the budget is a most, not a least.
    let allowed = (members as u64 * 1000).div_ceil(budget_per_s as u64);
    let allowed = allowed.min(i32::MAX as u64) as i32;
    allowed.max(floor_ms).min(ceiling)
}

#[cfg(test)]
mod tests {
    use super::settled_interval_ms;

    #[test]
    fn the_worked_example() {
        assert_eq!(settled_interval_ms(10, 2000, 50, 5000), 50);
        assert_eq!(settled_interval_ms(100, 2000, 50, 5000), 50);
        assert_eq!(settled_interval_ms(1_000, 2000, 50, 5000), 500);
        assert_eq!(settled_interval_ms(10_000, 2000, 50, 5000), 5000);
        assert_eq!(settled_interval_ms(50_000, 2000, 50, 5000), 5000);
    }

    #[test]
    fn no_budget_is_kafkas_fixed_interval() {
        assert_eq!(settled_interval_ms(1, 0, 50, 5000), 5000);
        assert_eq!(settled_interval_ms(1_000_000, 0, 50, 5000), 5000);
    }

    #[test]
    fn the_budget_is_never_overspent_between_floor_and_ceiling() {
        for members in [1usize, 7, 333, 4_999, 5_001, 12_345, 24_999] {
            for budget in [1u32, 100, 5000, 20_000] {
                let i = settled_interval_ms(members, budget, 1, 5000);
                if i > 1 && i < 5000 {
                    // members heartbeating every i ms send members*1000/i a second.
                    assert!(
                        members as u64 * 1000 <= i as u64 * budget as u64,
                        "{members} {budget} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_floor_above_the_ceiling_gives_the_ceiling() {
        assert_eq!(settled_interval_ms(10, 5000, 9000, 5000), 5000);
        assert_eq!(settled_interval_ms(10, 5000, 50, 0), 1);
    }

    #[test]
    fn huge_counts_do_not_overflow() {
        assert_eq!(settled_interval_ms(usize::MAX / 2000, 1, 50, 5000), 5000);
    }
}
