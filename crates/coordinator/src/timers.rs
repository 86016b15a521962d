//! Timers as data: a deadline per key, ordered by time. Re-arming a key replaces
//! its deadline; a spurious Tick fires nothing.

use cohort_types::Millis;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// A member's session (or, while its first join is parked, the new-member
    /// join timeout).
    Heartbeat { group: String, member: String },
    /// A member id handed out with MEMBER_ID_REQUIRED that has not come back.
    PendingMember { group: String, member: String },
    /// The join barrier (group rebalance timeout).
    Join { group: String },
    /// The first rebalance of an empty group (group.initial.rebalance.delay.ms).
    InitialDelay { group: String },
    /// The first rebalance of an empty group has seen no new member for
    /// `initial_rebalance_quiet_ms`.
    InitialQuiet { group: String },
    /// Members that got a JoinGroup answer but never sent SyncGroup.
    Sync { group: String },
    /// A consumer-group member's session.
    ConsumerSession { group: String, member: String },
    /// A consumer-group member's deadline to revoke (its rebalance timeout).
    ConsumerRebalance { group: String, member: String },
    /// A classic member of a consumer group was told to rejoin (or its
    /// JoinGroup is due) and has not: fenced at its rebalance timeout.
    ConsumerClassicJoin { group: String, member: String },
    /// A classic member of a consumer group got its JoinGroup answer and has
    /// not sent SyncGroup: fenced at its rebalance timeout.
    ConsumerClassicSync { group: String, member: String },
    /// A consumer group's regexes are due to be (re-)resolved.
    RegexRefresh { group: String },
    /// A consumer group's deferred target assignment is due.
    ConsumerAssignment { group: String },
    /// A dynamic member whose connection ended is removed unless it speaks
    /// again by then.
    Disconnected { group: String, member: String },
    /// A held classic Heartbeat's answer is due.
    HeldHeartbeat { request: u64 },
    /// A held classic SyncGroup's answer is due (see `classic::follow_up`).
    HeldSync { request: u64 },
    /// The periodic scan for expired offsets and dead empty groups.
    OffsetExpiry,
}

#[derive(Default, Debug, Clone)]
pub struct Timers {
    by_time: BTreeSet<(Millis, TimerKey)>,
    by_key: HashMap<TimerKey, Millis>,
}

impl Timers {
    pub fn arm(&mut self, key: TimerKey, at: Millis) {
        self.cancel(&key);
        self.by_time.insert((at, key.clone()));
        self.by_key.insert(key, at);
    }

    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some(at) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    pub fn is_armed(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn deadline(&self, key: &TimerKey) -> Option<Millis> {
        self.by_key.get(key).copied()
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.by_time.iter().next().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at `now`, if any.
    pub fn pop_due(&mut self, now: Millis) -> Option<TimerKey> {
        let (at, key) = self.by_time.iter().next()?.clone();
        if at > now {
            return None;
        }
        self.by_time.remove(&(at, key.clone()));
        self.by_key.remove(&key);
        Some(key)
    }

    /// Cancels every timer belonging to `group`.
    pub fn cancel_group(&mut self, group: &str) {
        let keys: Vec<TimerKey> = self
            .by_key
            .keys()
            .filter(|k| match k {
                TimerKey::Heartbeat { group: g, .. }
                | TimerKey::PendingMember { group: g, .. }
                | TimerKey::Join { group: g }
                | TimerKey::InitialDelay { group: g }
                | TimerKey::InitialQuiet { group: g }
                | TimerKey::Sync { group: g }
                | TimerKey::ConsumerSession { group: g, .. }
                | TimerKey::ConsumerRebalance { group: g, .. }
                | TimerKey::ConsumerClassicJoin { group: g, .. }
                | TimerKey::ConsumerClassicSync { group: g, .. }
                | TimerKey::RegexRefresh { group: g }
                | TimerKey::ConsumerAssignment { group: g }
                | TimerKey::Disconnected { group: g, .. } => g == group,
                TimerKey::OffsetExpiry
                | TimerKey::HeldHeartbeat { .. }
                | TimerKey::HeldSync { .. } => false,
            })
            .cloned()
            .collect();
        for k in keys {
            self.cancel(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// For tests: every armed timer in deadline order.
    pub fn all(&self) -> BTreeMap<TimerKey, Millis> {
        self.by_key.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rearming_replaces_and_due_timers_pop_in_order() {
        let mut t = Timers::default();
        let a = TimerKey::Join { group: "a".into() };
        let b = TimerKey::Sync { group: "b".into() };
        t.arm(a.clone(), 100);
        t.arm(b.clone(), 50);
        t.arm(a.clone(), 40);
        assert_eq!(t.next_deadline(), Some(40));
        assert_eq!(t.pop_due(39), None);
        assert_eq!(t.pop_due(60), Some(a));
        assert_eq!(t.pop_due(60), Some(b));
        assert_eq!(t.pop_due(1000), None);
        assert!(t.is_empty());
    }
}
