//! The bytes requests may hold in memory, broker-wide (Kafka's
//! `queued.max.request.bytes`). A connection takes budget before reading more
//! bytes and gives it back once the request those bytes became is answered;
//! when the budget is spent, connections stop reading (back-pressure on the
//! clients) instead of the broker allocating more.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

pub struct Budget {
    /// None: unbounded (Kafka's -1).
    cap: Option<usize>,
    used: Mutex<usize>,
    freed: Notify,
}

/// Budget held; given back when dropped (or shrunk).
pub struct Held {
    budget: Arc<Budget>,
    n: usize,
}

impl Budget {
    pub fn new(cap: Option<usize>) -> Arc<Budget> {
        Arc::new(Budget {
            cap,
            used: Mutex::new(0),
            freed: Notify::new(),
        })
    }

    #[cfg(test)]
    pub fn used(&self) -> usize {
        *self.used.lock().unwrap()
    }

    pub fn none(self: &Arc<Self>) -> Held {
        Held {
            budget: self.clone(),
            n: 0,
        }
    }

    fn try_take(&self, n: usize) -> bool {
        let mut used = self.used.lock().unwrap();
        // A request larger than the whole budget still goes through alone.
        if self.cap.is_none_or(|cap| *used + n <= cap || *used == 0) {
            *used += n;
            true
        } else {
            false
        }
    }

    /// Waits until `n` bytes of budget are free and takes them.
    pub async fn acquire(self: &Arc<Self>, n: usize) -> Held {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before checking, so a release in between is not missed.
            freed.as_mut().enable();
            if self.try_take(n) {
                return Held {
                    budget: self.clone(),
                    n,
                };
            }
            freed.await;
        }
    }

    fn release(&self, n: usize) {
        if n == 0 {
            return;
        }
        *self.used.lock().unwrap() -= n;
        self.freed.notify_waiters();
    }
}

impl Held {
    pub fn amount(&self) -> usize {
        self.n
    }

    /// Adds another holding to this one.
    pub fn merge(&mut self, mut other: Held) {
        self.n += std::mem::take(&mut other.n);
    }

    /// Gives back everything above `n`.
    pub fn shrink_to(&mut self, n: usize) {
        if self.n > n {
            self.budget.release(self.n - n);
            self.n = n;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spent_budget_waits_until_bytes_are_given_back() {
        let b = Budget::new(Some(100));
        let mut first = b.acquire(60).await;
        let second = b.acquire(30).await;
        assert_eq!(b.used(), 90);
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(50).await.amount() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        first.shrink_to(10);
        assert_eq!(waiting.await.unwrap(), 50);
        drop(second);
        drop(first);
        assert_eq!(b.used(), 0);
    }

    #[tokio::test]
    async fn one_request_larger_than_the_budget_goes_through_alone() {
        let b = Budget::new(Some(10));
        let big = b.acquire(50).await;
        assert_eq!(big.amount(), 50);
        drop(big);
        let mut h = b.none();
        h.merge(b.acquire(5).await);
        assert_eq!((h.amount(), b.used()), (5, 5));
    }
}
