//! One simulated group member, whichever protocol it speaks. A rollout
//! replaces members one at a time with members of the other protocol, so a
//! group holds both kinds at once.

use crate::client::{Client, Phase};
use crate::consumer::ConsumerClient;
use std::collections::BTreeSet;

pub enum Member {
    Classic(Client),
    Consumer(ConsumerClient),
}

impl Member {
    pub fn alive(&self) -> bool {
        match self {
            Member::Classic(c) => c.alive,
            Member::Consumer(c) => c.alive,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Member::Classic(c) => &c.name,
            Member::Consumer(c) => &c.name,
        }
    }

    pub fn owned(&self) -> &BTreeSet<i32> {
        match self {
            Member::Classic(c) => &c.owned,
            Member::Consumer(c) => &c.owned,
        }
    }

    /// Its process ends (crash or graceful exit): it consumes nothing more.
    pub fn stop(&mut self) {
        match self {
            Member::Classic(c) => {
                c.alive = false;
                c.owned.clear();
                c.revoking = None;
            }
            Member::Consumer(c) => {
                c.alive = false;
                c.owned.clear();
                c.revoking = None;
            }
        }
    }

    pub fn connection_lost(&mut self, now: i64) {
        match self {
            Member::Classic(c) => c.connection_lost(now),
            Member::Consumer(c) => c.connection_lost(now),
        }
    }

    /// What an offset commit from it carries: (generation or epoch, member
    /// id), if it is stable and owns something.
    pub fn commit_identity(&self) -> Option<(i32, String)> {
        let (stable, generation, id) = match self {
            Member::Classic(c) => (c.phase == Phase::Stable, c.generation, &c.member_id),
            Member::Consumer(c) => (c.epoch > 0, c.epoch, &c.member_id),
        };
        (self.alive() && stable && !self.owned().is_empty()).then(|| (generation, id.clone()))
    }

    /// Settled at `epoch`: nothing being revoked, nothing left to say.
    /// Settled in a classic group: stable, nothing to revoke, and speaking
    /// for a generation the group accepts from it (a member carried through
    /// a follow-up round keeps the one it was told).
    pub fn settled_in(&self, g: &cohort_coordinator::classic::ClassicGroup) -> bool {
        match self {
            Member::Classic(c) => {
                c.phase == Phase::Stable
                    && c.revoking.is_none()
                    && g.generation_ok(&c.member_id, c.generation)
            }
            Member::Consumer(_) => false,
        }
    }

    pub fn settled_at(&self, epoch: i32) -> bool {
        match self {
            Member::Classic(c) => {
                c.phase == Phase::Stable && c.generation == epoch && c.revoking.is_none()
            }
            Member::Consumer(c) => c.settled() && c.epoch == epoch,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Member::Classic(c) => format!(
                "{} classic {:?} gen {} owns {:?} revoking {:?} in flight {:?}",
                c.name, c.phase, c.generation, c.owned, c.revoking, c.in_flight
            ),
            Member::Consumer(c) => format!(
                "{} consumer @{} owns {:?} settled={}",
                c.name,
                c.epoch,
                c.owned,
                c.settled()
            ),
        }
    }
}
