//! Regular-expression subscriptions, resolved as Kafka resolves them: not in
//! the heartbeat that introduces a regex, but asynchronously and batched per
//! group. A heartbeat schedules a refresh of all the group's regexes (a timer
//! due at once, so the answer to that heartbeat is computed without the
//! regex's topics); the refresh writes one record per regex with the topic
//! names it matched and bumps the group epoch if any set changed. Refreshes of
//! a group are at least `consumer_regex_refresh_min_interval_ms` apart, so
//! topics created together are picked up by one rebalance. Clients depend on
//! this shape: librdkafka's tests expect the literal topics of a mixed
//! subscription one heartbeat before the regex's.

use super::ConsumerGroup;
use crate::records::Record;
use crate::timers::TimerKey;
use crate::{Coordinator, Event, Out};
use cohort_types::Millis;
use std::collections::BTreeSet;

/// RE2-style syntax, matched against the whole topic name (as RE2/J's
/// `matches()`).
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())
}

/// What one regex matched at its last refresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedRegex {
    pub topics: BTreeSet<String>,
    /// When it was resolved (the coordinator's clock).
    pub timestamp: Millis,
}

impl ConsumerGroup {
    /// Regexes some member subscribes with.
    pub fn subscribed_regexes(&self) -> BTreeSet<&str> {
        self.regex_subscribers.keys().map(String::as_str).collect()
    }

    /// When the group's regexes were last refreshed; None if never.
    fn last_regex_refresh(&self) -> Option<Millis> {
        self.resolved_regexes.values().map(|r| r.timestamp).max()
    }
}

impl Coordinator {
    /// Tombstones resolved regexes no member uses any more.
    pub(crate) fn drop_unused_regexes(&mut self, gid: &str, out: &mut Out) {
        let Some(g) = self.consumer_groups.get(gid) else {
            return;
        };
        let used = g.subscribed_regexes();
        let unused: Vec<String> = g
            .resolved_regexes
            .keys()
            .filter(|r| !used.contains(r.as_str()))
            .cloned()
            .collect();
        for regex in unused {
            self.emit(
                out,
                Record::ConsumerRegexTombstone {
                    group_id: gid.to_string(),
                    regex,
                },
            );
        }
    }

    /// Schedules a refresh of the group's regexes if one is due: some regex is
    /// unresolved, topics were created since the last refresh, or the last one
    /// is older than the refresh interval; and none ran in the last
    /// min-interval, and none is pending.
    pub(crate) fn maybe_schedule_regex_refresh(&mut self, now: Millis, gid: &str) {
        let g = &self.consumer_groups[gid];
        let used = g.subscribed_regexes();
        if used.is_empty() {
            return;
        }
        let key = TimerKey::RegexRefresh {
            group: gid.to_string(),
        };
        if self.timers.is_armed(&key) {
            return;
        }
        let last = g.last_regex_refresh();
        if last.is_some_and(|at| now - at < self.config.consumer_regex_refresh_min_interval_ms) {
            return;
        }
        let unresolved = used.iter().any(|r| !g.resolved_regexes.contains_key(*r));
        let new_topics = self.topics_version > g.regex_topics_version;
        let stale =
            last.is_none_or(|at| now - at >= self.config.consumer_regex_refresh_interval_ms);
        if unresolved || new_topics || stale {
            self.timers.arm(key, now);
        }
    }

    pub(crate) fn regex_refresh_pending(&self, gid: &str) -> bool {
        self.timers.is_armed(&TimerKey::RegexRefresh {
            group: gid.to_string(),
        })
    }

    /// The refresh itself: resolve every regex in use against the topics that
    /// exist now, record each, and bump the epoch if what they match changed.
    pub(crate) fn refresh_regexes(&mut self, now: Millis, gid: &str, out: &mut Out) {
        let Some(g) = self.consumer_groups.get(gid) else {
            return;
        };
        let used: Vec<String> = g
            .subscribed_regexes()
            .into_iter()
            .map(String::from)
            .collect();
        let mut changed = false;
        for regex in used {
            let topics: BTreeSet<String> = match compile_regex(&regex) {
                Ok(re) => self
                    .topics
                    .keys()
                    .filter(|t| re.is_match(t))
                    .cloned()
                    .collect(),
                // Validated when introduced; an invalid one matches nothing.
                Err(_) => BTreeSet::new(),
            };
            let before = self.consumer_groups[gid]
                .resolved_regexes
                .get(&regex)
                .map(|r| &r.topics);
            changed |= before != Some(&topics);
            let record = Record::ConsumerRegex {
                group_id: gid.to_string(),
                regex,
                topics: topics.into_iter().collect(),
                timestamp: now,
            };
            self.emit(out, record);
        }
        self.drop_unused_regexes(gid, out);
        let version = self.topics_version;
        self.consumer_groups
            .get_mut(gid)
            .unwrap()
            .regex_topics_version = version;
        if changed {
            let subscription = self.subscription_metadata(gid);
            let epoch = self.bump_group_epoch(gid, subscription, out);
            out.event(Event::RebalanceStarted {
                group: gid.to_string(),
                generation: epoch,
                reason: "regular expressions resolved to new topics".into(),
            });
        }
    }
}
