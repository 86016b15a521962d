//! Held heartbeats: a long poll for ConsumerGroupHeartbeat.
//!
//! A settled consumer-group member learns that it must give partitions up only
//! at its next heartbeat, so the settled interval bounds how fast a group
//! rebalances. With holding on, the answer to a settled member's heartbeat is
//! kept back (up to the hold time) and sent the moment its target assignment
//! changes, asking it to come straight back; otherwise it goes out unchanged
//! when the hold time is up. Kafka answers requests on a connection in order,
//! so a held answer would delay everything the client sent after it on that
//! connection (a commit, its leave): any later request on the connection
//! releases it at once.
//!
//! librdkafka times a heartbeat out after the interval it was last given, so
//! a heartbeat is held only when the member's previous answer carried the
//! settled interval, and for less than that interval by a margin.

use cohort_types::group::GroupResponse;
use cohort_types::ErrorCode;
use std::collections::HashMap;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<GroupResponse>;

struct Held {
    tx: Reply,
    response: GroupResponse,
    until: i64,
    connection: u64,
}

pub struct HeldHeartbeats {
    hold_ms: i64,
    settled_interval_ms: i32,
    by_member: HashMap<(String, String), Held>,
    /// The interval each member was last told.
    last_interval: HashMap<(String, String), i32>,
}

/// librdkafka checks request timeouts about once a second.
const TIMEOUT_MARGIN_MS: i64 = 1000;

impl HeldHeartbeats {
    pub fn new(hold_ms: i64, settled_interval_ms: i32) -> HeldHeartbeats {
        HeldHeartbeats {
            hold_ms,
            settled_interval_ms,
            by_member: HashMap::new(),
            last_interval: HashMap::new(),
        }
    }

    /// Keeps back a settled member's successful heartbeat answer; hands back
    /// any other reply to be sent now.
    pub fn park(
        &mut self,
        now: i64,
        group: Option<&str>,
        connection: u64,
        tx: Reply,
        response: GroupResponse,
    ) -> Option<(Reply, GroupResponse)> {
        let hold = self
            .hold_ms
            .min(self.settled_interval_ms as i64 - TIMEOUT_MARGIN_MS);
        let (key, settled) = match (&response, group) {
            (GroupResponse::ConsumerGroupHeartbeat(h), Some(g)) if self.hold_ms > 0 => {
                match &h.member_id {
                    Some(m) => (
                        (g.to_string(), m.clone()),
                        h.error == ErrorCode::NONE
                            && h.member_epoch > 0
                            && h.heartbeat_interval_ms == self.settled_interval_ms,
                    ),
                    None => return Some((tx, response)),
                }
            }
            _ => return Some((tx, response)),
        };
        let told = self.last_interval.insert(
            key.clone(),
            if settled {
                self.settled_interval_ms
            } else {
                -1
            },
        );
        if !settled || hold <= 0 || told != Some(self.settled_interval_ms) {
            return Some((tx, response));
        }
        // A newer heartbeat of the same member supersedes a held one.
        if let Some(old) = self.by_member.remove(&key) {
            let _ = old.tx.send(old.response);
        }
        self.by_member.insert(
            key,
            Held {
                tx,
                response,
                until: now + hold,
                connection,
            },
        );
        None
    }

    /// The member has something to do: answer now and ask it back at once.
    pub fn release_member(&mut self, group: &str, member: &str) {
        let key = (group.to_string(), member.to_string());
        if let Some(mut h) = self.by_member.remove(&key) {
            self.last_interval.insert(key, 1);
            if let GroupResponse::ConsumerGroupHeartbeat(r) = &mut h.response {
                // Clients ignore 0; 1 ms means "now".
                r.heartbeat_interval_ms = 1;
            }
            let _ = h.tx.send(h.response);
        }
    }

    /// Another request came on this connection: nothing may wait behind a
    /// held answer.
    pub fn release_connection(&mut self, connection: u64) {
        if self.by_member.values().all(|h| h.connection != connection) {
            return;
        }
        let keys: Vec<(String, String)> = self
            .by_member
            .iter()
            .filter(|(_, h)| h.connection == connection)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let h = self.by_member.remove(&k).unwrap();
            let _ = h.tx.send(h.response);
        }
    }

    pub fn release_due(&mut self, now: i64) {
        let due: Vec<(String, String)> = self
            .by_member
            .iter()
            .filter(|(_, h)| h.until <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            let h = self.by_member.remove(&k).unwrap();
            let _ = h.tx.send(h.response);
        }
    }

    /// The member left or was removed.
    pub fn forget(&mut self, group: &str, member: &str) {
        self.release_member(group, member);
        self.last_interval
            .remove(&(group.to_string(), member.to_string()));
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.by_member.values().map(|h| h.until).min()
    }
}
